"""Values that cannot be checkpointed, held (or not) across awaits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import resumable

#: Files opened by `hold_file`, so that the test can close them.
OPENED: list[IO[str]] = []


async def tick(value: Any = None) -> Any:
    return value


@resumable.function
async def read_between(path: str) -> str:
    await tick()
    f = open(path)  # noqa: SIM115 (the point of the test)
    first = f.readline()
    f.close()
    with open(path) as g:
        rest = g.read()
    await tick()
    return first + rest


@resumable.function
async def hold_file(path: str) -> str:
    f = open(path)  # noqa: SIM115 (the point of the test)
    OPENED.append(f)
    await tick()
    return f.read()


def evens(n: int) -> Iterator[int]:
    for i in range(n):
        yield 2 * i


@resumable.function
async def hold_generator(n: int) -> int:
    gen = evens(n)
    first = next(gen)
    await tick()
    return first + sum(gen)


@resumable.function
async def loop_generator(n: int) -> int:
    total = 0
    for x in evens(n):
        total += await tick(x)
    return total


@resumable.function
async def loop_list_of_generator(n: int) -> int:
    total = 0
    for x in list(evens(n)):
        total += await tick(x)
    return total
