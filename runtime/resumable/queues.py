"""Queues and flow control: `resumable.Queue`, checked where it is given.

    @resumable.function(queue=resumable.Queue("emails", concurrency=10, rate=(100, 60.0)))
    async def send(to): ...

    send.dispatch("a@b.c", priority=5, dedup_key="welcome:a@b.c")

A queue is named; its limits are kept in the store (`queues` table) by every
dispatch of a run into it, so every worker enforces the same numbers whether
or not it imports the function (the last dispatch's settings win: give one
name the same settings everywhere). What counts against the limits, and how
workers claim runs atomically: docs/durability.md, "Queues and flow control".
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass
from typing import Any

__all__ = ["MAX_PRIORITY", "Queue", "check_dedup_key", "check_priority"]

#: Priorities are integers of at most this magnitude (they fit any store's column).
MAX_PRIORITY = 2**53 - 1


@dataclass(frozen=True)
class Queue:
    """A named queue of runs. `concurrency`: at most this many of its runs
    driven at once, across all workers (None: no limit). `rate=(N, seconds)`:
    at most N starts per rolling period of `seconds` (None: no limit).
    `priority`: the priority of its runs (higher starts first; a dispatch
    may give its own)."""

    name: str
    _: KW_ONLY
    concurrency: int | None = None
    rate: tuple[int, float] | None = None
    priority: int = 0

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name or len(name) > 200 or "\x00" in name:
            raise TypeError(
                f"resumable.Queue(name): a queue's name is a non-empty str of at most 200 "
                f"characters, not {name!r:.80}"
            )
        c = self.concurrency
        if c is not None:
            if isinstance(c, bool) or not isinstance(c, int):
                raise TypeError(
                    f"resumable.Queue({name!r}, concurrency=...) takes an int (or None: no "
                    f"limit), not {c!r:.80}"
                )
            if not 1 <= c <= MAX_PRIORITY:
                raise ValueError(
                    f"resumable.Queue({name!r}, concurrency={c}): concurrency must be at least 1 "
                    "(None: no limit)"
                )
        if self.rate is not None:
            object.__setattr__(self, "rate", _check_rate(name, self.rate))
        check_priority(self.priority, f"resumable.Queue({name!r}, priority=...)")

    @property
    def limited(self) -> bool:
        return self.concurrency is not None or self.rate is not None


def _check_rate(name: str, rate: Any) -> tuple[int, float]:
    where = f"resumable.Queue({name!r}, rate=...)"
    if not isinstance(rate, tuple | list) or len(rate) != 2:
        raise TypeError(f"{where} takes (starts, period_seconds), not {rate!r:.80}")
    n, period = rate
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{where}: the number of starts is an int, not {n!r:.80}")
    if isinstance(period, bool) or not isinstance(period, int | float):
        raise TypeError(f"{where}: the period is seconds (an int or a float), not {period!r:.80}")
    if not 1 <= n <= MAX_PRIORITY:
        raise ValueError(f"{where}: the number of starts per period must be at least 1, not {n}")
    if not (math.isfinite(period) and 0 < period <= 86400 * 366):
        raise ValueError(
            f"{where}: the period must be a positive number of seconds (at most a year), "
            f"not {period!r}"
        )
    return n, float(period)


def check_priority(priority: Any, where: str) -> int:
    """`priority` if it is an int a store can hold; TypeError or ValueError."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(
            f"{where}: a priority is an int (higher starts first), not {priority!r:.80}"
        )
    if abs(priority) > MAX_PRIORITY:
        raise ValueError(f"{where}: a priority is at most 2**53 - 1 in magnitude, not {priority}")
    return priority


def check_dedup_key(key: Any) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > 1000 or "\x00" in key:
        raise TypeError(
            f"dispatch(dedup_key=...) takes a non-empty str of at most 1000 characters (or "
            f"None), not {key!r:.80}"
        )
    return key
