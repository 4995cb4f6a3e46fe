# Source: python/cpython, Doc/library/asyncio-task.rst ("Coroutines": the
#   say_after example awaited in sequence between two timestamps; "Awaitables":
#   a coroutine awaiting `nested()` inside a print call),
#   https://docs.python.org/3/library/asyncio-task.html#coroutines
# Rewritten in the same shape, not copied. Adapted: the coroutines are
# decorated (say_after is a child run); `print`, `asyncio.sleep` and
# `time.strftime('%X')` are recorded steps / a deterministic fake clock.
# Constructs: sequential child runs, an await as a call argument.
import resumable
from resumable.testing import step


async def say(*parts: object) -> None:
    await step("print", " ".join(map(str, parts)))


async def sleep(seconds: float) -> None:
    await step("sleep", seconds)


def strftime(fmt: str) -> str:
    return "17:13:52"


@resumable.function
async def say_after(delay: float, what: str) -> None:
    await sleep(delay)
    await say(what)


@resumable.function
async def main() -> None:
    await say("started at", strftime("%X"))

    await say_after(1, "hello")
    await say_after(2, "world")

    await say("finished at", strftime("%X"))


@resumable.function
async def nested() -> int:
    return 42


@resumable.function
async def print_nested() -> None:
    # Prints "42".
    await say(await nested())


ARGS = {
    "say_after": [((1, "hi"), {})],
    "main": [((), {})],
    "nested": [((), {})],
    "print_nested": [((), {})],
}
