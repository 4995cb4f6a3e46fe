"""Functions that tests/test_worker.py dispatches and `resumable worker` runs.

Side effects append `<tag> <idempotency key>` to the file named by $JOBS_LOG
(flushed and fsync'd), so the test sees which steps ran, and how often. The
test copies this file into a temporary folder and compiles it there.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import resumable

ONCE = resumable.Retry(max_attempts=1)


def record(tag: str) -> None:
    with open(os.environ["JOBS_LOG"], "a", encoding="utf-8") as f:
        f.write(f"{tag} {resumable.idempotency_key()}\n")
        f.flush()
        os.fsync(f.fileno())


async def effect(tag: str, value: Any, delay: float = 0.0) -> Any:
    if delay:
        await asyncio.sleep(delay)
    record(tag)
    return value


@resumable.function
async def double(x: int) -> int:
    return await effect(f"double {x}", 2 * x)


# -- 20 runs at once: each waits until all have arrived -----------------------------

_arrived = 0
_everyone: asyncio.Event | None = None


async def arrive(n: int) -> int:
    """Wait until `n` runs of this process have arrived here; the arrival
    number. Raises TimeoutError if they do not all come (runs driven one
    after the other would wait forever)."""
    global _arrived, _everyone
    if _everyone is None:
        _everyone = asyncio.Event()
    _arrived += 1
    position = _arrived
    if _arrived >= n:
        _everyone.set()
    await asyncio.wait_for(_everyone.wait(), timeout=15)
    return position


@resumable.function(retry=ONCE)
async def gate(i: int, n: int) -> list[int]:
    position = await arrive(n)
    return [i, position, os.getpid()]


# -- runs that end badly ----------------------------------------------------------


@resumable.function(retry=ONCE)
async def broken(x: int) -> int:
    await effect(f"broken {x}", x)
    raise ValueError(f"broken {x}")


class Opaque:
    """Not storable: no field-based kind, no codec."""


@resumable.function
async def unstorable(x: int) -> Opaque:
    await effect(f"unstorable {x}", x)
    return Opaque()


# -- long runs, for SIGTERM -------------------------------------------------------


@resumable.function
async def steps(name: str, n: int, delay: float) -> int:
    total = 0
    for i in range(n):
        total += await effect(f"{name} step {i}", i, delay)
    return total


# -- a run that fails in a child, is shown, and retried -------------------------------


def payments_fixed() -> Path:
    return Path(os.environ["JOBS_LOG"]).with_name("payments-fixed")


@resumable.function(retry=ONCE)
async def price(order: str) -> int:
    return await effect(f"price {order}", 30)


@resumable.function(retry=ONCE)
async def pay(order: str, total: int) -> str:
    await effect(f"pay {order}", total)
    if not payments_fixed().exists():
        raise ValueError(f"card declined for {order}")
    return f"paid {total}"


@resumable.function(retry=ONCE)
async def order_flow(order: str) -> str:
    total = await price(order)
    receipt = await pay(order, total)
    return f"{order}: {receipt}"
