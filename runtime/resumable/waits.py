"""Durable waits: timers and external events.

    await resumable.sleep(3600)                       # survives restarts
    await resumable.sleep_until(datetime(2027, 1, 1, tzinfo=UTC))
    payload = await resumable.wait_event("approved", timeout=3 * 86400)
    rt.send_event(run_id, "approved", {"by": "ann"})  # from any process

Each wait is a durable operation of the step that starts it, numbered by
kind (run.py): `timer:<seq>.<n>` and `event:<seq>.<n>`, so the step run
again after a crash or a wake-up finds the same one.

- A timer stores its absolute wake time (an `Operation`) before the run
  sleeps, and a wait with a timeout its deadline: run again, the step waits
  for what is left, never for the whole delay again.
- An event wait takes the first event of its name sent to the run and not
  taken yet (send order); the take is bound to the wait in the same
  transaction as the run's next checkpoint (or its end), so an event is
  delivered once per wait: a step run again before that takes the same one.
- A timeout is decided once and recorded at once: run again, the wait
  raises TimeoutError again, even if an event arrived since.

A wait that is what the run's await awaits directly (`await
resumable.sleep(...)` in the decorated function itself) *unloads* the run:
it becomes a row, status waiting, with the wake time (none for an event
wait without timeout: only an event makes it due), and its task ends. The
worker drives it again when it is due, from its last checkpoint; the step
re-evaluates the wait, which finds its operation and returns. A parent
awaiting a child run that unloads itself unloads too, up to the top-level
run. A wait inside a helper coroutine or a gather cannot unload the run
(other code of the step is in flight): it waits in the process, still
durably (a restart waits only for what is left).

Outside a durable run (native mode), `sleep` is `asyncio.sleep` and
`wait_event` raises: nothing can send an event to a plain coroutine.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import math
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .retry import wait_until
from .run import CURRENT, EVENT, TIMER, Step, own_error
from .store.base import Operation, Wake

if TYPE_CHECKING:
    from .run import Run

__all__ = ["TIMED_OUT", "EventWait", "Sleep", "sleep", "sleep_until", "wait_event"]

#: How often a wait that cannot unload its run looks for an event.
EVENT_POLL = 0.5
#: The recorded outcome of an event wait that timed out.
TIMED_OUT = "timeout"
#: The longest delay a timer takes (a century): more is a mistake.
MAX_SLEEP = 100 * 365 * 86400.0


def sleep(seconds: float) -> Any:
    """Wait `seconds`, durably: the run's wake time is stored, and a run
    awaiting it directly costs a row, not a task, until it is due."""
    _check_seconds("sleep", seconds)
    step = CURRENT.get()
    if step is None:
        return asyncio.sleep(seconds)
    return Sleep(step, float(seconds), None)


def sleep_until(when: _dt.datetime) -> Any:
    """Wait until `when`, an aware datetime, durably (see `sleep`)."""
    if not isinstance(when, _dt.datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise TypeError(
            f"sleep_until takes an aware datetime (with tzinfo, such as datetime.UTC), "
            f"not {when!r:.80}"
        )
    at = when.timestamp()
    step = CURRENT.get()
    if step is None:
        return asyncio.sleep(max(0.0, at - time.time()))
    return Sleep(step, None, at)


def wait_event(name: str, timeout: float | None = None) -> Any:
    """The payload of the next event named `name` sent to this run
    (`Runtime.send_event`), kept if it was sent before the wait. With
    `timeout` (seconds), TimeoutError at the await once it has passed."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"wait_event takes an event name (a non-empty str), not {name!r:.80}")
    if timeout is not None:
        _check_seconds("wait_event timeout", timeout)
    step = CURRENT.get()
    if step is None:
        raise RuntimeError(
            f"wait_event({name!r}) outside a durable run: nothing can send an event to a "
            "function called natively; start it with Runtime.run, call or dispatch"
        )
    return EventWait(step, name, None if timeout is None else float(timeout))


