# Source: python/cpython, Doc/library/asyncio-task.rst ("Running Tasks
#   Concurrently", the asyncio.gather example: three factorial coroutines
#   run concurrently, each printing its progress and sleeping between
#   multiplications), https://docs.python.org/3/library/asyncio-task.html#asyncio.gather
# Rewritten in the same shape, not copied. Adapted: both coroutines are
# decorated (each factorial is a child run of main); `print` and
# `asyncio.sleep(1)` are recorded steps (the sleep still yields to the event
# loop once, so the three children interleave as in the documented output);
# main returns gather's list.
# Constructs: child runs under asyncio.gather, a for loop over range whose
# body awaits, augmented assignment, f-strings.
import asyncio

import resumable
from resumable.testing import step


async def say(text: str) -> None:
    await step("print", text)


async def sleep(seconds: float) -> None:
    await step("sleep", seconds)
    await asyncio.sleep(0)


@resumable.function
async def factorial(name: str, number: int) -> int:
    f = 1
    for i in range(2, number + 1):
        await say(f"Task {name}: Compute factorial({number}), currently i={i}...")
        await sleep(1)
        f *= i
    await say(f"Task {name}: factorial({number}) = {f}")
    return f


@resumable.function
async def main() -> list[int]:
    # Schedule three calls concurrently.
    return await asyncio.gather(
        factorial("A", 2),
        factorial("B", 3),
        factorial("C", 4),
    )


ARGS = {
    "factorial": [(("X", 5), {})],
    "main": [((), {})],
}
