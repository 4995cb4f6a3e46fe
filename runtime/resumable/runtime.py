"""`Runtime`: starts, resumes and looks at runs of compiled functions on a store.

    rt = resumable.Runtime("sqlite:///state.db")   # default: see config.py
    rt.run(checkout, "u1", "o1", run_id="order-1")  # start, or resume; the result
    await rt.call(checkout, "u1", "o1")            # the same, async
    checkout.dispatch("u1", "o1")                  # enqueue for a worker; the run id

A run is driven by one owner at a time (store ownership): a second caller of
the same run id waits for the first and then returns its stored outcome.
Each checkpoint is encoded, committed, and decoded again: the function always
goes on from the decoded checkpoint, so what it does never depends on whether
the process crashed in between ("one behaviour, crash or not"). Arguments
and results go through the same codec. How a run is driven and how it ends:
lifecycle.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sys
import threading
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import orjson

from . import codec
from .cancel import Watch, cancelled_error, claims, marked
from .codec import FORMAT_VERSION, Unencodable
from .codec.encoder import type_name
from .config import configured_store, log, set_store
from .driver import Unwind
from .errors import (
    DuplicateRun,
    NondeterminismError,
    RunCancelled,
    RunConflict,
    SerializationError,
    StaleCodeError,
    VersionMismatch,
)
from .function import BoundFunction, Call, Function, registered, unbind
from .ids import check_run_id, shown
from .lifecycle import BLOCKING, Parked, block_if_active, outcome, own_and_drive
from .machine import Machine
from .queues import Queue, check_dedup_key, check_priority
from .retry import Clock, Retry, SystemClock, wait_until
from .run import CheckpointInfo, Run, decode_checkpoint
from .store import (
    ACTIVE,
    BLOCKED,
    CANCELLED,
    FAILED,
    FINISHED,
    PENDING,
    RUNNING,
    RunRecord,
    Store,
    describe,
    open_store,
)
from .store.base import Wake, requeue_write, storable_text

T = TypeVar("T")

__all__ = [
    "BLOCKING",
    "CheckpointInfo",
    "RunRecord",
    "Runtime",
    "configure",
    "decode_checkpoint",
    "default_runtime",
    "reset_default_runtime",
    "run_sync",
]


class Runtime:
    """Drives compiled functions on a store.

    store: a URL (`sqlite:///path.db`, `memory://`; see resumable.store);
    None: `resumable.configure(store=...)`, else $RESUMABLE_STORE, else
    [tool.resumable] in ./pyproject.toml, else sqlite:///.resumable/state.db.
    on_checkpoint: called after each checkpoint is committed.
    retry: the policy of functions that do not set one (default `Retry()`).
    clock, seed: what retries wait with and jitter from (tests pass a clock
    that does not sleep).
    accept_format_1: resume checkpoints of format 1, which have no checksum
    (written by resumable before 0.1); refused by default."""

    def __init__(
        self,
        store: str | None = None,
        *,
        on_checkpoint: Callable[[CheckpointInfo], None] | None = None,
        retry: Retry | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
        accept_format_1: bool = False,
    ) -> None:
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(f"Runtime(retry=...) takes a resumable.Retry(...), not {retry!r}")
        url, origin = configured_store(store)
        self.store: Store = open_store(url)
        self.url = url
        log.info("resumable: store %s (from %s)", describe(url), origin)
        self.on_checkpoint = on_checkpoint
        #: The policy of functions that do not set their own.
        self.retry_policy = retry
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.random = random.Random(seed)
        self.limits = codec.Limits(accept_format_1=accept_format_1)
        #: The top-level runs driven here now, whose cancel requests are
        #: watched (cancel.py), and the task that watches them.
        self._live: dict[str, Watch] = {}
        self._watcher: asyncio.Task[None] | None = None
        #: The runs each task drives now, outermost first (cancel.deliver).
        self._stacks: dict[asyncio.Task[Any], list[Run]] = {}

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<resumable.Runtime {self.url}>"

    # -- starting and resuming runs ---------------------------------------------------

    def run(
        self, fn: Function | BoundFunction, /, *args: Any, run_id: str | None = None, **kwargs: Any
    ) -> Any:
        """Start (or resume, if `run_id` exists) a run and return its result.
        A run that failed raises its exception again. `fn` may be a bound
        decorated method (`obj.method`, `Cls.cmethod`): its object is the
        first argument."""
        return run_sync(lambda: self.call(fn, *args, run_id=run_id, **kwargs))

    async def call(
        self, fn: Function | BoundFunction, /, *args: Any, run_id: str | None = None, **kwargs: Any
    ) -> Any:
        """Async `run`."""
        if run_id is not None:
            check_run_id(run_id)
        function, args = unbind(fn, args)
        try:
            machine = self._machine_of(function)
        except StaleCodeError as e:
            await self._block_stale(run_id, e)
            raise
        new = _new_run(function, machine, args, kwargs, run_id)
        if new is not None:  # stored as it is claimed, unless it exists by then
            return await own_and_drive(self, function, new.run_id, new=new)
        store = self.store
        made, new = await store.io(self._prepare, function, machine, args, kwargs, run_id)
        return await own_and_drive(self, function, made, new=new)

    def _prepare(
        self,
        fn: Function,
        machine: type[Machine],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str | None,
    ) -> tuple[str, RunRecord | None]:
        """The run `rt.call` drives: its id, and its row if it is a new run,
        to be stored claimed (drive_owned). A run of a queue, or with a
        dedup key, is stored now, pending (its queue counts it; its key is
        held) and claimed as any run."""
        placement = _placement(fn, None, None, None)
        if placement[0] is not None or placement[2] is not None:
            return self._create(fn, machine, args, kwargs, run_id, placement), None
        if run_id is not None and self._existing(machine, run_id):
            return run_id, None
        blob, digest = encode_arguments(fn, machine, args, kwargs)
        run_id = run_id or uuid.uuid4().hex
        return run_id, _new_record(fn, machine, run_id, blob, digest, None, RUNNING)

    def dispatch(
        self,
        fn: Function | BoundFunction,
        /,
        *args: Any,
        run_id: str | None = None,
        queue: Queue | None = None,
        priority: int | None = None,
        dedup_key: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Enqueue a run for a worker and return its id (an existing `run_id`
        is returned as it is, when it is a run of the same call: the same
        function with the same arguments; else RunConflict). `queue`: the queue it is started through,
        instead of its function's (`@resumable.function(queue=...)`);
        `priority`: its priority within that queue (default the queue's);
        `dedup_key`: raise DuplicateRun, creating nothing, while a run with
        that key has not ended (queues.py)."""
        if run_id is not None:
            check_run_id(run_id)
        function, args = unbind(fn, args)
        placement = _placement(function, queue, priority, dedup_key)
        machine = self._machine_of(function)
        return self._create(function, machine, args, kwargs, run_id, placement, same_call=True)

    # -- looking at runs ---------------------------------------------------------------

    def get(self, run_id: str) -> RunRecord:
        """The stored record of a run. Raises KeyError."""
        record = self.store.get(run_id)
        if record is None:
            raise KeyError(f"no run {run_id!r} in {self.url}")
        return record

    def status(self, run_id: str) -> str:
        """pending, running, waiting, completed, failed, blocked or cancelled."""
        return self.get(run_id).status

    def result(self, run_id: str) -> Any:
        """The result of a completed run; a failed or blocked run raises its
        exception; a run still going raises ValueError."""
        record = self.get(run_id)
        if record.status in FINISHED:
            fn = registered(record.function)
            return outcome(record, fn.machine() if fn is not None else None, self.limits)
        raise ValueError(f"run {run_id!r} has not finished (status: {record.status})")

    async def wait(self, run_id: str, timeout: float | None = None) -> Any:
        """Wait for a run (driven anywhere: a worker, another process) to end
        and return its result, as `result` does: a failed, blocked or
        cancelled run raises its exception. After `timeout` seconds (None:
        no limit) raise TimeoutError; the run goes on: the wait only reads.
        Raises KeyError for an unknown run. It looks at the store every
        0.01 s at first, backing off to every WAIT_POLL_MAX seconds."""
        if timeout is not None and not (isinstance(timeout, int | float) and timeout >= 0):
            raise ValueError(f"wait(timeout=...) takes seconds (>= 0) or None, not {timeout!r:.80}")
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        store = self.store
        delay = WAIT_POLL_FIRST
        while True:
            record = await store.io(store.get, run_id)
            if record is None:
                raise KeyError(f"no run {run_id!r} in {self.url}")
            if record.status in FINISHED:
                fn = registered(record.function)
                return outcome(record, fn.machine() if fn is not None else None, self.limits)
            pause = delay
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    raise TimeoutError(
                        f"run {run_id!r} has not ended after {timeout:g} s "
                        f"(status: {record.status}); it goes on"
                    )
                pause = min(pause, left)
            await asyncio.sleep(pause)
            delay = min(delay * 2, WAIT_POLL_MAX)

    def retry(self, run_id: str, *, wait: bool = True) -> Any:
        """Make a failed or blocked run runnable again from its last checkpoint
        (after a fix is deployed). `wait`: drive it here, now, and return its
        result (its function's module must be imported); otherwise leave it
        pending for a worker and return None."""
        fn = None
        if wait:
            record = self.get(run_id)
            fn = registered(record.function)
            if fn is None:
                raise LookupError(
                    f"run {run_id!r} is a run of {record.function}, whose module is not "
                    "imported here: import it, or retry with wait=False and let a worker resume it"
                )
        requeue(self.store, run_id)
        if fn is None:
            return None
        return run_sync(lambda: own_and_drive(self, fn, run_id))

    # -- events ---------------------------------------------------------------------

    def send_event(
        self, run_id: str, name: str, payload: Any = None, *, dedup_key: str | None = None
    ) -> bool:
        """Send an event to a run (from any process): the next
        `resumable.wait_event(name)` of the run receives `payload`, also when
        it starts waiting later. A resend with the same `dedup_key` is
        ignored: False (also once the run has ended: a sender retrying after
        a lost answer is told it was sent). Raises LookupError for an unknown
        run, ValueError for a run that has ended, SerializationError for a
        payload that cannot be stored."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"send_event takes an event name (a non-empty str), not {name!r:.80}")
        if dedup_key is not None and not isinstance(dedup_key, str):
            raise TypeError(f"send_event: dedup_key is a str or None, not {dedup_key!r:.80}")
        try:
            blob = codec.encode(payload)
        except SerializationError as e:
            raise SerializationError(f"cannot send event {name!r} to run {run_id!r}: {e}") from None
        return self.store.send_event(run_id, name, blob, dedup_key, self.clock.time())

    # -- cancellation -----------------------------------------------------------------

    def cancel(self, run_id: str) -> bool:
        """Cancel a top-level run and the runs below it (from any process):
        each gets RunCancelled (an asyncio.CancelledError) at the await it
        stands at, its `finally` blocks run (durably), and it ends
        `cancelled`, its result raising RunCancelled. A run that has not
        started ends without running any code. False: it was asked already.
        Raises LookupError (no such run) or ValueError (a child run, or a
        run that has ended)."""
        asked = self.store.request_cancel(run_id)
        watch = self._live.get(run_id)
        if watch is not None:
            watch.tell()  # driven here: at once
        return asked

    async def _finish_children(self, parent: Run) -> None:
        """Drive to their end the child runs of the parent's current step
        that have not ended (a parent resumed to be cancelled: they are
        cancelled too, each at its own await)."""
        store = self.store
        prefix = f"{parent.run_id}/{parent.seq}."
        for row in await store.io(store.list_runs, parent=parent.run_id, statuses=ACTIVE):
            fn = registered(row.function)
            if not row.run_id.startswith(prefix) or fn is None:
                continue
            try:
                await own_and_drive(self, fn, row.run_id, contain=parent.contain)
            except Exception:
                pass  # its end is stored: the parent is cancelled either way
            except RunCancelled as e:
                if e.run_id != row.run_id:
                    raise

    # -- schedules ------------------------------------------------------------------

    def schedule(
        self,
        fn: Function | BoundFunction,
        /,
        *args: Any,
        cron: str | None = None,
        every: Any = None,
        **kwargs: Any,
    ) -> str:
        """Run `fn(*args, **kwargs)` on a schedule, by a worker: `cron` (an
        expression, UTC) or `every` (a timedelta, or seconds). Upserted: the
        same function, arguments and timing give the same schedule id, and
        scheduling it again (at every start of an app) changes nothing.
        Each firing is a run `<schedule id>@<UTC time>` (schedules.py).
        Returns the schedule id."""
        from .schedules import check_timing, new_schedule

        function, args = unbind(fn, args)  # TypeError for anything not decorated
        timing = check_timing(cron, every)
        machine = self._machine_of(function)
        arguments = encode_arguments(function, machine, args, kwargs)
        schedule = new_schedule(function, machine, arguments, *timing, self.clock.time())
        if self.store.upsert_schedule(schedule):
            log.info("resumable: schedule %s created", shown(schedule.schedule_id))
        return schedule.schedule_id

    # -- internals ------------------------------------------------------------------

    @staticmethod
    def _machine_of(fn: Any) -> type[Machine]:
        if not isinstance(fn, Function):
            raise TypeError(f"{fn!r} is not decorated with @resumable.function")
        return fn.machine()

    async def _block_stale(self, run_id: str | None, exc: StaleCodeError) -> None:
        """Block the active run `run_id` whose generated code is stale."""
        store = self.store
        if run_id is None or not await store.lock_async(run_id):
            return
        try:
            record = await store.io(store.get, run_id)
            if record is not None:
                await block_if_active(self, record, exc)
        finally:
            store.unlock(run_id)

    def _create(
        self,
        fn: Function,
        machine: type[Machine],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str | None,
        placement: Placement | None = None,
        *,
        same_call: bool = False,
    ) -> str:
        """Store a new top-level run unless `run_id` exists; its id.
        (Blocking: from async code, call it through `store.io`.) Raises
        DuplicateRun when an unended run holds its dedup key; RunConflict
        when `run_id` is a run of another function, or, with `same_call`
        (dispatch), one started with other arguments."""
        store = self.store
        encoded = encode_arguments(fn, machine, args, kwargs) if same_call else None
        check = encoded[1] if encoded is not None else None
        if run_id is not None and self._existing(machine, run_id, check):
            return run_id
        queue, priority, dedup_key = placement or _placement(fn, None, None, None)
        blob, digest = encoded or encode_arguments(fn, machine, args, kwargs)
        run_id = run_id or uuid.uuid4().hex
        record = _new_record(fn, machine, run_id, blob, digest, None, PENDING)
        record.queue = None if queue is None else queue.name
        record.priority = priority
        record.dedup_key = dedup_key
        holder = store.create_run(record, queue)
        if holder is None or (holder == run_id and self._existing(machine, run_id, check)):
            return run_id
        assert dedup_key is not None
        raise DuplicateRun(dedup_key, holder)

    def _existing(self, machine: type[Machine], run_id: str, digest: str | None = None) -> bool:
        """Whether the run `run_id` exists (then it must be a run of
        `machine`, and, given the `digest` of arguments, started with those:
        else RunConflict)."""
        existing = self.store.get(run_id)
        if existing is None:
            return False
        if existing.function != machine.function_id:
            raise RunConflict(
                f"run {run_id!r} is a run of {existing.function}, not of {machine.function_id}",
                run_id,
            )
        if digest is not None and existing.args_digest and existing.args_digest != digest:
            raise RunConflict(
                f"run {run_id!r} of {machine.qualname} exists and was started with other "
                "arguments: a run id names one call (pass another run id for another call)",
                run_id,
            )
        return True

    async def _sibling(self, parent: Run, child_id: str, function: str, digest: str) -> str | None:
        """The first child of the parent's current step (by number) that is
        a call of `function` with arguments `digest`, not matched yet by
        another call of the step."""
        store = self.store
        prefix = child_id.rsplit(".", 1)[0] + "."
        rows = await store.io(store.list_runs, parent=parent.run_id)
        candidates = sorted(
            (r for r in rows if r.run_id.startswith(prefix) and r.function == function),
            key=lambda r: _child_number(r.run_id),
        )
        for row in candidates:
            if row.run_id in parent.step.matched:
                continue
            record = await store.io(store.get, row.run_id)
            if record is not None and record.args_digest == digest:
                return row.run_id
        return None

    async def _child(
        self, parent: Run, call: Call, child_id: str, *, numbered: bool, first: bool = False
    ) -> Any:
        """A decorated function awaited by a running one: a child run with a
        deterministic id, driven inline; once it has ended, its stored outcome.
        It is matched by its parent, its function and its arguments' digest.
        `numbered`: its id does not depend on the order tasks start children
        in (the step awaits it, or a fan-out numbered it): only then may it
        be stored with its first write. Another child's id may be this one's
        when the step runs again, and it is matched by its row (_sibling),
        which must then exist from its start. `first`: the step never ran
        before (Step.first), so no child of it is stored: nothing to read."""
        fn = call.function
        machine = self._machine_of(fn)
        _check_depth(parent, machine, child_id)
        blob, digest = encode_arguments(fn, machine, call.args, call.kwargs)
        store = self.store
        record = None if first else await store.io(store.get, child_id)
        new = None
        if record is None:
            # Under a worker, a child of a queue goes through it (dispatched)
            # where its parent can wait for it as a row, holding no slot.
            into = fn.queue if parent.contain and _waits_as_row(parent, call) else None
            status = RUNNING if into is None else PENDING
            record = _new_record(fn, machine, child_id, blob, digest, parent.run_id, status)
            if into is None and numbered:
                new = record  # stored with its first write (Run.unsaved)
            elif into is None:
                await store.io(store.create, record)  # claimed as any run (_sibling)
            else:
                record.queue, record.priority = into.name, into.priority
                await store.io(store.create_run, record, into)
        else:
            try:
                _check_child(parent, record, machine, digest)
            except (NondeterminismError, VersionMismatch):
                # Concurrent tasks may start their children in another order
                # than the first time: the stored child of this call is the
                # first one of its function and arguments not matched yet.
                found = await self._sibling(parent, child_id, machine.function_id, digest)
                if found is None:
                    raise
                parent.in_flight[found] = parent.in_flight.pop(child_id, None)
                child_id = call.child_id = found
                record = await store.io(store.get, child_id) or record
        parent.step.matched.add(child_id)
        through = record.queue if record.status not in FINISHED else None
        unload = None
        if parent.direct is call:  # the parent awaits it directly: it unloads with it

            async def unload(parked: Parked) -> None:
                if parent.in_flight.keys() == {child_id}:
                    reason = f"waiting for child run {child_id}: {parked.reason}"
                    wake = Wake(self.clock.time(), child=child_id)
                    await parent.unload(parked.wake_at, reason, wake=wake, early=parked.early)

        elif hasattr(parent.direct, "unload_hook"):  # a child of a fan-out the parent awaits
            unload = parent.direct.unload_hook(call)
        try:
            if through is not None:
                await self._await_dispatched(parent, call, child_id, through)
            value = await own_and_drive(
                self, fn, child_id, contain=parent.contain, unload=unload, new=new, child=True
            )
        except Exception as exc:
            if not isinstance(exc, BLOCKING):
                parent.child_failures.append(exc)
            raise
        except Unwind:
            raise  # the parent unloads with it: it awaits the child again when due
        except RunCancelled as exc:
            if exc.run_id != child_id:
                parent.abandoned.add(child_id)
                raise
            parent.child_failures.append(exc)  # it ended cancelled
            raise
        except BaseException as exc:
            # Cancelled (a wait_for timeout, a cancelled gather): if the parent
            # goes on without it, Run.settle_abandoned marks it failed. (Not a
            # dispatched child a cancellation of the run tree reaches: it is
            # cancelled where it is driven.)
            if not (through is not None and claims(child_id, exc)):
                parent.abandoned.add(child_id)
            raise
        parent.abandoned.discard(child_id)
        return value

    async def _await_dispatched(self, parent: Run, call: Call, child_id: str, queue: str) -> None:
        """A dispatched child run (of a queue, under a worker) is driven by
        whichever worker takes it through its queue: wait for its end, as a
        row when the parent awaits it directly (Park), else in the process
        (a fan-out unloads the parent once all its children wait)."""
        store, clock = self.store, self.clock

        async def ended() -> bool:
            record = await store.io(store.get, child_id)
            return record is None or record.status in FINISHED

        if await ended():
            return
        reason = f"waiting for child run {child_id} (queue {queue!r}, driven by any worker)"
        if parent.direct is call and parent.in_flight.keys() == {child_id}:
            await parent.unload(None, reason, wake=Wake(clock.time(), child=child_id), early=True)
        hook = getattr(parent.direct, "unload_hook", None)
        parked = hook(call) if hook is not None else None
        try:
            if parked is not None:
                await parked(Parked(None, reason), ended)
            else:
                await wait_until(clock, None, ended, DISPATCHED_POLL)
        except asyncio.CancelledError as e:
            if claims(child_id, e) == marked(child_id):
                # A fan-out's loser: its cancel request is committed (and
                # wakes it); whoever drives it delivers it. The parent goes on.
                raise cancelled_error(child_id) from None
            raise


def _waits_as_row(parent: Run, call: Call) -> bool:
    """Would the parent wait for this child as a row: does it await it
    directly, or in a fan-out (resumable.gather, race, any)? Under
    asyncio.gather or tasks of its own it could only wait in its process,
    holding its slot: a queue the parent is in could then never give the
    child one (so such children are driven inline instead)."""
    if parent.direct is call:
        return True
    hook = getattr(parent.direct, "unload_hook", None)
    return hook is not None and hook(call) is not None


def run_sync(start: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine `start()` makes to its end and return its result:
    with `asyncio.run`, or, called from code that runs in an event loop (a
    sync handler of an async web app), in a thread of its own, so that it
    works there too (the caller's loop waits, as for any blocking call)."""
    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    if not in_loop:  # (outside the except block: no context chained onto errors)
        return asyncio.run(start())
    box: list[Any] = []

    def main() -> None:
        try:
            box.append((True, asyncio.run(start())))
        except BaseException as e:  # re-raised in the caller's thread
            box.append((False, e))

    thread = threading.Thread(target=main, name="resumable-run", daemon=True)
    thread.start()
    thread.join()
    ok, value = box[0]
    if not ok:
        raise value
    return value


