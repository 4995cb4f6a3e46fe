"""A run's life on a store: own it, claim it, drive it to its end or its
next wait, and write how it ended.

    outcome = await drive_owned(rt, fn, run_id, contain=False)   # the caller owns the run
    Finished(value)   the run returned (or had already ended): its result
    Parked(wake_at)   it waits, as a row with a wake time (None: until an
                      event), to try a step again or for a timer or an event

`own_and_drive` is the same for a caller that waits for the run: it takes
ownership (waiting while another driver has it), sleeps out parks, and
returns the result or raises the run's exception.

How a run ends, and what is written (each write fenced by the run's lease):
- the function returns: completed, with its result;
- an exception leaves it: tried again from the checkpoint while the retry
  rule allows (run.py), else failed;
- resumable's own error (a value that cannot be stored, changed code...):
  blocked, at its last good checkpoint;
- a BaseException from the function's own code (KeyboardInterrupt,
  SystemExit, GeneratorExit): in a worker (`contain`), blocked with
  StepAborted; in the caller's own process it reaches the caller and the
  run stays resumable;
- cancelled from outside (a worker stopping), the store failing, or the run
  taken over by another driver: nothing is written; it stays where its last
  committed write put it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from . import codec
from .cancel import Watch, cancelled_error
from .codec import DEFAULT_LIMITS, FORMAT_VERSION, Limits, Unencodable
from .codec.encoder import type_name
from .config import log
from .driver import drive, interrupted
from .errors import (
    BLOCKING,
    CheckpointError,
    OwnershipLost,
    RunConflict,
    SerializationError,
    StaleCodeError,
    StepAborted,
    StoreUnavailable,
    VersionMismatch,
)
from .function import Function
from .machine import Locals, Machine
from .retry import wait_until
from .run import CURRENT, Park, Run, decode_checkpoint, one_line
from .store import (
    ACTIVE,
    BLOCKED,
    CANCELLED,
    COMPLETED,
    FAILED,
    FINISHED,
    RUNNING,
    WAITING,
    RunRecord,
)
from .store.base import (
    CANCEL_OP,
    DEADLINE_OP,
    DELIVERED,
    Lease,
    Operation,
    Write,
    finish_write,
    owner_name,
    woken_by_end,
)

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["BLOCKING", "Finished", "Parked", "drive_owned", "due_check", "outcome", "own_and_drive"]

#: Errors after which nothing is written: the run stays as it is.
_UNWRITTEN = (OwnershipLost, StoreUnavailable)
#: How often a caller waiting for a run looks whether it became due early
#: (an event sent to it, a sleep cancelled).
_POLL = 1.0


@dataclass(frozen=True)
class Finished:
    value: Any


@dataclass(frozen=True)
class Parked:
    wake_at: float | None  # None: until an event makes it due
    reason: str = ""
    early: bool = True  # something other than the time may make it due


async def own_and_drive(
    rt: Runtime,
    fn: Function,
    run_id: str,
    *,
    contain: bool = False,
    unload: Callable[[Parked], Awaitable[None]] | None = None,
    new: RunRecord | None = None,
    child: bool = False,
) -> Any:
    """Own the run (waiting while another driver has it), drive it, sleep
    out its waits, and return its result (or raise its exception).
    `unload`: called with a wait instead of sleeping it out (a parent
    awaiting this child run directly unloads itself too: it raises).
    `new`: the row of a new run, not stored yet: if there is no such run
    once it is owned, it is this one, already claimed by this driver (see
    drive_owned). `child`: it is a child run its parent drives inline."""
    store, clock = rt.store, rt.clock
    while True:
        delay = 0.005
        while not await store.lock_async(run_id):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)
        try:
            result = await drive_owned(rt, fn, run_id, contain=contain, new=new, child=child)
        except OwnershipLost as e:
            log.warning("%s", e)
            continue  # someone else drives it: wait for them, then read the outcome
        finally:
            store.unlock(run_id)
            new = None  # stored by now (a wait, a loss is a write): read it from the store
        if isinstance(result, Finished):
            return result.value
        if unload is not None:
            await unload(result)
        poll = _POLL if result.early else math.inf
        await wait_until(clock, result.wake_at, due_check(rt, run_id, result), poll)


def due_check(rt: Runtime, run_id: str, parked: Parked) -> Callable[[], Awaitable[bool]]:
    """Whether the waiting run is due before its wake time (an event made it
    due, or it is no longer waiting)."""
    store = rt.store

    async def due() -> bool:
        record = await store.io(store.get, run_id)
        return record is None or record.status != WAITING or record.wake_at != parked.wake_at

    return due


async def drive_owned(
    rt: Runtime,
    fn: Function,
    run_id: str,
    *,
    contain: bool,
    new: RunRecord | None = None,
    child: bool = False,
) -> Any:
    """Drive a run the caller owns until it ends (Finished) or waits (Parked).

    `new`, the row of a run not stored yet, is the run if there is none:
    claimed by this driver as it is stored, with no claim of its own. A
    top-level run is stored now, running (the start of a run is durable,
    and a worker resumes it if this process dies). A child run is stored
    with its first write (Run.unsaved): until then its parent's resume
    from the checkpoint before it starts it again anyway."""
    store = rt.store
    unsaved = False
    if new is None:
        record = await store.io(store.get, run_id)
        if record is None:
            raise LookupError(f"no run {run_id!r} in {rt.url}")
    else:  # its caller found no such run: made here unless made meanwhile
        new.status, new.owner, new.generation = RUNNING, owner_name(), 1
        if child:  # a new child's id is its parent's: only its parent's driver (here) makes it
            record, unsaved = new, True
        elif await store.create_async(new):  # grouped with concurrent writes
            record = new
        else:  # made meanwhile (a dispatch or a call of the same id): as it is
            found = await store.io(store.get, run_id)
            assert found is not None
            record = found
    if record.damaged is not None:
        reason = f"damaged: {record.damaged}"
        await store.io(store.block_damaged, record.rowid, reason)
        raise CheckpointError(f"run {run_id!r} cannot be read from {rt.url}: {reason}")
    try:
        machine = fn.machine()
    except StaleCodeError as e:
        await block_if_active(rt, record, e)
        raise
    if record.function != machine.function_id:
        raise RunConflict(
            f"run {run_id!r} is a run of {record.function}, not of {machine.function_id}", run_id
        )
    if record.status in FINISHED:
        return Finished(outcome(record, machine, rt.limits))
    wake_at = record.wake_at
    if record.status == WAITING and (wake_at is None or wake_at > rt.clock.time()):
        return Parked(wake_at, record.reason or "")
    lease: Lease | None
    if record is new:  # claimed as it was made
        lease = Lease(run_id, 1)
    else:
        lease = await store.claim_async(run_id, owner_name(), machine.run_fingerprint)
    if lease is None:  # it ended meanwhile (another process)
        record = await store.io(store.get, run_id)
        assert record is not None
        return Finished(outcome(record, machine, rt.limits))
    run = Run(rt, fn, machine, record, lease, contain=contain, unsaved=unsaved)
    # Before the requests are read; a dispatched child's own too (no parent drives it).
    watch = Watch(run, top=record.parent is None or record.queue is not None)
    try:
        if not await _cancellation(run, record, made=record is new):
            watch.arm()
            return await _drive(run, record)
        # Asked to be cancelled before it ever started: none of its code runs.
        error = cancelled_error(run_id, why=" before it started")
        await _end(run, CANCELLED, error)
        raise error
    finally:
        watch.close()


async def _cancellation(run: Run, record: RunRecord, *, made: bool) -> bool:
    """Read what the run knows of its cancellation and deadline (cancel.py),
    recording the deadline at its first start. True: it is to be cancelled
    and has not started. `made`: its row was made just now, by this driver.

    A run not stored yet, or stored just now, has no operations to read: a
    cancel request made since (one needs the row) is the watcher's, which
    reads the requests of every run driven here (cancel.Watch), as it does
    those made while the run goes on."""
    rt, run_id = run.runtime, run.run_id
    store, now = rt.store, rt.clock.time()
    unsaved = made or run.unsaved is not None  # then none of its operations exists
    request = None if unsaved else await store.io(store.operation, run_id, CANCEL_OP)
    if request is not None:
        run.cancel_requested = True
        if request.outcome != DELIVERED:
            if record.checkpoint is None:
                return True
            run.cancel_pending = cancelled_error(run_id)
    timeout = run.function.timeout
    if timeout is None:
        return False
    deadline = None if unsaved else await store.io(store.operation, run_id, DEADLINE_OP)
    if deadline is None or deadline.wake_at is None:
        deadline = Operation(run_id, DEADLINE_OP, now + timeout)
        await run.record(deadline)
    run.deadline = deadline.wake_at
    if deadline.outcome == DELIVERED:
        run.timed_out = True
    elif run.deadline is not None and now >= run.deadline:
        run.timed_out = True
        run.cancel_pending = cancelled_error(run_id, why=" (its timeout passed)")
    return False


async def block_if_active(rt: Runtime, record: RunRecord, exc: Exception) -> None:
    """Block an owned run that has not ended (its code cannot run)."""
    store = rt.store
    if record.status not in ACTIVE:
        return
    lease = await store.claim_async(record.run_id, owner_name(), record.fingerprint)
    if lease is not None:
        await store.commit(_end_write(lease, BLOCKED, exc, woken_by_end(record)))


def outcome(
    record: RunRecord, machine: type[Machine] | None, limits: Limits = DEFAULT_LIMITS
) -> Any:
    """The stored result of an ended run; a failed or blocked run raises its exception."""
    imports = machine.import_set if machine is not None else frozenset()
    if record.status == COMPLETED:
        if record.result is None:
            raise CheckpointError(f"run {record.run_id!r} is completed but holds no result")
        return codec.decode(record.result, limits, imports)
    if record.error is None:
        raise CheckpointError(f"run {record.run_id!r} is {record.status} but holds no error")
    error = codec.decode(record.error, limits, imports)
    if not isinstance(error, BaseException):
        raise CheckpointError(f"run {record.run_id!r}: its stored error is not an exception")
    raise error


def _start(run: Run, record: RunRecord) -> tuple[Locals, int, bool]:
    """(locals, state, resumed) to drive a run from: its arguments, or its
    last checkpoint. Raises CheckpointError or VersionMismatch."""
    machine, limits = run.machine, run.runtime.limits
    L = Locals()
    if record.checkpoint is None:
        try:
            values = codec.decode(record.args, limits, machine.import_set)
        except CheckpointError as e:
            raise CheckpointError(
                f"run {record.run_id!r}: its stored arguments cannot be read ({e})"
            ) from None
        if type(values) is not dict:
            raise CheckpointError(f"run {record.run_id!r}: its arguments are not a mapping")
        L.__dict__.update(values)
        run.begin(values, record.args)
        return L, 0, False
    try:
        point = decode_checkpoint(
            record.checkpoint, machine, run_id=record.run_id, limits=limits, frame=L
        )
    except VersionMismatch as e:
        changed = _parameters_changed(record.args, machine.params)
        if changed is None:
            raise
        raise VersionMismatch(f"{e} ({changed})") from None
    L.__dict__.update(point["locals"])
    run.begin(point["locals"], record.checkpoint)
    return L, point["state"], True


def _parameters_changed(args: bytes, params: tuple[str, ...]) -> str | None:
    """What changed in the function's parameters since the run started, if
    anything (read from the stored arguments' names, no value decoded)."""
    try:
        stored = orjson.loads(args).get("value")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(stored, dict) or set(stored) == set(params):
        return None
    then, now = ", ".join(stored), ", ".join(params)
    return (
        f"its parameters changed too: it was started with ({then}), the function now takes ({now})"
    )


async def _drive(run: Run, record: RunRecord) -> Finished | Parked:
    """Drive a claimed run from its last checkpoint to its end or next wait."""
    machine = run.machine
    token = CURRENT.set(None)
    try:
        try:
            L, state, resumed = _start(run, record)
            value = await drive(machine(run), L, state, resumed=resumed)
            run.end_step()
            blob = _encode_result(machine, value)
        except Park as p:
            return Parked(p.wake_at, p.reason, p.early)
        except _UNWRITTEN:
            raise
        except Exception as exc:
            run.leave_step()
            ending = run.ending(exc)
            if ending is not None:  # cancelled, or timed out: never tried again
                await _end(run, *ending)
                if ending[1] is exc:
                    raise
                raise ending[1]
            if not isinstance(exc, BLOCKING):
                try:
                    await run.retry_exit(exc)
                except Park as p:
                    return Parked(p.wake_at, p.reason, p.early)
            await _end(run, FAILED if not isinstance(exc, BLOCKING) else BLOCKED, exc)
            raise
        except BaseException as exc:
            run.leave_step()
            ending = None if interrupted(exc) else run.ending(exc)
            if ending is not None:
                await _end(run, *ending)
                if ending[1] is exc:
                    raise
                raise ending[1]
            if interrupted(exc) or not run.contain:
                raise  # the run stays where its last checkpoint put it
            aborted = _aborted(run, exc)
            await _end(run, BLOCKED, aborted)
            raise aborted from exc
        write = finish_write(
            run.lease, COMPLETED, result=blob, takes=tuple(run.takes), wakes=run.wakes
        )
        if not await run.commit(write):
            raise run.lost("its result")
        await run.settle_abandoned()
        return Finished(codec.decode(blob, imports=machine.import_set, verify=False))
    finally:
        run.leave_step()
        CURRENT.reset(token)


def _aborted(run: Run, exc: BaseException) -> StepAborted:
    where = f"the await on line {run.line}" if run.seq else "the start"
    return StepAborted(
        f"{one_line(exc)} raised by the step from {where} of {run.machine.qualname} "
        f"({run.machine.source_file}), run {run.run_id!r}: it is not an Exception, so the "
        "worker blocked the run at that checkpoint and went on with its other runs. Fix the "
        "code, then `resumable runs retry` the run"
    )


async def _end(run: Run, status: str, exc: BaseException) -> None:
    """Write the end of a run: failed, blocked or cancelled with `exc`."""
    if not await run.commit(_end_write(run.lease, status, exc, run.wakes)):
        raise run.lost("its end")
    await run.settle_abandoned()


def _end_write(lease: Lease, status: str, exc: BaseException, wakes: str | None) -> Write:
    try:
        error = codec.encode(exc)
    except SerializationError:
        if exc.__suppress_context__:
            # `raise ... from None` over the value that could not be stored
            # (SerializationError): a hidden context, dropped to keep the type.
            exc.__context__ = None
        try:
            error = codec.encode(exc)
        except SerializationError:
            error = _storable_copy(exc)
    return finish_write(lease, status, error=error, reason=one_line(exc, 500), wakes=wakes)


def _storable_copy(exc: BaseException) -> bytes:
    """`exc` encoded with the parts that cannot be stored replaced: an
    attribute or argument by a text naming what it held, a context or cause
    left out; the type and what can be stored are kept, so an `except` of
    the type still matches it when it is raised again from the store."""

    def storable(value: Any) -> bool:
        try:
            codec.encode(value)
        except SerializationError:
            return False
        return True

    def shown(value: Any) -> str:
        return f"<not stored: a {type_name(type(value))}>"

    cls = type(exc)
    args = tuple(a if storable(a) else shown(a) for a in exc.args)
    try:
        clone = cls.__new__(cls, *args)
        BaseException.__setattr__(clone, "args", args)
        for name, value in vars(exc).items():
            clone.__dict__[name] = value if storable(value) else shown(value)
        clone.__traceback__ = exc.__traceback__
        clone.__suppress_context__ = exc.__suppress_context__
        for link in ("__context__", "__cause__"):
            linked = getattr(exc, link)
            setattr(clone, link, linked if linked is None or storable(linked) else None)
        return codec.encode(clone)
    except Exception:  # a type that cannot even be rebuilt: its name and text
        return codec.encode(RuntimeError(f"{cls.__qualname__}: {exc}"))


def _encode_result(machine: type[Machine], value: Any) -> bytes:
    try:
        return codec.encode_document({"v": FORMAT_VERSION}, "value", value)[0]
    except Unencodable as e:
        raise SerializationError(
            f"{machine.qualname} returned a `{type_name(type(e.value))}` "
            f"(at `result{e.where()}`), and {e.reason}"
        ) from None
