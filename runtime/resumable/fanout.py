"""Fan-out: `resumable.gather`, `race` and `any`.

    results = await resumable.gather(charge(a), charge(b))   # argument order
    first = await resumable.race(fetch(x), fetch(y))          # result or exception
    value = await resumable.any(fetch(x), fetch(y))           # first success

Each awaitable runs concurrently, in a task of the step: a call of a
decorated function is a child run, numbered in argument order when the
fan-out starts (so its id does not depend on which task starts first);
any other awaitable runs as part of the step, as it would under asyncio.

A fan-out that *decides* something commits the decision before it returns,
as an operation `fanout:<seq>.<n>` of the run, in one transaction with a
cancel request for each child that lost:
- `race` and `any`: the winner (its index; for a plain awaitable also its
  encoded result or exception), so that a resume never picks another;
- `gather` (without return_exceptions): the first failure, in the order
  the fan-out saw them finish (argument order among those that finished
  together).
The losers are then cancelled (cancel.py: RunCancelled at their awaits,
their finally blocks run, durably) and awaited before the fan-out returns.
A step run again after a crash finds the decision: it starts nothing new,
finishes the losers that had not ended (each cancelled at its own await),
and returns the stored winner (a child's stored outcome).

An outcome a fan-out decided is never retried by the retry rule (the
decision is committed): that includes a plain awaitable's exception that
won a race. Outside a durable run the three behave the same way, with
nothing stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from . import codec
from .cancel import claims, deliver
from .errors import BLOCKING, NondeterminismError, SerializationError
from .function import Call
from .lifecycle import Parked, due_check
from .retry import wait_until
from .run import CURRENT, FANOUT, Step, own_error
from .store.base import CANCEL_OP, REQUESTED, Operation, Wake

if TYPE_CHECKING:
    from .run import Run

__all__ = ["Fanout", "any_", "gather", "race"]

GATHER, RACE, ANY = "gather", "race", "any"
#: How often a parked child of a fan-out looks whether it became due early
#: (an event), as a parked run's caller does (lifecycle.py).
POLL = 1.0


def gather(*aws: Awaitable[Any], return_exceptions: bool = False) -> Any:
    """The results of `aws`, run concurrently, in argument order. The first
    failure (once the others are cancelled) is raised, or with
    `return_exceptions` each exception takes its place in the list."""
    return Fanout(GATHER, aws, return_exceptions=return_exceptions)


def race(*aws: Awaitable[Any]) -> Any:
    """The outcome of the first of `aws` to finish: its result, or its
    exception raised; the others are cancelled."""
    return Fanout(RACE, aws)


def any_(*aws: Awaitable[Any]) -> Any:
    """The result of the first of `aws` to succeed (the others are
    cancelled); if all fail, an ExceptionGroup of their exceptions in
    argument order."""
    return Fanout(ANY, aws)


class Fanout:
    """One gather, race or any: started (numbered) when it is created."""

    def __init__(
        self, mode: str, aws: Sequence[Awaitable[Any]], *, return_exceptions: bool = False
    ) -> None:
        if mode != GATHER and not aws:
            raise own_error(ValueError(f"resumable.{mode}() needs at least one awaitable"))
        for i, aw in enumerate(aws):
            if not isinstance(aw, Awaitable):
                _close(aws)
                raise TypeError(
                    f"resumable.{mode}: argument {i} is not awaitable ({type(aw).__name__}): "
                    "pass calls such as fetch(x), not fetch"
                )
        self.mode = mode
        self.aws = list(aws)
        #: Children that wait as rows now (argument index -> wake time), and
        #: a signal when that changes (unload_hook).
        self._parked: dict[int, float | None] = {}
        self._changed = asyncio.Event()
        self.return_exceptions = return_exceptions
        step: Step | None = CURRENT.get()
        self.run: Run | None = None if step is None else step.run
        self.op_id = ""
        if step is not None:
            self.op_id = f"{FANOUT}:{step.seq}.{step.next(FANOUT)}"
            for aw in self.aws:  # numbered in argument order, before any starts
                if isinstance(aw, Call) and aw.step is step and aw.child_id is None:
                    aw.child_id = step.next_child_id()

    def __await__(self) -> Generator[Any, None, Any]:
        return self.wait().__await__()

    # -- unloading: every child still going waits as a row -----------------------

    def unload_hook(self, call: Any) -> Callable[[Any], Awaitable[None]] | None:
        """For a child of this fan-out that parks (runtime._child): note it,
        and wait in the process as a parked child does, until the fan-out
        unloads the run (when every child still going waits)."""
        run = self.run
        index = next((i for i, aw in enumerate(self.aws) if aw is call), None)
        if run is None or index is None:
            return None

        async def parked(p: Parked, due: Callable[[], Awaitable[bool]] | None = None) -> None:
            self._parked[index] = p.wake_at
            self._changed.set()
            try:
                due = due or due_check(run.runtime, call.child_id, p)
                await wait_until(run.runtime.clock, p.wake_at, due, POLL)
            finally:
                self._parked.pop(index, None)

        return parked

    def _may_unload(self, pending: set[asyncio.Future[Any]], tasks: list[Any]) -> bool:
        run = self.run
        if run is None or run.direct is not self or not pending:
            return False
        going = [i for i, t in enumerate(tasks) if t in pending]
        children = {self._child(i) for i in going}
        return all(i in self._parked for i in going) and set(run.in_flight) <= children

    async def _unload(self, pending: set[asyncio.Future[Any]], tasks: list[Any]) -> None:
        """Stop the waiting children's tasks (their rows wait already) and
        unload the run until the first of them is due (raises Park)."""
        run = self.run
        assert run is not None
        going = [i for i, t in enumerate(tasks) if t in pending]
        times = [w for i in going if (w := self._parked.get(i)) is not None]
        ids = tuple(c for i in going if (c := self._child(i)) is not None)
        await self._stop(list(pending), [None] * len(pending))
        wake = Wake(run.runtime.clock.time(), children=ids)
        reason = f"{self.mode}: waiting for child runs {', '.join(ids)}"
        await run.unload(min(times) if times else None, reason, wake=wake, early=True)

    def __repr__(self) -> str:
        return f"<resumable {self.mode} of {len(self.aws)}>"

    def _child(self, i: int) -> str | None:
        aw = self.aws[i]
        return aw.child_id if isinstance(aw, Call) else None

    async def wait(self) -> Any:
        run = self.run
        if run is not None and not (self.mode == GATHER and self.return_exceptions):
            stored = await run.operation(self.op_id)
            if stored is not None and stored.outcome is not None:
                return await self._replay(orjson.loads(stored.outcome))
        if not self.aws:
            return []
        tasks: list[asyncio.Future[Any]] = [asyncio.ensure_future(aw) for aw in self.aws]
        try:
            return await self._decide(tasks)
        except BaseException as e:
            # Left early (the run cancelled, a worker stopping, the store
            # failing): the tasks still going stop too, with the same mark
            # (a run's cancellation reaches its children) or none.
            target = None
            if isinstance(e, asyncio.CancelledError) and run is not None:
                target = run.run_id if claims(run.run_id, e) else None
            await self._stop([t for t in tasks if not t.done()], [target] * len(tasks))
            raise

    async def _decide(self, tasks: list[asyncio.Future[Any]]) -> Any:
        pending = set(tasks)
        while pending:
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({*pending, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
            self._changed.clear()
            pending = {t for t in pending if not t.done()}
            for i, task in enumerate(tasks):  # argument order among those done
                if task in pending:
                    continue
                error = _error(task)
                if error is not None and (
                    isinstance(error, BLOCKING)
                    or not isinstance(error, Exception | asyncio.CancelledError)
                ):
                    # A child blocked (resumable's own error), KeyboardInterrupt,
                    # SystemExit...: nothing is decided, the others stop as they
                    # are (a retry of the run goes on with them).
                    raise error
                if self.mode == GATHER:
                    if error is not None and not self.return_exceptions:
                        await self._commit(i, tasks)
                        raise error
                elif self.mode == RACE or error is None:
                    await self._commit(i, tasks)
                    if error is not None:
                        raise error
                    return task.result()
            # Only once those done decided nothing (a winner among them must
            # not wait with the others).
            if self._may_unload(pending, tasks):
                await self._unload(pending, tasks)
        if self.mode == ANY:
            raise BaseExceptionGroup(
                f"resumable.any: all {len(tasks)} awaitables failed",
                [e for e in map(_error, tasks) if e is not None],
            )
        return [e if (e := _error(t)) is not None else t.result() for t in tasks]

    async def _commit(self, i: int, tasks: list[asyncio.Future[Any]]) -> None:
        """Commit the decision (winner or first failure `i`) with the cancel
        requests of the children still going, then cancel what still runs."""
        run = self.run
        losers = [j for j, t in enumerate(tasks) if j != i and not t.done()]
        error = _error(tasks[i])
        if run is not None:
            decision: dict[str, Any] = {"i": i, "ok": error is None}
            if self._child(i) is None:  # a plain awaitable: its outcome is stored here
                value = error if error is not None else tasks[i].result()
                decision["doc"] = self._encode(i, value).decode()
            ops = [Operation(run.run_id, self.op_id, None, orjson.dumps(decision).decode())]
            ops += [
                Operation(child, CANCEL_OP, None, REQUESTED)
                for j in losers
                if (child := self._child(j)) is not None
            ]
            await run.record(*ops)
            if error is not None:
                run.own_outcome(error)  # decided: never retried
        # A child is told it is cancelled; a plain task is cancelled as the
        # run's, so that child runs it drives are too.
        targets = [self._child(j) or (run.run_id if run is not None else None) for j in losers]
        await self._stop([tasks[j] for j in losers], targets)

    async def _stop(self, tasks: list[asyncio.Future[Any]], targets: Sequence[str | None]) -> None:
        """Cancel `tasks`, each as the cancellation of run `target`
        (cancel.deliver; None: a plain cancellation, which writes nothing),
        and wait for them to finish (their finally blocks)."""
        if not tasks:
            return
        rt = self.run.runtime if self.run is not None else None
        for task, target in zip(tasks, targets, strict=False):
            if target is None or rt is None or not isinstance(task, asyncio.Task):
                task.cancel()
            else:
                deliver(rt, task, target)
        await asyncio.wait(tasks)
        errors = [_error(task) for task in tasks]  # retrieved: no "never retrieved" warning
        for error in errors:
            if error is not None and not isinstance(error, Exception | asyncio.CancelledError):
                raise error  # KeyboardInterrupt, SystemExit... in a finally block

    def _encode(self, i: int, value: Any) -> bytes:
        try:
            return codec.encode(value)
        except SerializationError as e:
            raise SerializationError(
                f"resumable.{self.mode}: the outcome of awaitable {i} ({self.aws[i]!r:.80}) "
                f"cannot be stored, so the {self.mode} cannot commit it: {e}"
            ) from None

    async def _replay(self, decision: dict[str, Any]) -> Any:
        """The step runs again after the decision was committed."""
        run = self.run
        assert run is not None
        store = run.runtime.store
        i = decision.get("i")
        if type(i) is not int or not 0 <= i < len(self.aws):
            raise SerializationError(
                f"run {run.run_id!r}: the stored decision of {self.op_id} names awaitable "
                f"{i!r:.20}, but this resumable.{self.mode} has {len(self.aws)}: the step "
                "changed since it was committed"
            )
        for j, aw in enumerate(self.aws):
            if j == i:
                continue
            child = self._child(j)
            record = None if child is None else await store.io(store.get, child)
            if record is None or record.status not in ("pending", "running", "waiting"):
                _close([aw])  # never started, or ended: nothing to do
                continue
            try:  # a loser that had not ended: cancelled at its own await
                await aw
            except BaseException as e:
                if not isinstance(e, Exception | asyncio.CancelledError):
                    raise
        winner = self.aws[i]
        if self._child(i) is not None:
            value = await winner  # its stored outcome (a failure raises here)
            if decision.get("ok", True):
                return value
            raise NondeterminismError(
                f"run {run.run_id!r}: resumable.{self.mode} ({self.op_id}) committed that child "
                f"run {self._child(i)!r} failed, but it has completed since (it was retried): "
                "the fan-out cannot be decided again; start a new run to do its work again"
            )
        _close([winner])
        value = run.payload(str(decision.get("doc", "null")).encode())
        if decision.get("ok"):
            return value
        if not isinstance(value, BaseException):
            raise SerializationError(f"run {run.run_id!r}: {self.op_id} stored no exception")
        raise run.own_outcome(value)


def _error(task: asyncio.Future[Any]) -> BaseException | None:
    return asyncio.CancelledError() if task.cancelled() else task.exception()


def _close(aws: Sequence[Any]) -> None:
    """Close coroutines that will never be awaited (no "never awaited" warning)."""
    for aw in aws:
        close = getattr(aw, "close", None)
        if callable(close) and asyncio.iscoroutine(aw):
            close()
