# Source: python/cpython, Doc/library/asyncio-task.rst ("Coroutines": the
#   second say_after example, where both calls are wrapped in
#   asyncio.create_task first and the tasks awaited afterwards, so they run
#   concurrently), https://docs.python.org/3/library/asyncio-task.html#coroutines
# Rewritten in the same shape, not copied. Adapted: main is decorated;
# say_after is a plain coroutine; print, sleep and strftime are recorded
# steps / a fixed clock.
# Constructs: tasks created before an await and awaited later (a task is
# live across the checkpoint of `await task1`).
import asyncio

import resumable
from resumable.testing import step


async def say(*parts: object) -> None:
    await step("print", " ".join(map(str, parts)))


def strftime(fmt: str) -> str:
    return "17:14:32"


async def say_after(delay: float, what: str) -> None:
    await step("sleep", delay)
    for _ in range(int(delay)):
        await asyncio.sleep(0)
    await say(what)


@resumable.function
async def main() -> None:
    task1 = asyncio.create_task(say_after(1, "hello"))

    task2 = asyncio.create_task(say_after(2, "world"))

    await say("started at", strftime("%X"))

    # Wait until both tasks are completed.
    await task1
    await task2

    await say("finished at", strftime("%X"))


ARGS = {"main": [((), {})]}
