"""Multi-step resumable functions that tests/test_crash.py kills and resumes.

Every external side effect goes through `record`: it appends one line,
`<tag> <idempotency key>`, to the file named by $CRASH_LOG and flushes and
fsyncs it before going on, so the line survives a SIGKILL right after it. The
key (`<run id>:<checkpoint>[.<k>]`) names the step that did it, so the test
can tell which step a repeated line belongs to. $CRASH_STEP_DELAY (seconds)
makes every step take a little time, for kills at random instants.

The test copies this file into a temporary folder and compiles it there.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

import resumable


def _delay() -> float:
    return float(os.environ.get("CRASH_STEP_DELAY") or 0)


def record(tag: str) -> None:
    """The side effect: one fsync'd line naming the step that made it."""
    line = f"{tag} {resumable.idempotency_key()}\n"
    with open(os.environ["CRASH_LOG"], "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


async def effect(tag: str, value: Any) -> Any:
    """An external call: a plain coroutine, so awaiting it is one step."""
    delay = _delay()
    if delay:
        await asyncio.sleep(delay)
    record(tag)
    return value


@resumable.function
async def loop_sum(n: int) -> tuple[int, list[int]]:
    """Loops with awaits: a for loop (two await sites) and a while loop."""
    total = 0
    odds: list[int] = []
    for i in range(n):
        total += await effect(f"square {i}", i * i)
        if i % 2:
            odds.append(await effect(f"odd {i}", i))
    while total > 10:
        total = await effect(f"halve {total}", total // 2)
    return total, odds


@resumable.function
async def guarded(n: int) -> list[Any]:
    """try/except/finally with awaits in every block, and a return that
    passes through a finally that awaits."""
    done: list[Any] = []
    try:
        for i in range(n):
            done.append(await effect(f"try {i}", i))
            if i == n - 1:
                raise ValueError(f"stop at {i}")
    except ValueError as e:
        done.append(await effect(f"except {e}", str(e)))
    finally:
        done.append(await effect("finally a", "a"))
        done.append(await effect("finally b", "b"))
    try:
        return done
    finally:
        await effect(f"cleanup {len(done)}", None)


@resumable.function
async def leaf(tag: str, x: int) -> int:
    a = await effect(f"{tag} leaf a", x)
    b = await effect(f"{tag} leaf b", x + 1)
    return a + b


@resumable.function
async def middle(tag: str, x: int) -> list[int]:
    """A child that itself awaits children."""
    first = await leaf(f"{tag}.0", x)
    mid = await effect(f"{tag} middle", first * 10)
    second = await leaf(f"{tag}.1", mid)
    return [first, second]


@resumable.function
async def family(n: int) -> list[Any]:
    """Nested child runs: family -> middle -> leaf."""
    out: list[Any] = []
    for i in range(n):
        out.append(await middle(f"m{i}", i))
        out.append(await effect(f"family {i}", i))
    return out


@resumable.function
async def charge(account: str, cents: int) -> str:
    """A child run with no await: its side effect is its whole body."""
    delay = _delay()
    if delay:
        time.sleep(delay)
    record(f"charge {account} {cents}")
    return f"receipt {account} {cents}"


@resumable.function
async def checkout(account: str, amounts: list[int]) -> list[str]:
    """External side effects in child runs, then in try/finally."""
    receipts: list[str] = []
    try:
        for cents in amounts:
            receipts.append(await charge(account, cents))
        await effect(f"email {account}", None)
    finally:
        await effect(f"audit {len(receipts)}", None)
    return receipts


@resumable.function
async def tally(n: int) -> tuple[Any, ...]:
    """Closures held across awaits: two closures sharing the function's
    `total` (one writes it, `nonlocal`), late binding, a default computed
    once, a nested function calling itself."""
    total = 0
    seen: list[int] = []

    def add(x: int, scale: int = n) -> int:
        nonlocal total
        total += x * scale
        seen.append(x)
        return total

    report = lambda: (total, len(seen))  # noqa: E731

    def depth(k: int) -> int:
        return 0 if k == 0 else 1 + depth(k - 1)

    for i in range(n):
        add(await effect(f"item {i}", i))
        await effect(f"report {report()}", None)
    final = await effect(f"final {report()} {depth(n)}", report())
    return final, add(1), report(), add.__qualname__


@dataclass
class Session:
    """An async context manager a checkpoint can hold (a dataclass): its
    __aenter__ and __aexit__ make external calls, each its own step."""

    name: str
    token: int = 0

    async def __aenter__(self) -> Session:
        self.token = await effect(f"open {self.name}", 7)
        return self

    async def __aexit__(self, typ: Any, exc: Any, tb: Any) -> bool:
        await effect(f"close {self.name} {self.token} {typ and typ.__name__}", None)
        return False


@resumable.function
async def session(n: int) -> list[int]:
    """awaits inside an `async with`: checkpoint 1 is its __aenter__, the
    last one its __aexit__."""
    out: list[int] = []
    async with Session("db") as s:
        for i in range(n):
            out.append(await effect(f"use {i}", i * s.token))
    return out
