"""`Runtime`: starts, resumes and finishes runs of compiled functions on a store.

    rt = resumable.Runtime("sqlite:///state.db")   # default: sqlite:///.resumable/state.db
    rt.run(checkout, "u1", "o1", run_id="order-1")  # start, or resume; the result
    await rt.call(checkout, "u1", "o1")            # the same, async
    checkout.dispatch("u1", "o1")                  # enqueue for a worker; the run id

A run is driven by one owner at a time (store locks): a second caller of the
same run id waits for the first and then returns its stored outcome. Each
checkpoint is encoded, committed, and decoded again: the function always goes
on from the decoded checkpoint, so what it does never depends on whether the
process crashed in between ("one behaviour, crash or not"). Arguments and
results go through the same codec.

How a run ends:
- completed: `run`/`result` return the stored result, forever;
- failed: an exception left the function; `run`/`result` raise it again (same
  type and args);
- blocked: it cannot go on as things are (a value that cannot be stored,
  changed code, stale generated code, a corrupt checkpoint); it stays at its
  last good checkpoint until `retry`.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import Callable
from typing import Any

from . import codec
from .codec import FORMAT_VERSION, Unencodable
from .codec.encoder import type_name
from .config import DEFAULT_STORE, configured_store
from .driver import drive
from .errors import (
    CheckpointError,
    InternalError,
    SerializationError,
    StaleCodeError,
    VersionMismatch,
)
from .function import Call, Function, registered
from .machine import Locals, Machine
from .retry import Clock, Retry, SystemClock
from .run import ACTIVE_RUN, CheckpointInfo, Run, decode_checkpoint, one_line
from .store import (
    ACTIVE,
    BLOCKED,
    COMPLETED,
    FAILED,
    FINISHED,
    PENDING,
    RUNNING,
    WAITING,
    RunRecord,
    Store,
    open_store,
)
from .store.base import owner_name

__all__ = ["DEFAULT_STORE", "CheckpointInfo", "Runtime", "configure", "default_runtime"]


#: Errors that block a run instead of failing it: fixing the code or the
#: deployment and calling `retry` lets it go on from its last checkpoint.
BLOCKING = (SerializationError, VersionMismatch, StaleCodeError, CheckpointError, InternalError)


class Runtime:
    """Drives compiled functions on a store.

    store: a URL (`sqlite:///path.db`, `memory://`; see resumable.store).
    on_checkpoint: called after each checkpoint is committed.
    retry: the policy of functions that do not set one (default `Retry()`).
    clock, seed: what retries wait with and jitter from (tests pass a clock
    that does not sleep)."""

    def __init__(
        self,
        store: str = DEFAULT_STORE,
        *,
        on_checkpoint: Callable[[CheckpointInfo], None] | None = None,
        retry: Retry | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
    ) -> None:
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(f"Runtime(retry=...) takes a resumable.Retry(...), not {retry!r}")
        self.url = store
        self.store: Store = open_store(store)
        self.on_checkpoint = on_checkpoint
        #: The policy of functions that do not set their own.
        self.retry_policy = retry
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.random = random.Random(seed)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<resumable.Runtime {self.url}>"

    # -- starting and resuming runs ---------------------------------------------------

    def run(self, fn: Function, /, *args: Any, run_id: str | None = None, **kwargs: Any) -> Any:
        """Start (or resume, if `run_id` exists) a run and return its result.
        A run that failed raises its exception again."""
        return asyncio.run(self.call(fn, *args, run_id=run_id, **kwargs))

    async def call(
        self, fn: Function, /, *args: Any, run_id: str | None = None, **kwargs: Any
    ) -> Any:
        """Async `run`."""
        try:
            machine = self._machine_of(fn)
        except StaleCodeError as e:
            if run_id is not None and self.store.lock(run_id):
                try:
                    await self._block_if_active(run_id, e)
                finally:
                    self.store.unlock(run_id)
            raise
        store = self.store
        run_id = await store.io(self._create, fn, machine, args, kwargs, run_id, None, PENDING)
        return await self._own_and_drive(fn, run_id)

    def dispatch(
        self, fn: Function, /, *args: Any, run_id: str | None = None, **kwargs: Any
    ) -> str:
        """Enqueue a run for a worker and return its id (an existing `run_id`
        is returned as it is)."""
        return self._create(fn, self._machine_of(fn), args, kwargs, run_id, None, PENDING)

    # -- looking at runs ---------------------------------------------------------------

    def get(self, run_id: str) -> RunRecord:
        """The stored record of a run. Raises KeyError."""
        record = self.store.get(run_id)
        if record is None:
            raise KeyError(f"no run {run_id!r} in {self.url}")
        return record

    def status(self, run_id: str) -> str:
        """pending, running, waiting, completed, failed or blocked."""
        return self.get(run_id).status

    def result(self, run_id: str) -> Any:
        """The result of a completed run; a failed or blocked run raises its
        exception; a run still going raises ValueError."""
        record = self.get(run_id)
        if record.status in FINISHED:
            return self._outcome(record, None)
        raise ValueError(f"run {run_id!r} has not finished (status: {record.status})")

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
        return asyncio.run(self._own_and_drive(fn, run_id))

    # -- internals ------------------------------------------------------------------

    @staticmethod
    def _machine_of(fn: Any) -> type[Machine]:
        if not isinstance(fn, Function):
            raise TypeError(f"{fn!r} is not decorated with @resumable.function")
        return fn.machine()

    def _create(
        self,
        fn: Function,
        machine: type[Machine],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str | None,
        parent: str | None,
        status: str,
    ) -> str:
        """Store a new run unless `run_id` exists; its id. (Blocking: from
        async code, call it through `store.io`.)"""
        store = self.store
        if run_id is not None:
            existing = store.get(run_id)
            if existing is not None:
                if existing.function != machine.function_id:
                    raise ValueError(
                        f"run {run_id!r} is a run of {existing.function}, "
                        f"not of {machine.function_id}"
                    )
                return run_id
        blob = _encode_arguments(fn, machine, args, kwargs)
        run_id = run_id or uuid.uuid4().hex
        record = RunRecord(
            run_id,
            machine.function_id,
            machine.run_fingerprint,
            blob,
            status=status,
            source=os.path.abspath(fn.__wrapped__.__code__.co_filename),
            parent=parent,
        )
        store.create(record)
        return run_id

    async def _own_and_drive(self, fn: Function, run_id: str) -> Any:
        """Own the run (waiting while another driver has it), then finish it."""
        delay = 0.005
        while not self.store.lock(run_id):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)
        return await self._drive_locked(fn, run_id)

    async def _drive_locked(self, fn: Function, run_id: str) -> Any:
        """Finish a run this process has just locked; unlock it at the end."""
        store = self.store
        try:
            record = await store.io(store.get, run_id)
            if record is None:  # pragma: no cover - runs are never deleted
                raise LookupError(f"run {run_id!r} disappeared from {self.url}")
            try:
                machine = self._machine_of(fn)
            except StaleCodeError as e:
                await self._block_if_active(run_id, e)
                raise
            if record.status in FINISHED:
                return self._outcome(record, machine)
            return await self._drive(fn, machine, record)
        finally:
            store.unlock(run_id)

    async def _block_if_active(self, run_id: str, exc: Exception) -> None:
        """Block an owned run that has not ended (its code cannot run)."""
        record = await self.store.io(self.store.get, run_id)
        if record is not None and record.status in ACTIVE:
            await self._end(run_id, exc)

    def _outcome(self, record: RunRecord, machine: type[Machine] | None) -> Any:
        imports = machine.import_set if machine is not None else frozenset()
        if record.status == COMPLETED:
            assert record.result is not None
            return codec.decode(record.result, imports=imports)
        assert record.error is not None
        error = codec.decode(record.error, imports=imports)
        if not isinstance(error, BaseException):  # pragma: no cover - written by _end
            raise InternalError(f"run {record.run_id!r}: its stored error is not an exception")
        raise error

    async def _drive(self, fn: Function, machine: type[Machine], record: RunRecord) -> Any:
        """Drive an owned run from its last checkpoint to its end."""
        store = self.store
        run = Run(self, fn, machine, record)
        token = ACTIVE_RUN.set(run)
        try:
            try:
                L = Locals()
                if record.checkpoint is None:
                    L.__dict__.update(
                        codec.decode(record.args, imports=machine.import_set)  # arguments
                    )
                    state, resumed = 0, False
                else:
                    point = decode_checkpoint(record.checkpoint, machine, run_id=record.run_id)
                    L.__dict__.update(point["locals"])
                    state, resumed = point["state"], True
                if record.status == WAITING and record.wake_at is not None:
                    # Its driver died while waiting to retry a step: wait out the rest.
                    await self.clock.sleep(max(0.0, record.wake_at - self.clock.time()))
                if (
                    record.status != RUNNING
                    or record.owner != owner_name()
                    or record.fingerprint != machine.run_fingerprint
                ):
                    running = {
                        "status": RUNNING,
                        "owner": owner_name(),
                        "fingerprint": machine.run_fingerprint,  # the code driving it now
                    }
                    await store.io(store.update, record.run_id, running)
                value = await drive(machine(run), L, state, resumed=resumed)
                blob = _encode_result(machine, value)
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    raise  # interrupted (Ctrl-C, cancellation, a crash): resumable as it is
                await self._end(record.run_id, exc)
                await run.settle_abandoned()
                raise
            await store.io(
                store.update, record.run_id, {"status": COMPLETED, "result": blob, "reason": None}
            )
            await run.settle_abandoned()
            return codec.decode(blob, imports=machine.import_set, verify=False)
        finally:
            ACTIVE_RUN.reset(token)

    async def _end(self, run_id: str, exc: Exception) -> None:
        """Mark a run failed (or blocked, for BLOCKING errors) with `exc`."""
        status = BLOCKED if isinstance(exc, BLOCKING) else FAILED
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
                error = codec.encode(RuntimeError(f"{type(exc).__qualname__}: {exc}"))
        reason = one_line(exc, 500)
        store = self.store
        await store.io(store.update, run_id, {"status": status, "error": error, "reason": reason})

    async def _child(self, parent: Run, call: Call, child_id: str) -> Any:
        """A decorated function awaited by a running one: a child run with a
        deterministic id, driven inline; once it has ended, its stored outcome."""
        fn = call.function
        machine = self._machine_of(fn)
        store = self.store
        record = await store.io(store.get, child_id)
        if record is None:
            await store.io(
                self._create, fn, machine, call.args, call.kwargs, child_id, parent.run_id, RUNNING
            )
        elif record.function != machine.function_id:
            raise VersionMismatch(
                f"{parent.machine.qualname}: child run {child_id!r} is a run of "
                f"{record.function}, but the same await now calls {machine.function_id}"
            )
        try:
            value = await self._own_and_drive(fn, child_id)
        except Exception as exc:
            if not isinstance(exc, BLOCKING):
                parent.child_failures.add(id(exc))
            raise
        except BaseException:
            # Cancelled (a wait_for timeout, a cancelled gather): if the parent
            # goes on without it, Run.settle_abandoned marks it failed.
            parent.abandoned.add(child_id)
            raise
        parent.abandoned.discard(child_id)
        return value


def requeue(store: Store, run_id: str) -> None:
    """Make a failed or blocked run pending again, with the failed or blocked
    children its current step awaits. Raises KeyError or ValueError."""
    record = store.get(run_id)
    if record is None:
        raise KeyError(f"no run {run_id!r} in {store.url}")
    if record.status not in (FAILED, BLOCKED):
        raise ValueError(
            f"run {run_id!r} is {record.status}: only failed or blocked runs can be retried"
        )
    reset = {"status": PENDING, "error": None, "reason": None, "attempt": 0, "wake_at": None}
    store.update(run_id, reset, when=(FAILED, BLOCKED))
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


def _encode_arguments(
    fn: Function, machine: type[Machine], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> bytes:
    bound = bind_arguments(fn.__wrapped__, args, kwargs)
    try:
        return codec.encode_document({"v": FORMAT_VERSION}, "value", bound, named=True)[0]
    except Unencodable as e:
        raise SerializationError(
            f"cannot start {machine.qualname}: argument `{e.variable}{e.where()}` holds a "
            f"`{type_name(type(e.value))}`, and {e.reason}"
        ) from None


def _encode_result(machine: type[Machine], value: Any) -> bytes:
    try:
        return codec.encode_document({"v": FORMAT_VERSION}, "value", value)[0]
    except Unencodable as e:
        raise SerializationError(
            f"{machine.qualname} returned a `{type_name(type(e.value))}` "
            f"(at `result{e.where()}`), and {e.reason}"
        ) from None


# -- the default runtime (dispatch, the worker) -----------------------------------------

_default: Runtime | None = None
_default_url: str | None = None


def configure(*, store: str | None = None) -> None:
    """Set the store of the default runtime, used by `fn.dispatch(...)`
    (otherwise $RESUMABLE_STORE, then [tool.resumable] in ./pyproject.toml,
    then sqlite:///.resumable/state.db: config.py)."""
    global _default, _default_url
    if _default is not None:
        _default.close()
    _default, _default_url = None, store


def default_runtime() -> Runtime:
    global _default
    if _default is None:
        _default = Runtime(_default_url or configured_store())
    return _default
