"""Functions that tests/test_run_ids.py, test_hostile_rows.py and
test_inspect.py run in subprocesses (row_runner.py, `resumable worker`).

Side effects append one line, `<what> <idempotency key>`, to the file named
by $JOBS_LOG (flushed and fsync'd). `crash_point(tag)` kills the process with
SIGKILL when $CRASH_AT names `tag`, so a test can leave a run at a chosen
checkpoint and then tamper with its row. The tests copy this file into a
temporary folder and compile it there.
"""

from __future__ import annotations

import asyncio
import os
import signal

import resumable

ONCE = resumable.Retry(max_attempts=1)


def record(what: str) -> None:
    with open(os.environ["JOBS_LOG"], "a", encoding="utf-8") as f:
        f.write(f"{what} {resumable.idempotency_key()}\n")
        f.flush()
        os.fsync(f.fileno())


async def crash_point(tag: str) -> None:
    """A plain awaitable; SIGKILL here when $CRASH_AT is `tag`."""
    if os.environ.get("CRASH_AT") == tag:
        os.kill(os.getpid(), signal.SIGKILL)
    await asyncio.sleep(0)


# -- payments: a parent and its children -------------------------------------------


@resumable.function(retry=ONCE)
async def pay(user: str, amount: int) -> str:
    await crash_point(f"pay {user}")
    record(f"charge {user} {amount}")
    return f"receipt-{user}-{amount}"


@resumable.function(retry=ONCE)
async def refund(user: str, amount: int) -> str:
    record(f"refund {user} {amount}")
    return f"refund-{user}-{amount}"


@resumable.function(retry=ONCE)
async def order(user: str, amount: int) -> str:
    receipt = await pay(user, amount)
    await crash_point(f"order {user}")
    return receipt


# -- a child whose argument is a set (iteration order depends on the hash seed) -------


@resumable.function(retry=ONCE)
async def count_tags(tags: set[str]) -> int:
    await crash_point("count_tags")
    record("count " + ",".join(sorted(tags)))
    return len(tags)


@resumable.function(retry=ONCE)
async def tag_flow(names: list[str]) -> int:
    tags = {name.upper() for name in names}
    return await count_tags(tags)


# -- a run that stands at checkpoint 1 with plain locals, to tamper with ---------------


@resumable.function(retry=ONCE)
async def hold(x: int) -> int:
    data = [x, x]
    await crash_point("hold")
    record(f"hold {x}")
    return len(data) + x


@resumable.function(retry=ONCE)
async def double(x: int) -> int:
    record(f"double {x}")
    return 2 * x
