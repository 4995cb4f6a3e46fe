"""Time that tests control: `FakeClock` for the runtime, and an asyncio
loop whose time jumps ahead when nothing is ready (for the original
coroutine, whose `resumable.sleep` is a plain `asyncio.sleep`).

    clock = FakeClock()
    rt = resumable.Runtime("memory://", clock=clock)
    rt.run(nap_a_day)                 # returns at once
    clock.elapsed                     # 86400.0: the run's time passed, not yours
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["FakeClock", "WaitsForever", "virtual_time_loop"]

#: Where a FakeClock starts by default (2023-11-14T22:13:20Z): a fixed time,
#: so that runs and their reports are the same every time.
START = 1_700_000_000.0


class WaitsForever(AssertionError):
    """A run waits with no end (an event with no timeout) and nothing can
    end the wait: with a fake clock it would wait for ever."""


class FakeClock:
    """A `resumable.retry.Clock` that never sleeps: a wait moves `now` on
    by its length at once (retry delays, `resumable.sleep`, `sleep_until`,
    `wait_event(timeout=)`), and `advance(seconds)` moves it by hand.

    `waits` lists the length of every wait the runtime made, in order;
    `on_wait(clock, until)` (if set) is called as each wait begins (until:
    its end in clock time, None for an event with no timeout), the place to
    send an event "while the run waits"."""

    def __init__(self, start: float = START) -> None:
        self.start = float(start)
        self.now = float(start)
        self.waits: list[float] = []
        self.on_wait: Callable[[FakeClock, float | None], None] | None = None
        #: How many times an endless wait yields to other tasks before
        #: WaitsForever is raised.
        self.patience = 200

    def __repr__(self) -> str:
        return f"<FakeClock now={self.now} elapsed={self.elapsed}>"

    @property
    def elapsed(self) -> float:
        """Seconds of clock time since the clock was made."""
        return self.now - self.start

    def advance(self, seconds: float) -> None:
        """Move the time on by `seconds` (>= 0)."""
        if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"FakeClock.advance takes seconds >= 0, not {seconds!r}")
        self.now += seconds

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # other tasks run, as during a real sleep

    async def wait_until(
        self, until: float | None, due: Callable[[], Awaitable[bool]], poll: float
    ) -> None:
        """Wait until `until` (None: until `due()`), or until `due()` says the
        wait ended early: `due` is asked once, other tasks run, it is asked
        again, then the clock jumps to `until`."""
        if self.on_wait is not None:
            self.on_wait(self, until)
        if await due():
            return
        if until is None:
            for _ in range(self.patience):
                await asyncio.sleep(0)
                if await due():
                    return
            raise WaitsForever(
                "the run waits with no timeout (resumable.wait_event) and no event was sent: "
                "send it before the run (rt.send_event) or from clock.on_wait"
            )
        await asyncio.sleep(0)
        if self.now < until and not await due():
            await self.sleep(until - self.now)


class _JumpingSelector(selectors.DefaultSelector):
    """Never blocks while a timer is scheduled: the loop's time jumps to it."""

    loop: _VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None or timeout <= 0 or self.loop is None:
            return super().select(timeout)
        ready = super().select(0)
        if not ready:
            self.loop.virtual += timeout
        return ready


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = _JumpingSelector()
        self.virtual = 0.0
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self.virtual


def virtual_time_loop() -> asyncio.AbstractEventLoop:
    """An event loop whose time jumps to the next timer when nothing else is
    ready: `asyncio.sleep(86400)` returns at once, timers still fire in
    order. (A loop factory for `asyncio.Runner`.)"""
    return _VirtualTimeLoop()
