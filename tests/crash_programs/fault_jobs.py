"""Functions that tests/test_faults.py runs under `resumable worker`
subprocesses and under `rt.run` in a subprocess (fault_program.py).

Side effects append `<tag> <idempotency key>` to the file named by
$JOBS_LOG (flushed and fsync'd), so the test sees which steps ran, and how
often. The test copies this file into a temporary folder and compiles it there.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import resumable

ONCE = resumable.Retry(max_attempts=1)

#: What a step raises, by name (none of them is an Exception).
ABORTS: dict[str, type[BaseException]] = {
    "KeyboardInterrupt": KeyboardInterrupt,
    "SystemExit": SystemExit,
    "GeneratorExit": GeneratorExit,
}


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


# -- steps that raise a BaseException (KeyboardInterrupt, SystemExit, GeneratorExit) --


async def aborting(tag: str, kind: str) -> None:
    """A plain helper coroutine (not decorated) that raises `kind` after an await."""
    await asyncio.sleep(0)
    record(tag)
    raise ABORTS[kind](f"{kind} raised in {tag}")


@resumable.function
async def abort_in_code(kind: str) -> int:
    n = await effect(f"code {kind} before", 1)
    record(f"code {kind} raise")
    if n:
        raise ABORTS[kind](f"{kind} raised in code {kind} raise")
    return n


@resumable.function
async def abort_in_helper(kind: str) -> int:
    n = await effect(f"helper {kind} before", 1)
    await aborting(f"helper {kind} raise", kind)
    return n


@resumable.function
async def abort_in_task(kind: str) -> int:
    n = await effect(f"task {kind} before", 1)
    await asyncio.create_task(aborting(f"task {kind} raise", kind))
    return n


# -- rt.run in the user's own process: the BaseException reaches the caller ---------


def fixed() -> bool:
    return os.environ.get("FAULT_FIXED") == "1"


@resumable.function
async def flow(kind: str) -> int:
    a = await effect("flow 0", 1)
    b = await effect("flow 1", 2)
    await asyncio.sleep(0)  # the step from here on does nothing but raise
    if not fixed():
        record("flow raise")
        raise ABORTS[kind](f"{kind} raised by flow")
    c = await effect("flow 2", 3)
    return a + b + c


# -- SIGTERM / SIGINT while a step waits inside try/finally ---------------------------


def pause() -> float:
    return float(os.environ.get("FAULT_PAUSE", "0"))


@resumable.function
async def guarded(name: str) -> str:
    await effect(f"{name} before", 1)
    try:
        await effect(f"{name} started", 1)
        await asyncio.sleep(pause())  # the worker is stopped here
    finally:
        await effect(f"{name} finally", 1)
    return f"{name} done"


# -- an exception whose message is not valid UTF-8 (a lone surrogate) ----------------


@resumable.function(retry=ONCE)
async def surrogate(x: int) -> int:
    await effect(f"surrogate {x}", x)
    raise ValueError("bad \udc80 message")


# -- large locals, to fill a store ----------------------------------------------------


@resumable.function(retry=ONCE)
async def bulky(name: str, size: int) -> int:
    blob = await effect(f"{name} fill", name[0] * size)
    n = await effect(f"{name} use", len(blob))
    return n
