"""Decorated functions for tests/test_runtime.py: results, arguments, failures,
side effects and what a checkpoint holds."""

from __future__ import annotations

from typing import Any

import resumable

#: Side effects of `counted`, by label (a run that is not re-run adds nothing).
CALLS: list[str] = []


async def tick(value: Any = None) -> Any:
    """An undecorated awaitable: returns its argument."""
    return value


class PaymentDeclined(Exception):
    """A custom exception with an attribute, raised by `declined`."""

    def __init__(self, user: str, amount: int) -> None:
        super().__init__(f"card of {user} declined")
        self.user = user
        self.amount = amount


@resumable.function
async def add(a: int, b: int) -> int:
    x = await tick(a)
    y = await tick(b)
    return x + y


@resumable.function
async def pair(a: Any, b: Any = None, *, flag: bool = False) -> tuple[Any, ...]:
    await tick()
    return (a, b, flag)


@resumable.function
async def same(a: Any, b: Any) -> tuple[bool, str]:
    await tick()
    return (a is b, type(a).__name__)


@resumable.function
async def counted(label: str) -> str:
    CALLS.append(label)
    value = await tick(label.upper())
    CALLS.append(label + ":after")
    return value


@resumable.function
async def declined(user: str, amount: int) -> None:
    await tick()
    raise PaymentDeclined(user, amount)


@resumable.function
async def returns_lambda() -> Any:
    await tick()
    return (1, lambda: 2)


@resumable.function
async def staged(a: int, b: int) -> int:
    c = a + b
    x = await tick(c)
    total = x + b
    y = await tick(total)
    return y * 2
