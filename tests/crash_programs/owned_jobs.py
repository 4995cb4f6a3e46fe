"""Functions that tests/test_ownership.py drives from several processes at once.

Each step appends `<pid> <tag> <idempotency key>` to the file named by
$JOBS_LOG (flushed and fsync'd), so the test sees which process ran which
step, and whether a step ran twice. The test copies this file into a
temporary folder and compiles it there.

$PAUSE_AT=i: the step of index i, after its first line, sleeps $PAUSE
seconds (default 2) and then logs `... after pause i`, so that a test can
freeze the process (SIGSTOP) while it is inside that step.

$GATE=path: the step of index 1 first waits until that file exists, so a
test can hold runs in flight until all its workers are up.

$FORK_AT=i: the step of index i forks a child that sleeps $FORK_SLEEP
seconds (default 20) with its output closed, and logs `... forked <pid>`:
a process of the user's that outlives the driver.
"""

from __future__ import annotations

import asyncio
import os
import time

import resumable

ONCE = resumable.Retry(max_attempts=1)


def record(tag: str) -> None:
    with open(os.environ["JOBS_LOG"], "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()} {tag} {resumable.idempotency_key()}\n")
        f.flush()
        os.fsync(f.fileno())


async def step(name: str, i: int) -> int:
    """An external call: a plain coroutine, so awaiting it is one step."""
    gate = os.environ.get("GATE")
    if gate and i == 1:
        while not os.path.exists(gate):
            await asyncio.sleep(0.005)
    record(f"{name} step {i}")
    if os.environ.get("FORK_AT") == str(i):
        child = os.fork()
        if child == 0:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            time.sleep(float(os.environ.get("FORK_SLEEP") or 20))
            os._exit(0)
        record(f"{name} forked {child}")
    if os.environ.get("PAUSE_AT") == str(i):
        await asyncio.sleep(float(os.environ.get("PAUSE") or 2))
        record(f"{name} after pause {i}")
    else:
        await asyncio.sleep(0)
    return i


@resumable.function(retry=ONCE)
async def walk(name: str, n: int) -> list[int]:
    """n steps; the result names the process that finished the run."""
    total = 0
    for i in range(n):
        total += await step(name, i)
    return [total, os.getpid()]
