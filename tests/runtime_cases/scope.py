"""Globals and builtins as a compiled function sees them."""

from __future__ import annotations

from typing import Any

import resumable

RATE = 2


def len(value: Any) -> int:  # shadows the builtin in this module
    return -1


async def tick(value: Any = None) -> Any:
    return value


@resumable.function
async def price(amount: int) -> int:
    await tick()
    return amount * RATE


@resumable.function
async def measure(items: list[int]) -> int:
    n = await tick(items)
    return len(n)
