"""A compiled function awaiting decorated children, directly and through gather."""

from __future__ import annotations

import asyncio
from typing import Any

import resumable


async def tick(value: Any = None) -> Any:
    return value


@resumable.function
async def child(n: int) -> int:
    doubled = await tick(n * 2)
    return doubled + 1


@resumable.function
async def parent(n: int) -> int:
    a = await child(n)
    b = await child(a)
    return a + b


@resumable.function
async def gathered() -> list[int]:
    results = await asyncio.gather(child(1), child(2))
    return list(results)
