"""One run being driven: its steps, checkpoints, failed attempts and keys.

A *step* is what runs after checkpoint k (the operand of await k, the await,
and the code after it) up to checkpoint k+1; step 0 starts from the stored
arguments. Everything a step does is identified by (run id, k): the ids of
the child runs it starts and the keys `resumable.idempotency_key()` hands
out, so they are the same when the step runs again, after a crash or a retry.

While a step is in flight, `CURRENT` (a context variable) holds its `Step`,
in the step's own code, in the coroutines it awaits and in the tasks it
creates (they copy the context). A decorated function called there makes a
child call of that step. A step ends when the run reaches its next await or
its end: a task that still drives a child then, or calls a decorated
function afterwards, is an error (NondeterminismError, which blocks the run),
and its child is not driven further.

Every write is fenced by the run's lease (store/base.py): one that changes
no row raises OwnershipLost, and the driver stops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Collection
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import cancel, codec, contexts
from .codec import Unencodable
from .codec.encoder import type_name
from .driver import Unwind, interrupted
from .errors import (
    BLOCKING,
    CheckpointError,
    NondeterminismError,
    OwnershipLost,
    RunCancelled,
    SerializationError,
    VersionMismatch,
)
from .ids import child_id
from .machine import Locals, Machine
from .retry import DEFAULT_RETRY, Retry
from .store import Lease, RunRecord
from .store.base import (
    CANCEL_OP,
    DEADLINE_OP,
    DELIVERED,
    Operation,
    Ownership,
    Wake,
    Write,
    checkpoint_write,
    operation_write,
    park_write,
    wait_write,
    woken_by_end,
)

if TYPE_CHECKING:
    from .function import Call, Function
    from .runtime import Runtime

__all__ = [
    "CURRENT",
    "CheckpointInfo",
    "Park",
    "Run",
    "Step",
    "decode_checkpoint",
    "idempotency_key",
    "one_line",
]


#: The kinds of durable operations a step numbers, each counted on its own:
#: child runs, idempotency keys, timers (`resumable.sleep`), event waits
#: and fan-outs (`resumable.gather`, `race`, `any`).
CHILD, KEY, TIMER, EVENT, FANOUT = "child", "key", "timer", "event", "fanout"
OPERATION_KINDS = (CHILD, KEY, TIMER, EVENT, FANOUT)
_NO_COUNTS = dict.fromkeys(OPERATION_KINDS, 0)  # a new step's (copied)


class Step:
    """The step in flight: what its durable operations are numbered by.

    Each operation a step starts takes the next number of its kind, in
    program order, the moment it starts (Temporal's `_next_seq(kind)`), so the
    step run again after a crash or a retry gives each the same id: child
    run k of step n is `<run>/<n>.<k>`, its k-th idempotency key
    `<run>:<n>.<k>` (`<run>:<n>` for the first)."""

    __slots__ = ("_matched", "closed", "counts", "first", "run", "seq")

    def __init__(self, run: Run, seq: int) -> None:
        self.run = run
        self.seq = seq
        #: Made at the first operation (most steps start none).
        self.counts: dict[str, int] | None = None
        self.closed = False  # its run went on past it
        self._matched: set[str] | None = None
        #: Its run wrote its checkpoint just now (Run.checkpoint), so the step
        #: never ran before: no operation of it is stored, none of its child
        #: runs exists. (False for a step resumed, retried, or run from the
        #: arguments: an earlier attempt may have started children.)
        self.first = False

    @property
    def matched(self) -> set[str]:
        """The stored child runs calls of this step were matched with."""
        if self._matched is None:
            self._matched = set()
        return self._matched

    def next(self, kind: str) -> int:
        """The number of the next operation of `kind` this step starts."""
        counts = self.counts
        if counts is None:
            counts = self.counts = _NO_COUNTS.copy()
        n = counts[kind]
        counts[kind] = n + 1
        return n

    def next_key(self) -> str:
        n = self.next(KEY)
        return f"{self.run.run_id}:{self.seq}" + (f".{n}" if n else "")

    def next_child_id(self) -> str:
        return child_id(self.run.run_id, self.seq, self.next(CHILD))


#: The step in flight in this context (None outside runs). Calling a
#: decorated function while it is set makes a child call.
CURRENT: ContextVar[Step | None] = ContextVar("resumable_current_step", default=None)


def idempotency_key() -> str:
    """A key for an external call made by the current step, the same every
    time the step runs again (after a crash or a retry): `<run id>:<n>` for the
    first key a step asks for, `<run id>:<n>.<k>` for the k-th after it.

    Pass it to services that deduplicate requests (a payment API's
    Idempotency-Key header), so that a step run twice has its effect once.
    Outside a durable run (native mode) every call returns a new random key."""
    step = CURRENT.get()
    if step is None:
        return uuid.uuid4().hex
    return step.next_key()


@dataclass(frozen=True)
class CheckpointInfo:
    """What `on_checkpoint` observers receive after each checkpoint is saved."""

    run_id: str
    function: str
    seq: int
    state: int
    line: int
    source: str
    locals: dict[str, Any]
    size: int


class Park(Unwind):
    """Internal: the run waits, as a row with a wake time (None: until an
    event), to go on from its checkpoint (a step tried again, a timer, an
    event); raised out of the driver (never into user code)."""

    def __init__(self, wake_at: float | None, reason: str, *, early: bool = False) -> None:
        super().__init__(wake_at, reason)
        self.wake_at = wake_at
        self.reason = reason
        #: Something other than the time can end the wait (an event).
        self.early = early


class Run:
    """The driver's partner for one run (top-level or child): `m.run`."""

    def __init__(
        self,
        runtime: Runtime,
        function: Function,
        machine: type[Machine],
        record: RunRecord,
        lease: Lease,
        *,
        contain: bool,
        unsaved: bool = False,
    ) -> None:
        self.runtime = runtime
        self._ownership = runtime.store.ownership
        #: The task driving the run (lifecycle._drive), once it checkpoints.
        self._task: asyncio.Task[Any] | None = None
        #: The store's `write_checkpoint`, when a commit is `apply` and nothing more.
        store = runtime.store
        self._write_checkpoint = store.write_checkpoint if store.applies_in_place else None
        #: Ownership that never ends by the clock (OS locks, memory://): no
        #: `current` check after each await.
        self._lapses = type(self._ownership).current is not Ownership.current
        self.function = function
        self.machine = machine
        self.lease = lease
        self.run_id = record.run_id
        self.seq = record.seq
        self.line = record.line  # of the await of checkpoint `seq`
        self.attempt = record.attempt
        self.attempts = record.attempts
        self.policy: Retry = function.retry or runtime.retry_policy or DEFAULT_RETRY
        #: A worker's run: a BaseException from a step blocks it (StepAborted).
        self.contain = contain
        #: A dispatched child's parent, due when this run ends.
        self.wakes = woken_by_end(record)
        self.step = Step(self, self.seq)
        #: Exceptions decoded from the current checkpoint (or the arguments):
        #: raised again, they were not first raised by this step.
        self.carried: list[BaseException] = []
        #: The final failures of child runs awaited in this step: never
        #: retried by this run, the child already did.
        self.child_failures: list[BaseException] = []
        #: Child runs this run was cancelled out of (asyncio.wait_for timed
        #: out, a gather was cancelled): failed once it has passed them by.
        self.abandoned: set[str] = set()
        #: Child runs being driven now, by the task driving each.
        self.in_flight: dict[str, asyncio.Task[Any] | None] = {}
        #: A task called a decorated function after its step had ended.
        self.outlived: NondeterminismError | None = None
        #: What the driver awaits at the current await (a wait that is it
        #: may unload the run).
        self.direct: Any = None
        #: Events the step took (event id, op id): bound at the next checkpoint.
        self.takes: list[tuple[int, str]] = []
        #: Outcomes of resumable's own waits raised in this step (a
        #: timeout): never retried.
        self.own_outcomes: list[BaseException] = []
        #: Cancellation (cancel.py): the run was asked to be cancelled, or
        #: its deadline (`timeout=`) passed; what to raise at the next await
        #: (a request not delivered yet); the delivery this step made (the
        #: operation it commits with the next checkpoint).
        self.cancel_requested = False
        self.timed_out = False
        self.deadline: float | None = None
        self.cancel_pending: BaseException | None = None
        self.delivered: Operation | None = None
        #: The run's row while it is not stored yet: a child run is stored
        #: with its first write (`commit`), in the same transaction. Until
        #: then a crash leaves no trace of it, and its parent's resume (from
        #: the checkpoint before it) starts it again, as it would anyway.
        self.unsaved = record if unsaved else None

    async def commit(self, write: Write) -> bool:
        """Commit a write of this run's row, with the row itself if it is
        not stored yet."""
        if self.unsaved is not None:
            write = dataclasses.replace(write, creates=self.unsaved)
        if not await self.runtime.store.commit(write):
            return False
        self.unsaved = None
        return True

    # -- steps --------------------------------------------------------------------

    def begin(self, values: dict[str, Any], blob: bytes, *, exceptions: bool = True) -> None:
        """Open step `self.seq`, from locals (or arguments) just decoded from
        `blob`: the exceptions among them are carried, not raised by the step
        (an exception is always written with the `$exc` tag). `exceptions`
        False: `values` hold none (they are immutable values and cursors)."""
        self.step.closed = True
        self.step = step = Step(self, self.seq)
        CURRENT.set(step)
        # New lists only in place of lists that hold something: nothing
        # holds these but the run (they are reached through it), and most
        # steps leave them empty.
        if self.child_failures:
            self.child_failures = []
        if self.takes:
            self.takes = []
        if self.own_outcomes:
            self.own_outcomes = []
        if exceptions and _EXC_TAG in blob:
            self.carried = _exceptions_in(values)
        elif self.carried:
            self.carried = []

    async def child(self, call: Call, step: Step) -> Any:
        """Drive a decorated function awaited by this run as a child run."""
        if step.closed:
            error = NondeterminismError(
                f"{self.machine.qualname} ({self.machine.source_file}): run {self.run_id!r}: "
                f"a task created by step {step.seq} called {call.function.__qualname__} after "
                "that step had ended; await every task a step creates before the next await"
            )
            if self.outlived is None:
                self.outlived = error  # the run is blocked at its next await (or its end)
            raise error
        # Numbered before any starts (a fan-out, in argument order), or the
        # step's own await: its number is the same whenever the step runs.
        numbered = call.child_id is not None or self.direct is call
        child_id = call.child_id = call.child_id or step.next_child_id()
        # In flight from now on (before anything is awaited), so that the end
        # of the step never misses a child that a task is starting.
        self.in_flight[child_id] = asyncio.current_task()
        try:
            return await self.runtime._child(
                self, call, child_id, numbered=numbered, first=step.first
            )
        finally:
            self.in_flight.pop(call.child_id, None)  # matched with another: runtime._child

    def end_step(self) -> None:
        """The current step ends (the run reached its next await, or its end):
        from now on a task of the step that calls a decorated function fails
        (and blocks the run, if it goes on); tasks still driving child runs
        are cancelled, so that no child is driven past its step. Raises
        NondeterminismError if either happened."""
        self.step.closed = True
        if self.outlived is not None:
            self.cancel_in_flight()
            raise self.outlived
        if not self.in_flight:
            return
        self.cancel_in_flight()
        names = ", ".join(sorted(self.in_flight))
        raise NondeterminismError(
            f"{self.machine.qualname} ({self.machine.source_file}): run {self.run_id!r} went on "
            f"while tasks it created still drove child runs ({names}); await every task a step "
            "creates before the next await (or before returning)"
        )

    def leave_step(self) -> None:
        """The run stops here (it ends, waits or fails): its step is over,
        and no task of it drives or starts a child run any more."""
        self.step.closed = True
        self.cancel_in_flight()

    def cancel_in_flight(self) -> None:
        """Cancel the tasks (other than this one) still driving child runs."""
        for task in self.in_flight.values():
            if task is not None and task is not asyncio.current_task():
                task.cancel()

    # -- checkpoints --------------------------------------------------------------

    async def checkpoint(self, m: Machine, state: int, L: Locals) -> Locals:
        cls = self.machine
        task = self._task
        if task is None:  # one task drives a Run, from its start to its end or wait
            task = self._task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError()  # being stopped: nothing more is written
        if self.outlived is None and not self.in_flight:
            self.step.closed = True  # end_step(), where it has nothing else to do
        else:
            self.end_step()
        seq = self.seq + 1
        closures = None
        try:  # the locals live at `state`, with the envelope (v, fn, at, fp, seq, state)
            fast = codec.encode_checkpoint_fresh(cls, state, seq, L.__dict__)
            if fast is None:  # to be decoded, after the general walk
                closures = _closures(cls, L)
                blob = codec.encode_checkpoint(cls, state, seq, L.__dict__, closures=closures)
                values = None
            else:
                blob, values = fast
        except Unencodable as e:
            raise self._unencodable(state, e) from None
        line = m.lines[state] + m.line_shift  # m.source_line(state), inlined
        if self.takes or self.delivered is not None or self.unsaved is not None:
            write = checkpoint_write(
                self.lease,
                blob,
                seq,
                line,
                cls.run_fingerprint,
                takes=tuple(self.takes),
                operations=() if self.delivered is None else (self.delivered,),
            )
            committed = await self.commit(write)
        elif self._write_checkpoint is not None:  # the common case: nothing but the checkpoint
            committed = self._write_checkpoint(self.lease, blob, seq, line, cls.run_fingerprint)
        else:  # commit(), inlined: on every await
            write = checkpoint_write(self.lease, blob, seq, line, cls.run_fingerprint)
            committed = await self.runtime.store.commit(write)
        if not committed:
            raise self.lost("its checkpoint")
        self.delivered = None
        self.seq = seq
        self.line = line
        self.attempt = 0
        if self.abandoned:
            await self.settle_abandoned()
        # The function goes on from the decoded values, in the same locals
        # object: closures rebuilt from the checkpoint share it, and so do
        # closures the function gave away (a global, a callback). When every
        # live value is immutable (or a range cursor, rebuilt as its decode
        # would), `values` are those already: decoding gives the same.
        if values is None:
            values = _decode_locals(blob, cls, closures)
            self.begin(values, blob)
        else:
            self.begin(values, blob, exceptions=False)
        # Checkpoint `seq` is written once per run (a run resumes from its
        # last checkpoint and writes the next), and a step starts its
        # operations only after its checkpoint commits: none exists yet.
        self.step.first = True
        # The locals object keeps its identity; its variables are `values`
        # (a dict of the run's own: nothing else holds it).
        fresh = L
        fresh.__dict__ = values
        observer = self.runtime.on_checkpoint
        if observer is not None:
            observer(
                CheckpointInfo(
                    run_id=self.run_id,
                    function=cls.function_id,
                    seq=seq,
                    state=state,
                    line=line,
                    source=f"{cls.source_file}:{line}",
                    locals=dict(fresh.__dict__),
                    size=len(blob),
                )
            )
        return fresh

    def owned(self) -> None:
        """After an await, before the code after it runs: raise
        OwnershipLost if this process may no longer own the run by its own
        clock (its lease ended unrenewed while the await was in flight: the
        process was frozen, or cut off from the store). The rest of the step
        then never runs here; whoever took the run over runs it."""
        if self._lapses and not self._ownership.current(self.run_id):
            raise OwnershipLost(
                f"run {self.run_id!r}: its lease ended before it was renewed (this process "
                "was frozen or cut off from the store for longer than the lease), so the "
                "code after its await was not run here; another driver may have taken it "
                "over; stopped driving it here"
            )

    def lost(self, what: str) -> OwnershipLost:
        return OwnershipLost(
            f"run {self.run_id!r}: {what} was not written: another driver took the run over "
            f"(owner generation {self.lease.generation} is no longer the run's); stopped "
            "driving it here"
        )

    def _unencodable(self, state: int, e: Unencodable) -> SerializationError:
        cls = self.machine
        line = cls.lines[state] + cls.line_shift
        name = e.variable
        what = cls.hidden.get(name)
        held = f"variable `{name}`" if what is None else f"{what}"
        where = f" at `{name}{e.where()}`" if e.path else ""
        fix = (contexts.hidden_fix(name) if what is not None else None) or (
            "do not keep it across the await "
            "(finish using it before the await, or create it again after it)"
        )
        return SerializationError(
            f"cannot checkpoint {cls.qualname} at the await on line {line} "
            f"({cls.source_file}:{line}): {held} holds a `{type_name(type(e.value))}`{where}, "
            f"and {e.reason}. Fix: {fix}"
        )

    async def settle_abandoned(self) -> None:
        """Mark failed the child runs this run was cancelled out of and has
        now passed by (a later checkpoint, or its end, is committed): nothing
        will ever await them again. Until then a retry of the step resumes them."""
        if not self.abandoned:
            return
        store = self.runtime.store
        reason = (
            f"cancelled: run {self.run_id!r} went on without it (it stopped awaiting it: "
            "asyncio.wait_for timed out, a fan-out was left, or the task awaiting it was "
            "cancelled)"
        )
        error = codec.encode(asyncio.CancelledError(reason))
        await store.io(store.abandon, self.lease, sorted(self.abandoned), error, reason)
        self.abandoned.clear()

    # -- cancellation (cancel.py) ---------------------------------------------------

    def on_cancelled(self, exc: BaseException) -> BaseException:
        """A CancelledError came out of the current await: the exception to
        raise there. A delivery marked for this run (or a run above it) is
        the run's own RunCancelled; any CancelledError while the run is to be
        cancelled delivers its request."""
        mark = cancel.claims(self.run_id, exc)
        if mark is not None:
            cancel.uncancel()
            self.cancel_requested = True
            error = cancel.cancelled_error(self.run_id)
            error.__traceback__ = exc.__traceback__
            exc = error
        elif interrupted(exc):
            return exc
        if self.cancel_requested or self.timed_out:
            self._deliver()
        return exc

    def _deliver(self) -> None:
        op = DEADLINE_OP if self.timed_out else CANCEL_OP
        self.delivered = Operation(self.run_id, op, self.deadline, DELIVERED)

    async def cancelled_here(self, error: BaseException) -> Any:
        """What the run's await awaits instead of its operand when it
        resumes to be cancelled: the child runs of the step that have not
        ended are finished (each cancelled at its own await), then `error`."""
        await self.runtime._finish_children(self)
        self._deliver()
        raise error

    def ending(self, exc: BaseException) -> tuple[str, BaseException] | None:
        """(status, error) of a run asked to be cancelled, or timed out,
        that `exc` leaves; None: it ends as any other run."""
        if not (self.cancel_requested or self.timed_out):
            return None
        if isinstance(exc, (asyncio.CancelledError, *BLOCKING)):
            if self.timed_out:
                final: BaseException = cancel.timeout_error(self.run_id, self.function.timeout)
                status = "failed"
            else:
                if isinstance(exc, RunCancelled) and exc.run_id == self.run_id:
                    return "cancelled", exc
                final, status = cancel.cancelled_error(self.run_id), "cancelled"
            final.__context__ = exc
            return status, final
        if isinstance(exc, Exception):
            return "failed", exc  # never tried again
        return None

    # -- failed attempts ------------------------------------------------------------

    def _from_child(self, exc: BaseException) -> bool:
        """Is `exc` a child run's final failure or an outcome of resumable's
        own waits (a timeout), or a group holding one?"""
        if any(exc is failure for failure in self.child_failures):
            return True
        if any(exc is outcome for outcome in self.own_outcomes):
            return True
        if isinstance(exc, BaseExceptionGroup):
            return any(self._from_child(inner) for inner in exc.exceptions)
        return False

    def _may_retry(self, exc: Exception) -> bool:
        return (
            self.policy.retryable(exc)
            and not self._from_child(exc)
            and self.attempt + 1 < self.policy.max_attempts
        )

    async def retry_await(self, exc: Exception) -> None:
        """The operand or the awaitable of the current await raised `exc`:
        park the run to try the step again (raises Park), or return to raise
        `exc` at the await. An exception carried across the checkpoint and
        raised again by the awaitable (an `__aexit__` raising the exception
        it was given) was raised before the checkpoint: never retried."""
        if any(exc is carried for carried in self.carried):
            return
        if self._may_retry(exc):
            await self.park(exc)

    async def retry_exit(self, exc: Exception) -> None:
        """`exc` leaves the function: park the run to try again from its
        checkpoint (raises Park) if this step first raised it and attempts
        are left; otherwise return, and the run fails."""
        if any(exc is carried for carried in self.carried):
            return  # raised before the checkpoint: the code that raised it cannot run again
        if self._may_retry(exc):
            await self.park(exc)

    async def park(self, exc: Exception) -> None:
        runtime = self.runtime
        attempt = self.attempt + 1
        self.attempts += 1
        delay = self.policy.delay(attempt, runtime.random)
        wake_at = runtime.clock.time() + delay
        if self.deadline is not None:
            wake_at = min(wake_at, self.deadline)
        write = park_write(
            self.lease,
            attempt=attempt,
            attempts=self.attempts,
            wake_at=wake_at,
            reason=f"attempt {attempt} failed: {one_line(exc)}",
        )
        if not await self.commit(write):
            raise self.lost("its wait to try again")
        self.attempt = attempt
        raise Park(wake_at, f"waiting to try a step again (attempt {attempt + 1})")

    # -- durable waits (waits.py) ---------------------------------------------------

    async def operation(self, op_id: str) -> Operation | None:
        store = self.runtime.store
        return await store.io(store.operation, self.run_id, op_id)

    async def record(self, *operations: Operation) -> None:
        """Commit operations of this run now (a timer started, a timeout decided)."""
        if not await self.commit(operation_write(self.lease, *operations)):
            raise self.lost("the start or the outcome of a wait")

    def may_unload(self, awaitable: Any) -> bool:
        """May a wait unload the run here: is it what the run's await awaits
        directly, with nothing else of the step in flight?"""
        return awaitable is self.direct and not self.in_flight

    async def unload(
        self,
        wake_at: float | None,
        reason: str,
        operations: tuple[Operation, ...] = (),
        wake: Wake | None = None,
        *,
        early: bool = False,
    ) -> None:
        """The run waits as a row until `wake_at` (None: until an event or
        `wake` makes it due) and its task ends: raises Park. `early`: an
        event may make it due before `wake_at`."""
        if self.deadline is not None and (wake_at is None or wake_at > self.deadline):
            wake_at, early = self.deadline, True  # due at its deadline at the latest
        write = wait_write(
            self.lease, wake_at=wake_at, reason=reason, operations=operations, wake=wake
        )
        if not await self.commit(write):
            raise self.lost("its wait")
        raise Park(wake_at, reason, early=early)

    def taken_ids(self) -> list[int]:
        return [event_id for event_id, _ in self.takes]

    def take(self, event_id: int, op_id: str) -> None:
        self.takes.append((event_id, op_id))

    def payload(self, blob: bytes) -> Any:
        return codec.decode(blob, self.runtime.limits, self.machine.import_set)

    def own_outcome(self, exc: BaseException) -> BaseException:
        """`exc` is raised by one of resumable's waits: never retried."""
        self.own_outcomes.append(exc)
        return exc


def own_error(exc: BaseException) -> BaseException:
    """`exc`, a bad argument to one of resumable's primitives (a negative
    sleep), raised in a run: never retried (it would fail the same way)."""
    step = CURRENT.get()
    if step is not None:
        step.run.own_outcomes.append(exc)
    return exc


def one_line(exc: BaseException, limit: int = 300) -> str:
    """`Type: message`, first line only, at most `limit` characters: a run's reason."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return (text.splitlines() or [""])[0][:limit]


_EXC_TAG = b'"$exc"'


def _exceptions_in(values: dict[str, Any], budget: int = 10_000) -> list[BaseException]:
    """The exceptions among decoded values (and in their containers)."""
    found: list[BaseException] = []
    seen: set[int] = set()
    stack: list[Any] = list(values.values())
    while stack and budget > 0:
        budget -= 1
        value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, BaseException):
            found.append(value)
        elif isinstance(value, list | tuple | set | frozenset):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
    return found


def _closures(machine: type[Machine], frame: Locals) -> Any:
    """The codec's hooks for the closures of `machine` over the locals `frame`."""
    table = machine.closures
    return None if table is None else table.at(frame)


def _decode_locals(blob: bytes, machine: type[Machine], closures: Any) -> Any:
    """The locals of a checkpoint this process has just written."""
    return codec.decode_document(
        blob, "locals", imports=machine.import_set, verify=False, closures=closures
    )[1]


def decode_checkpoint(
    blob: bytes,
    machine: type[Machine],
    *,
    verify: bool = True,
    run_id: str = "",
    limits: codec.Limits = codec.DEFAULT_LIMITS,
    frame: Locals | None = None,
) -> dict[str, Any]:
    """{"state", "locals", "seq"} of a stored checkpoint, the state
    mapped onto `machine`, which may be newer code than the code that wrote it.
    Closures among the locals are rebuilt over `frame`, the locals object
    the run goes on with (a new one when not given).

    Raises CheckpointError (corrupt, or not a checkpoint of this function) or
    VersionMismatch (the code before the await, or what is live there,
    changed). `verify=False`: bytes this process has just written."""
    closures = _closures(machine, frame if frame is not None else Locals())
    try:
        document, locals_ = codec.decode_document(
            blob,
            "locals",
            imports=machine.import_set,
            verify=verify,
            limits=limits,
            closures=closures,
        )
    except CheckpointError as e:
        raise CheckpointError(_run_prefix(run_id) + str(e)) from None
    except VersionMismatch as e:  # a closure's definition changed
        raise _mismatch(machine, run_id, str(e)) from None
    if type(locals_) is not dict:
        raise CheckpointError(_run_prefix(run_id) + "checkpoint locals are not a mapping")
    fn = document.get("fn")
    if fn != machine.function_id:
        raise CheckpointError(
            _run_prefix(run_id)
            + f"the checkpoint is one of {fn!r:.80}, not of {machine.function_id}"
        )
    state = document.get("state")
    if type(state) is not int:
        raise CheckpointError(_run_prefix(run_id) + f"checkpoint names no state ({state!r:.20})")
    seq = document.get("seq")
    return {
        "state": _resume_state(document, state, machine, run_id, held=locals_),
        "locals": locals_,
        "seq": seq if type(seq) is int else 0,
    }


def _run_prefix(run_id: str) -> str:
    return f"run {run_id!r}: " if run_id else ""


def _resume_state(
    document: dict[str, Any],
    state: int,
    machine: type[Machine],
    run_id: str,
    *,
    held: Collection[str] = (),
) -> int:
    at, fp = document.get("at"), document.get("fp")
    layout = document.get("lv", 1)
    if layout != machine.lowering_version:
        raise _mismatch(
            machine,
            run_id,
            f"it was checkpointed under code whose states the compiler laid out with lowering "
            f"version {layout!r:.20}, and the current code was compiled with lowering version "
            f"{machine.lowering_version} (resumable {machine.compiler_version}), which "
            "numbers states differently",
        )
    if at is None:  # written without site fingerprints: only the same code may go on
        if fp == machine.run_fingerprint and state in machine.awaits:
            return state
        raise _mismatch(machine, run_id, "the function changed since the checkpoint was written")
    for new_state, (ordinal, new_fp) in machine.sites.items():
        if ordinal != at:
            continue
        if new_fp == fp:
            return new_state
        line = machine.lines[new_state] + machine.line_shift
        if type(fp) is str and fp.split(".")[0] == new_fp.split(".")[0]:
            live = ", ".join(sorted(machine.awaits[new_state][1])) or "none"
            stored = ", ".join(sorted(held)) or "none"
            what = (
                f"the variables live at the await on line {line} changed "
                f"(now: {live}; the checkpoint holds: {stored})"
            )
        else:
            what = f"the code before the await on line {line}, or that await, changed"
        raise _mismatch(machine, run_id, what)
    raise _mismatch(
        machine, run_id, f"the await it stands at (await number {at!r:.20}) no longer exists"
    )


def _mismatch(machine: type[Machine], run_id: str, what: str) -> VersionMismatch:
    return VersionMismatch(
        f"{machine.qualname} ({machine.source_file}): run {run_id!r} cannot resume under the "
        f"current code: {what}. Finish such runs with the code that started them (deploy it "
        "again, let them complete, then deploy the change), or start them again. The run "
        f"stays blocked until `resumable runs retry {run_id}` once code it fits is deployed "
        "(until then, rt.run of it raises this error again)"
    )
