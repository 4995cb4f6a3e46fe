# Source: python/cpython, Doc/library/asyncio-task.rst ("Task Groups": two
#   tasks created in an `async with asyncio.TaskGroup() as tg:` block, their
#   results read after it), https://docs.python.org/3/library/asyncio-task.html#task-groups
# Rewritten in the same shape, not copied. Adapted: main is decorated and
# returns the message it would print; the two coroutines are deterministic
# fakes recording a step.
# Constructs: `async with ... as`, tasks created inside it, task.result()
# after the block, an f-string.
import asyncio

import resumable
from resumable.testing import step


async def some_coro(x: int) -> int:
    return await step("some_coro", x)


async def another_coro(x: int) -> int:
    await asyncio.sleep(0)
    return await step("another_coro", x)


@resumable.function
async def main() -> str:
    async with asyncio.TaskGroup() as tg:
        task1 = tg.create_task(some_coro(1))
        task2 = tg.create_task(another_coro(2))
    return f"Both tasks have completed now: {task1.result()}, {task2.result()}"


ARGS = {"main": [((), {})]}