def _check_seconds(what: str, seconds: object) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"{what} takes seconds (an int or a float), not {seconds!r:.80}")
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_SLEEP):
        raise own_error(
            ValueError(f"{what}: {seconds!r} is not a number of seconds from 0 to a century")
        )


class _Wait:
    """A durable wait, started (numbered) when it is created, as a child call is."""

    kind = ""

    def __init__(self, step: Step) -> None:
        self.step = step
        self.run: Run = step.run
        self.op_id = f"{self.kind}:{step.seq}.{step.next(self.kind)}"

    def __await__(self) -> Generator[Any, None, Any]:
        return self.wait().__await__()

    async def wait(self) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<resumable {type(self).__name__} {self.op_id} of run {self.run.run_id!r}>"


class Sleep(_Wait):
    kind = TIMER

    def __init__(self, step: Step, seconds: float | None, at: float | None) -> None:
        super().__init__(step)
        self.seconds = seconds
        self.at = at

    async def wait(self) -> None:
        run = self.run
        clock = run.runtime.clock
        stored = await run.operation(self.op_id)
        new = stored is None
        if stored is not None and stored.wake_at is not None:
            wake_at = stored.wake_at
        elif self.at is not None:
            wake_at = self.at
        else:
            assert self.seconds is not None
            wake_at = clock.time() + self.seconds
        op = Operation(run.run_id, self.op_id, wake_at)
        if wake_at <= clock.time():
            return
        if run.may_unload(self):
            reason = f"sleeping until {_shown(wake_at)}"
            # early: a cancellation (Runtime.cancel) may end the sleep
            await run.unload(wake_at, reason, (op,) if new else (), early=True)
        if new:
            await run.record(op)
        await clock.sleep(max(0.0, wake_at - clock.time()))


class EventWait(_Wait):
    kind = EVENT

    def __init__(self, step: Step, name: str, timeout: float | None) -> None:
        super().__init__(step)
        self.name = name
        self.timeout = timeout

    async def wait(self) -> Any:
        run = self.run
        store, clock = run.runtime.store, run.runtime.clock
        taken = await store.io(store.taken_event, run.run_id, self.op_id)
        if taken is not None:
            return run.payload(taken.payload)
        stored = await run.operation(self.op_id)
        if stored is not None and stored.outcome == TIMED_OUT:
            raise run.own_outcome(self._timeout_error())
        deadline = None
        if stored is not None:
            deadline = stored.wake_at
        elif self.timeout is not None:
            deadline = clock.time() + self.timeout
        op = Operation(run.run_id, self.op_id, deadline)
        recorded = stored is not None or deadline is None
        while True:
            skip = run.taken_ids()
            event = await store.io(store.next_event, run.run_id, self.name, skip)
            if event is not None:
                run.take(event.event_id, self.op_id)
                return run.payload(event.payload)
            now = clock.time()
            if deadline is not None and now >= deadline:
                await run.record(Operation(run.run_id, self.op_id, deadline, TIMED_OUT))
                raise run.own_outcome(self._timeout_error())
            if run.may_unload(self):
                until = f" (at most until {_shown(deadline)})" if deadline is not None else ""
                await run.unload(
                    deadline,
                    f"waiting for event {self.name!r}{until}",
                    () if recorded else (op,),
                    Wake(now, event=self.name, skip=tuple(skip)),
                    early=True,
                )
            if not recorded:
                await run.record(op)
                recorded = True
            await wait_until(clock, deadline, self._sent, EVENT_POLL)

    async def _sent(self) -> bool:
        store, run = self.run.runtime.store, self.run
        event = await store.io(store.next_event, run.run_id, self.name, run.taken_ids())
        return event is not None

    def _timeout_error(self) -> TimeoutError:
        return TimeoutError(
            f"no event {self.name!r} reached run {self.run.run_id!r} within "
            f"{self.timeout if self.timeout is not None else 0:g} s"
        )


def _shown(when: float) -> str:
    return _dt.datetime.fromtimestamp(when, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
