# Source: python/cpython, Doc/library/asyncio-task.rst ("Timeouts": a
#   long-running task awaited inside `async with asyncio.timeout(...)`, the
#   TimeoutError handled around it, and a statement after it that runs
#   either way), https://docs.python.org/3/library/asyncio-task.html#timeouts
# Rewritten in the same shape, not copied. Adapted: main is decorated and
# takes the timeout; the long-running task is a deterministic fake that
# records a step and then waits for `seconds` on the event loop (the test
# uses 0 and a very long wait, so the outcome does not depend on timing);
# prints are recorded steps.
# Constructs: `async with asyncio.timeout(...)` whose body awaits, inside
# try/except TimeoutError, an await after the try.
import asyncio

import resumable
from resumable.testing import step


async def say(text: str) -> None:
    await step("print", text)


async def long_running_task(seconds: float) -> None:
    await step("long_running_task", seconds)
    await asyncio.sleep(seconds)


@resumable.function
async def main(limit: float, work: float) -> None:
    try:
        async with asyncio.timeout(limit):
            await long_running_task(work)
    except TimeoutError:
        await say("The long operation timed out, but we've handled it.")

    await say("This statement will run regardless.")


ARGS = {"main": [((10, 0), {}), ((0, 3600), {})]}