#: Seconds between looks at a run's row by `Runtime.wait`: the first, doubling
#: up to the last.
WAIT_POLL_FIRST, WAIT_POLL_MAX = 0.01, 0.2

#: Seconds between looks at a dispatched child run's row by a parent that
#: waits for it in its process (not as a row: other awaits are in flight).
DISPATCHED_POLL = 0.2

#: Child runs nested deeper than this (recursion through decorated functions)
#: raise RecursionError at the await that would start the next one.
MAX_CHILD_DEPTH = 1000
#: Interpreter frames one level of child run takes, with room for the codec.
_FRAMES_PER_CHILD = 16


def _check_depth(parent: Run, machine: type[Machine], child_id: str) -> None:
    """Each child run is driven inline, nesting coroutines: refuse a depth
    past MAX_CHILD_DEPTH with a clear RecursionError (as deep recursion is in
    CPython), and keep the interpreter's recursion limit above what the
    depth below it needs."""
    depth = child_id.count("/")
    if depth > MAX_CHILD_DEPTH:
        raise RecursionError(
            f"{machine.qualname} ({machine.source_file}) would start a child run nested "
            f"{depth} deep under run {shown(child_id.split('/', 1)[0])}: resumable drives at "
            f"most {MAX_CHILD_DEPTH} nested child runs. Recurse less deeply, for example "
            "with a loop, or by dispatching the deeper calls as runs of their own"
        )
    needed = (depth + 2) * _FRAMES_PER_CHILD + 2_000
    if sys.getrecursionlimit() < needed:
        sys.setrecursionlimit(needed)


