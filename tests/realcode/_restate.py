"""A deterministic stand-in for the parts of the Restate Python SDK
(`restate.Context` and friends, `restate.gather`, `restate.select`) that the
restate_* modules use. Written for these tests; it follows the SDK's
documented behaviour, not its code.

- `ctx.run_typed(name, action, **kwargs)` returns a durable future that runs
  `action(**kwargs)` once, when first awaited, recording the call as a
  `resumable.testing.step` (so a Script can make it fail); its outcome is
  memoized like Restate's journal.
- Timers, awakeables and promises are futures that complete at a time on the
  context's fake clock; `select` picks the earliest and moves the clock to it.
  What an awakeable or promise resolves to, and when, is scripted by the
  context's `events` (name -> (time, value)); unscripted, it never completes.

Every object here is a dataclass, so it can be held across a checkpoint.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from resumable.testing import step


class TerminalError(Exception):
    """A failure Restate does not retry."""


@dataclass
class Clock:
    now: float = 0.0


def _value(value: Any = None) -> Any:
    return value


@dataclass
class DurableFuture:
    name: str
    action: Any
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: When it completes on the context's clock (for select).
    at: float = 0.0
    recorded: bool = True
    #: The clock it was created on (timers, awakeables and promises).
    clock: Clock | None = None
    done: bool = False
    value: Any = None
    error: BaseException | None = None

    def __await__(self):
        return self._outcome().__await__()

    async def _outcome(self) -> Any:
        if not self.done:
            try:
                if self.recorded:
                    await step(self.name, *self.kwargs.values())
                value = self.action(**self.kwargs)
                if inspect.isawaitable(value):
                    value = await value
                self.value = value
            except TerminalError as e:
                self.error = e
            self.done = True
        if self.error is not None:
            raise self.error
        return self.value


@dataclass
class Promise:
    future: DurableFuture

    def value(self) -> DurableFuture:
        return self.future


@dataclass
class Context:
    """Stands for restate.Context, ObjectContext and WorkflowContext."""

    key_: str = "key-1"
    events: dict[str, tuple[float, Any]] = field(default_factory=dict)
    clock: Clock = field(default_factory=Clock)
    uuids: int = 0

    def key(self) -> str:
        return self.key_

    def uuid(self) -> uuid.UUID:
        self.uuids += 1
        return uuid.uuid5(uuid.NAMESPACE_URL, f"restate/{self.key_}/{self.uuids}")

    def run_typed(
        self, name: str, action: Any, options: Any = None, /, **kwargs: Any
    ) -> DurableFuture:
        return DurableFuture(name, action, kwargs, at=self.clock.now)

    def sleep(self, delta: timedelta) -> DurableFuture:
        seconds = delta.total_seconds()
        return DurableFuture(
            "sleep", _value, {}, at=self.clock.now + seconds, recorded=False, clock=self.clock
        )

    def _event(self, name: str) -> DurableFuture:
        at, value = self.events.get(name, (math.inf, None))
        return DurableFuture(
            name, _value, {"value": value}, at=at, recorded=False, clock=self.clock
        )

    def awakeable(self, type_hint: Any = None) -> tuple[str, DurableFuture]:
        return f"awakeable-{self.key_}", self._event("awakeable")

    def promise(self, name: str, type_hint: Any = None) -> Promise:
        return Promise(self._event(name))


async def gather(*futures: DurableFuture) -> list[DurableFuture]:
    """Waits for every future (in order); returns the futures, now done."""
    for f in futures:
        with contextlib.suppress(TerminalError):
            await f
    return list(futures)


async def select(**futures: DurableFuture) -> list[Any]:
    """The first future to complete on the clock, as [name, value]."""
    name = min(futures, key=lambda n: futures[n].at)
    chosen = futures[name]
    await step("select", name, chosen.at)
    if chosen.clock is not None and chosen.at > chosen.clock.now:
        chosen.clock.now = chosen.at
    return [name, await chosen]
