"""Retry policies, and the clock the runtime waits with.

    @resumable.function(retry=resumable.Retry(max_attempts=5, initial_delay=0.5))
    async def checkout(...): ...

A step is what runs between two checkpoints: the operand of an await, the
await itself, and the code after it up to the next await. When the awaited
call (or its operand) raises, the step is tried again from its checkpoint
after a delay, up to `max_attempts` attempts in all; then the exception is
raised at the await, where the function's own try/except can catch it.

Never retried: programming errors (`PROGRAMMING_ERRORS`), the types in
`non_retryable`, resumable's own errors, a failure of a child run (the child
already retried under its own policy), and anything that is not an
`Exception` (Ctrl-C, cancellation).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from .errors import ResumableError

__all__ = [
    "DEFAULT_RETRY",
    "MAX_DELAY",
    "NO_RETRY",
    "PROGRAMMING_ERRORS",
    "Clock",
    "Retry",
    "SystemClock",
    "wait_until",
]

#: The longest a retry may wait (a year): a longer delay, an infinite or a
#: nan one is a mistake, not a wait (the run would sleep forever).
MAX_DELAY = 365 * 86400.0

#: Exceptions that mean the code is wrong: trying again cannot help.
PROGRAMMING_ERRORS: tuple[type[BaseException], ...] = (
    TypeError,
    NameError,  # and UnboundLocalError
    AttributeError,
    AssertionError,
    SyntaxError,
    ImportError,
    NotImplementedError,
    RecursionError,
    ResumableError,
)


@dataclass(frozen=True)
class Retry:
    """How often, and after what delays, a failing step is tried again.

    The delay before attempt n+1 is `initial_delay * backoff**(n-1)`, at most
    `max_delay`, multiplied by a random factor in `[1 - jitter, 1 + jitter]`.
    `Retry(max_attempts=1)`: exactly one attempt, the exception is raised at
    the await at once."""

    max_attempts: int = 3
    initial_delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.1
    non_retryable: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"Retry: max_attempts must be an int >= 1, not {self.max_attempts!r}")
        for name in ("initial_delay", "max_delay"):
            value = getattr(self, name)
            if not (_number(value) and 0 <= value <= MAX_DELAY):
                raise ValueError(
                    f"Retry: {name} must be seconds between 0 and {MAX_DELAY:g} (a year), "
                    f"not {value!r}"
                )
        if not (_number(self.backoff) and self.backoff >= 1):
            raise ValueError(f"Retry: backoff must be a finite number >= 1, not {self.backoff!r}")
        if not (_number(self.jitter) and 0 <= self.jitter <= 1):
            raise ValueError(f"Retry: jitter must be between 0 and 1, not {self.jitter!r}")
        if not isinstance(self.non_retryable, tuple):
            object.__setattr__(self, "non_retryable", tuple(self.non_retryable))
        for t in self.non_retryable:
            if not (isinstance(t, type) and issubclass(t, BaseException)):
                raise TypeError(f"Retry: non_retryable takes exception types, not {t!r}")

    def retryable(self, exc: BaseException) -> bool:
        """Whether `exc` may be retried at all (attempts aside)."""
        return (
            isinstance(exc, Exception)
            and not isinstance(exc, PROGRAMMING_ERRORS)
            and not isinstance(exc, self.non_retryable)
        )

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        try:
            base = min(self.initial_delay * self.backoff ** (attempt - 1), self.max_delay)
        except OverflowError:  # backoff ** attempt beyond floats: far past max_delay
            base = self.max_delay
        if self.jitter:
            base *= 1 + self.jitter * (2 * rng.random() - 1)
        return max(base, 0.0)


def _number(value: object) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


DEFAULT_RETRY = Retry()
NO_RETRY = Retry(max_attempts=1)


class Clock(Protocol):
    """What the runtime reads the time from and waits with (tests pass a
    clock that does not sleep). A clock that does not sleep should also
    define `async wait_until(until, due, poll)` (see `wait_until` below):
    otherwise a wait that may end early is looked at every `poll` seconds
    of its time, which for a wait of days is many looks."""

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


async def wait_until(
    clock: Clock, until: float | None, due: Callable[[], Awaitable[bool]], poll: float
) -> None:
    """Sleep until the time `until` (None: no end), or until `due()` says
    something else made the wait end, asked every `poll` seconds. A clock
    with its own `wait_until(until, due, poll)` does it its way (a test
    clock jumps to `until` at once)."""
    own = getattr(clock, "wait_until", None)
    if own is not None:
        await own(until, due, poll)
        return
    while True:
        if await due():
            return
        now = clock.time()
        if until is not None and now >= until:
            return
        await clock.sleep(poll if until is None else max(0.0, min(poll, until - now)))


class SystemClock:
    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