def _child_number(run_id: str) -> int:
    tail = run_id.rsplit(".", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def _check_child(parent: Run, record: RunRecord, machine: type[Machine], digest: str) -> None:
    """The stored child at this id must be this call: same parent, function
    and arguments. Raises VersionMismatch or NondeterminismError."""
    where = f"{parent.machine.qualname} ({parent.machine.source_file})"
    if record.parent != parent.run_id:
        raise NondeterminismError(
            f"{where}: child run {record.run_id!r} belongs to {record.parent!r}, not to "
            f"{parent.run_id!r}; it is not adopted"
        )
    if record.function != machine.function_id:
        raise VersionMismatch(
            f"{where}: child run {record.run_id!r} is a run of {record.function}, but the "
            f"same await now calls {machine.function_id}"
        )
    if record.args_digest and record.args_digest != digest:
        raise NondeterminismError(
            f"{where}: child run {record.run_id!r} of {machine.qualname} was started with "
            "other arguments than this call passes, so the step that calls it, run again "
            "from its checkpoint, did something else: pass only values the step computes "
            "the same way every time (compute a time, a random number or an id in the "
            "child itself, or before the previous await)"
        )


def _new_record(
    fn: Function,
    machine: type[Machine],
    run_id: str,
    blob: bytes,
    digest: str,
    parent: str | None,
    status: str,
) -> RunRecord:
    return RunRecord(
        run_id,
        machine.function_id,
        machine.run_fingerprint,
        blob,
        status=status,
        source=storable_text(os.path.abspath(fn.__wrapped__.__code__.co_filename)),
        parent=parent,
        args_digest=digest,
    )


def _new_run(
    fn: Function,
    machine: type[Machine],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    run_id: str | None,
) -> RunRecord | None:
    """The row of the run `rt.call` starts, if it is new, made without
    reading the store: it is stored with its claim (drive_owned), or, if a
    run of that id exists by then, that run is driven (its arguments are
    the stored ones). None: `Runtime._prepare` decides, reading the store:
    a run of a queue or with a dedup key (stored pending, counted by its
    queue), or arguments that cannot be bound or stored (fine for a run
    that exists: they are not used)."""
    if fn.queue is not None:
        return None
    try:
        blob, digest = encode_arguments(fn, machine, args, kwargs)
    except Exception:
        return None
    return _new_record(fn, machine, run_id or uuid.uuid4().hex, blob, digest, None, RUNNING)


#: Where a new top-level run goes: its queue, its priority, its dedup key.
Placement = tuple[Queue | None, int, str | None]


def _placement(fn: Function, queue: Any, priority: Any, dedup_key: Any) -> Placement:
    """A dispatch's queue (given, else the function's), priority (given,
    else the queue's) and dedup key, checked. TypeError or ValueError."""
    if queue is None:
        queue = fn.queue
    elif not isinstance(queue, Queue):
        raise TypeError(f"dispatch(queue=...) takes a resumable.Queue(...), not {queue!r:.80}")
    if priority is None:
        priority = 0 if queue is None else queue.priority
    else:
        check_priority(priority, "dispatch(priority=...)")
        if queue is None:
            raise ValueError(
                f"dispatch(priority={priority}): a priority orders the runs of a queue, and "
                f"{fn.__qualname__} has none: give it one (@resumable.function(queue=...)) "
                "or pass queue=resumable.Queue(...)"
            )
    return queue, priority, check_dedup_key(dedup_key)


def requeue(store: Store, run_id: str) -> None:
    """Make a failed or blocked run pending again, with the failed or blocked
    children its current step awaits. Raises KeyError or ValueError."""
    record = store.get(run_id)
    if record is None:
        raise KeyError(f"no run {run_id!r} in {store.url}")
    if record.status == CANCELLED:
        raise ValueError(
            f"run {run_id!r} was cancelled, and a cancelled run stays so: start a new run "
            "(with another run id) to do its work again"
        )
    if record.status not in (FAILED, BLOCKED):
        raise ValueError(
            f"run {run_id!r} is {record.status}: only failed or blocked runs can be retried"
        )
    if record.dedup_key is not None:
        holder = store.dedup_holder(record.dedup_key)
        if holder is not None and holder != run_id:  # a new run took the key meanwhile
            raise DuplicateRun(record.dedup_key, holder)
    store.apply(requeue_write(run_id))
    prefix = f"{run_id}/{record.seq}."
    for child in store.list_runs(parent=run_id, statuses=(FAILED, BLOCKED)):
        if child.run_id.startswith(prefix):
            requeue(store, child.run_id)


def bind_arguments(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Bind arguments exactly as calling `fn` would (same TypeError on a bad call)."""
    coro = fn(*args, **kwargs)
    try:
        return dict(coro.cr_frame.f_locals)
    finally:
        coro.close()


def encode_arguments(
    fn: Function, machine: type[Machine], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bytes, str]:
    """(the bound arguments as a codec document, their digest)."""
    bound = bind_arguments(fn.__wrapped__, args, kwargs)
    try:
        blob, plain = codec.encode_document({"v": FORMAT_VERSION}, "value", bound, named=True)
    except Unencodable as e:
        raise SerializationError(
            f"cannot start {machine.qualname}: argument `{e.variable}{e.where()}` holds a "
            f"`{type_name(type(e.value))}`, and {e.reason}"
        ) from None
    tree = bound if plain else orjson.loads(blob)["value"]
    return blob, _digest(tree)


def _digest(tree: Any) -> str:
    """A digest of an encoded value that does not depend on the order sets
    and dicts were filled in (which may differ in another process)."""
    data = orjson.dumps(_canonical(tree), option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(data).hexdigest()[:32]


def _canonical(tree: Any) -> Any:
    if type(tree) is list:
        return [_canonical(x) for x in tree]
    if type(tree) is not dict:
        return tree
    if len(tree) == 1:
        ((tag, body),) = tree.items()
        if tag in ("$set", "$frozenset") and type(body) is list:
            return {tag: sorted((_canonical(x) for x in body), key=_sort_key)}
        if tag == "$dict" and type(body) is list:
            return {tag: sorted((_canonical(x) for x in body), key=_sort_key)}
        if tag == "$ref":
            return {"$ref": None}  # which one depends on traversal order
    if "$id" in tree and "$v" in tree:
        return _canonical(tree["$v"])
    return {k: _canonical(v) for k, v in tree.items()}


def _sort_key(x: Any) -> bytes:
    return orjson.dumps(x, option=orjson.OPT_SORT_KEYS)


# -- the default runtime (dispatch, the worker) -----------------------------------------

_default: Runtime | None = None


def configure(*, store: str | None = None) -> None:
    """Set the store of `Runtime()` without a URL and of the default runtime,
    used by `fn.dispatch(...)` (otherwise $RESUMABLE_STORE, then
    [tool.resumable] in ./pyproject.toml, then sqlite:///.resumable/state.db:
    config.py). A relative SQLite path is relative to the working directory
    of this call."""
    global _default
    set_store(store)
    if _default is not None:
        _default.close()
    _default = None


def default_runtime() -> Runtime:
    global _default
    if _default is None:
        _default = Runtime()
    return _default


def reset_default_runtime() -> None:
    """Close the default runtime, if open; the next use opens it again, by
    the configuration rule as it is then (an app's shutdown: resumable.fastapi)."""
    global _default
    if _default is not None:
        _default.close()
    _default = None
