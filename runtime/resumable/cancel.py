"""Cancellation and timeouts of runs.

    rt.cancel(run_id)                     # from any process: see Runtime.cancel
    @resumable.function(timeout=3600)     # from the run's first start, waits included

A cancellation is a durable request first: an operation `cancel` of the
run, and of every run below it, with outcome "requested" (store.request_cancel).
It is *delivered* as `RunCancelled`, a `CancelledError`, raised at the
await the run stands at, where its `except` and `finally` blocks see it; the
delivery is committed with the run's next checkpoint (outcome "delivered"),
so a run resumed before that gets it again at the same await, and one
resumed after it never again. Their awaits are checkpointed as any others.

- A run being driven is told through its task: `task.cancel(mark)`, where
  the mark names the run (`marked`), by the process driving it (Runtime
  watches the requests of the runs it drives, CANCEL_POLL). The driver of
  the innermost run of that task claims the CancelledError as the run's own
  (it uncancels the task, so that the `finally` blocks can checkpoint), and
  the runs above see the failure of the child run they await.
- A run resumed with a request not delivered yet first finishes the child
  runs of its current step that have not ended (each gets its own request
  at its own await and runs its own `finally` blocks), then gets
  RunCancelled at its await. A run that never started ends cancelled without
  running any of its code.
- A CancelledError leaving a run that was asked to be cancelled ends it
  `cancelled`, with a RunCancelled naming it; anything else leaving it then
  fails it, never tried again.

A timeout is a deadline, stored as the operation `deadline` at the run's
first start: driven past it, the run is cancelled as above (a timer while it
runs; at once when resumed past it); a waiting run is due at its deadline
at the latest. It ends failed with TimeoutError, never tried again.

A cancellation without a mark (a worker stopping, Ctrl-C) is not the
run's: nothing is written, as for a crash (driver.interrupted).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from .errors import RunCancelled

__all__ = ["CANCEL_POLL", "MARK", "TIMEOUT_MARK", "Watch", "claims", "deliver", "marked"]

#: How often a process looks for cancel requests of the runs it drives.
CANCEL_POLL = 1.0
#: The messages of the task cancellations that deliver requests.
MARK, TIMEOUT_MARK = "resumable: cancel run ", "resumable: timeout of run "


def marked(run_id: str, *, timeout: bool = False) -> str:
    """The message to cancel the task driving `run_id` with."""
    return (TIMEOUT_MARK if timeout else MARK) + run_id


def claims(run_id: str, exc: BaseException) -> str | None:
    """The mark of `exc`, a CancelledError, if it is a delivery meant for
    run `run_id` or a run above it (None: not resumable's, or not for it)."""
    message = exc.args[0] if exc.args else None
    if type(message) is not str:
        return None
    for prefix in (MARK, TIMEOUT_MARK):
        if message.startswith(prefix):
            target = message[len(prefix) :]
            if run_id == target or run_id.startswith(target + "/"):
                return message
    return None


def cancelled_error(run_id: str, *, why: str = "") -> RunCancelled:
    return RunCancelled(f"run {run_id!r} was cancelled{why}", run_id)


def timeout_error(run_id: str, timeout: float | None) -> TimeoutError:
    return TimeoutError(
        f"run {run_id!r} did not finish within its timeout of {timeout or 0:g} s "
        "(@resumable.function(timeout=...))"
    )


def uncancel() -> None:
    """The task's cancellation is the run's own exception from now on."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        task.uncancel()


def deliver(rt: Any, task: asyncio.Task[Any], target: str, *, timeout: bool = False) -> None:
    """Deliver the cancellation of run `target` to `task`, which drives it
    (or, for a plain task of a fan-out, the child runs below it): each run
    of the task at or below `target` is to be cancelled; the innermost one
    gets it at the await it stands at. If that run is inside its awaitable,
    through the task (`task.cancel(mark)`); if it is in resumable's own code
    (writing a checkpoint), at its next await, so no write is cut off."""
    stack = rt._stacks.get(task, [])
    below = [r for r in stack if r.run_id == target or r.run_id.startswith(target + "/")]
    for run in below:
        if timeout and run.run_id == target:
            run.timed_out = True
        else:
            run.cancel_requested = True
    if below and below[-1] is stack[-1] and stack[-1].direct is None:
        inner = stack[-1]
        if inner.cancel_pending is None:
            inner.cancel_pending = cancelled_error(inner.run_id)
        return
    task.cancel(marked(target, timeout=timeout))


def deliver_soon(rt: Any, task: asyncio.Task[Any], target: str) -> None:
    """`deliver` from any thread."""
    loop = task.get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        deliver(rt, task, target)
    else:
        loop.call_soon_threadsafe(deliver, rt, task, target)


class Watch:
    """While a run is driven: its place on its task's stack of runs (the
    innermost run of a task gets the task's cancellations), its deadline's
    timer (`arm`), and (a top-level run) its place among the runs whose
    cancel requests the runtime watches."""

    def __init__(self, run: Any, *, top: bool) -> None:
        self.run = run
        self.rt = rt = run.runtime
        self.task = asyncio.current_task()
        self.told = False
        self.timer: asyncio.TimerHandle | None = None
        self.top = top and self.task is not None
        if self.task is not None:
            rt._stacks.setdefault(self.task, []).append(run)
        if self.top:
            rt._live[run.run_id] = self
            _ensure_watcher(rt)

    def arm(self) -> None:
        """Start the deadline's timer (once the run knows its deadline)."""
        run = self.run
        if run.deadline is not None and not run.timed_out and self.task is not None:
            delay = max(0.0, run.deadline - self.rt.clock.time())
            self.timer = asyncio.get_running_loop().call_later(delay, self._time_out)

    def _time_out(self) -> None:
        if self.task is not None:
            deliver(self.rt, self.task, self.run.run_id, timeout=True)

    def tell(self) -> None:
        """Deliver the run's cancel request through its task (once; never
        to a run that knows of it already: it was resumed to be cancelled,
        and is delivering it, or its finally blocks are running)."""
        if self.told or self.task is None or self.run.cancel_requested:
            return
        self.told = True
        deliver_soon(self.rt, self.task, self.run.run_id)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.task is not None:
            stack = self.rt._stacks.get(self.task, [])
            if stack and stack[-1] is self.run:
                stack.pop()
            if not stack:
                self.rt._stacks.pop(self.task, None)
        if self.top and self.rt._live.get(self.run.run_id) is self:
            del self.rt._live[self.run.run_id]


def _ensure_watcher(rt: Any) -> None:
    watcher = rt._watcher
    loop = asyncio.get_running_loop()
    if watcher is not None and not watcher.done() and watcher.get_loop() is loop:
        return
    rt._watcher = loop.create_task(_watch_requests(rt))


async def _watch_requests(rt: Any) -> None:
    """Deliver the cancel requests (from any process) of the runs `rt` drives."""
    store = rt.store
    while rt._live:
        await asyncio.sleep(CANCEL_POLL)
        ids = [
            run_id
            for run_id, watch in rt._live.items()
            if not (watch.told or watch.run.cancel_requested)
        ]
        if not ids:
            continue
        with contextlib.suppress(Exception):  # the store failing: the runs notice it
            for run_id in await store.io(store.cancel_requests, ids):
                watch = rt._live.get(run_id)
                if watch is not None:
                    watch.tell()
