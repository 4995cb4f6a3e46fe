"""Values held across awaits that the codec handles badly (see the xfail tests)."""

from __future__ import annotations

from typing import Any

import resumable


async def tick(value: Any = None) -> Any:
    return value


@resumable.function
async def hold_surrogate() -> int:
    s = "\ud800"
    await tick()
    return len(s)


@resumable.function
async def hold_cycle() -> int:
    x: list[Any] = []
    x.append(x)
    await tick()
    return len(x) + (x[0] is x)


@resumable.function
async def hold_stop_iteration() -> Any:
    err = StopIteration(5)
    await tick()
    return err.value
