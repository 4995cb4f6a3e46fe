"""`Runtime`: starts and resumes runs of compiled functions on a store.

    rt = resumable.Runtime("memory://")
    rt.run(checkout, "u1", "o1")            # sync
    await rt.call(checkout, "u1", "o1")     # async

Each checkpoint is encoded to JSON, saved, and decoded again; the function
always goes on from the decoded checkpoint, so what it does never depends on
whether the process crashed in between ("one behaviour, crash or not").
Arguments and results go through the same codec.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import codec
from .codec import FORMAT_VERSION, Unencodable
from .driver import drive
from .errors import CheckpointError, SerializationError
from .function import Call, Function
from .machine import Locals, Machine

__all__ = ["CheckpointInfo", "Runtime"]

DEFAULT_STORE = "sqlite:///.resumable/state.db"


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


@dataclass
class RunRecord:
    """One run as a store keeps it (the in-memory store keeps exactly this)."""

    run_id: str
    function_id: str
    run_fingerprint: str
    args: bytes
    status: str = "running"
    checkpoint: bytes | None = None
    result: bytes | None = None
    error: bytes | None = None
    seq: int = 0
    children: list[str] = field(default_factory=list)


class MemoryStore:
    """Runs kept in a dict: for tests and examples; gone when the process ends."""

    def __init__(self) -> None:
        self.runs: dict[str, RunRecord] = {}

    def get(self, run_id: str) -> RunRecord | None:
        return self.runs.get(run_id)

    def put(self, record: RunRecord) -> None:
        self.runs[record.run_id] = record


def open_store(url: str) -> MemoryStore:
    if url == "memory://":
        return MemoryStore()
    if url.startswith(("sqlite://", "postgresql://")):
        raise ValueError(
            f"store {url!r} is not available in this version of resumable; use 'memory://'"
        )
    raise ValueError(
        f"unknown store URL {url!r}: use 'memory://', 'sqlite:///path.db' or 'postgresql://...'"
    )


def bind_arguments(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Bind arguments exactly as calling `fn` would (same TypeError on a bad call)."""
    coro = fn(*args, **kwargs)
    try:
        return dict(coro.cr_frame.f_locals)
    finally:
        coro.close()


def _describe_type(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


class Run:
    """One execution of a compiled function (a top-level run or an inline child)."""

    def __init__(
        self,
        runtime: Runtime,
        machine: type[Machine],
        run_id: str,
        record: RunRecord | None,
    ) -> None:
        self.runtime = runtime
        self.machine = machine
        self.run_id = run_id
        self.record = record
        self.seq = record.seq if record else 0
        self.children = 0

    # -- checkpoints ---------------------------------------------------------

    def checkpoint(self, m: Machine, state: int, L: Locals) -> Locals:
        cls = self.machine
        values = L.__dict__
        fields = {k: values[k] for k in cls.awaits[state][1] if k in values}
        meta = {
            "v": FORMAT_VERSION,
            "fn": cls.function_id,
            "fp": cls.run_fingerprint,
            "seq": self.seq + 1,
            "state": state,
        }
        try:
            blob, _ = codec.encode_document(meta, "locals", fields, named=True)
        except Unencodable as e:
            raise self._unencodable(state, e) from None
        self.seq += 1
        if self.record is not None:
            self.record.checkpoint = blob
            self.record.seq = self.seq
        fresh = Locals()
        fresh.__dict__.update(decode_checkpoint(blob, cls, verify=False)["locals"])
        observer = self.runtime.on_checkpoint
        if observer is not None:
            line = m.source_line(state)
            observer(
                CheckpointInfo(
                    run_id=self.run_id,
                    function=cls.function_id,
                    seq=self.seq,
                    state=state,
                    line=line,
                    source=f"{cls.source_file}:{line}",
                    locals=dict(fresh.__dict__),
                    size=len(blob),
                )
            )
        return fresh

    def _unencodable(self, state: int, e: Unencodable) -> SerializationError:
        cls = self.machine
        line = cls.lines[state] + cls.line_shift
        name = e.variable
        what = cls.hidden.get(name)
        held = f"variable `{name}`" if what is None else f"{what}"
        where = f" at `{name}{e.where()}`" if e.path else ""
        return SerializationError(
            f"cannot checkpoint {cls.qualname} at the await on line {line} "
            f"({cls.source_file}:{line}): {held} holds a `{_describe_type(e.value)}`{where}, "
            f"and {e.reason}. Fix: do not keep it across the await "
            "(finish using it before the await, or create it again after it)"
        )

    # -- children --------------------------------------------------------------

    async def child(self, call: Call) -> Any:
        """Drive a decorated function awaited inside this run, inline."""
        self.children += 1
        child_id = f"{self.run_id}/{self.children}"
        machine = call.function.machine()
        return await self.runtime._drive_new(
            machine, call.function, call.args, call.kwargs, child_id, None
        )


def decode_checkpoint(
    blob: bytes, machine: type[Machine], *, verify: bool = True
) -> dict[str, Any]:
    """Decode a checkpoint written by `Run.checkpoint` (any format version).
    `verify=False`: bytes this process has just written (no checksum check)."""
    envelope, locals_ = codec.decode_document(
        blob, "locals", imports=machine.import_set, verify=verify
    )
    state = envelope.get("state")
    if type(state) is not int or state not in machine.awaits:
        raise CheckpointError(
            f"checkpoint names state {state!r:.20}, which is not an await of {machine.qualname}"
        )
    if type(locals_) is not dict:
        raise CheckpointError("checkpoint locals are not a mapping")
    return {"state": state, "seq": envelope.get("seq"), "locals": locals_}


class Runtime:
    """Runs compiled functions on a store (`memory://` for now)."""

    def __init__(
        self,
        store: str = DEFAULT_STORE,
        *,
        on_checkpoint: Callable[[CheckpointInfo], None] | None = None,
    ) -> None:
        self.url = store
        self.store = open_store(store)
        self.on_checkpoint = on_checkpoint

    def run(self, fn: Function, /, *args: Any, run_id: str | None = None, **kwargs: Any) -> Any:
        """Start (or resume, if `run_id` exists) a run and return its result."""
        return asyncio.run(self.call(fn, *args, run_id=run_id, **kwargs))

    async def call(
        self, fn: Function, /, *args: Any, run_id: str | None = None, **kwargs: Any
    ) -> Any:
        """Async `run`."""
        if not isinstance(fn, Function):
            raise TypeError(f"{fn!r} is not decorated with @resumable.function")
        machine = fn.machine()
        if run_id is not None:
            record = self.store.get(run_id)
            if record is not None:
                return await self._resume(machine, record)
        run_id = run_id or uuid.uuid4().hex
        return await self._drive_new(machine, fn, args, kwargs, run_id, self.store)

    def status(self, run_id: str) -> str:
        return self._record(run_id).status

    def result(self, run_id: str) -> Any:
        record = self._record(run_id)
        if record.status == "completed":
            assert record.result is not None
            return codec.decode(record.result)
        if record.status == "failed":
            assert record.error is not None
            raise codec.decode(record.error)
        raise ValueError(f"run {run_id!r} has not finished (status: {record.status})")

    def _record(self, run_id: str) -> RunRecord:
        record = self.store.get(run_id)
        if record is None:
            raise KeyError(f"no run {run_id!r} in {self.url}")
        return record

    async def _drive_new(
        self,
        machine: type[Machine],
        fn: Function,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str,
        store: MemoryStore | None,
    ) -> Any:
        bound = bind_arguments(fn.__wrapped__, args, kwargs)
        try:
            blob, _ = codec.encode_document({"v": FORMAT_VERSION}, "value", bound, named=True)
        except Unencodable as e:
            raise SerializationError(
                f"cannot start {machine.qualname}: argument `{e.variable}{e.where()}` holds a "
                f"`{_describe_type(e.value)}`, and {e.reason}"
            ) from None
        record = None
        if store is not None:
            record = RunRecord(run_id, machine.function_id, machine.run_fingerprint, blob)
            store.put(record)
        L = Locals()
        L.__dict__.update(codec.decode(blob, imports=machine.import_set, verify=False))
        return await self._finish(Run(self, machine, run_id, record), L, 0)

    async def _resume(self, machine: type[Machine], record: RunRecord) -> Any:
        if record.status in ("completed", "failed"):
            return self.result(record.run_id)
        L = Locals()
        state = 0
        if record.checkpoint is None:
            L.__dict__.update(codec.decode(record.args, imports=machine.import_set))
        else:
            decoded = decode_checkpoint(record.checkpoint, machine)
            L.__dict__.update(decoded["locals"])
            state = decoded["state"]
        return await self._finish(
            Run(self, machine, record.run_id, record),
            L,
            state,
            resumed=record.checkpoint is not None,
        )

    async def _finish(self, run: Run, L: Locals, state: int, *, resumed: bool = False) -> Any:
        m = run.machine(run)
        record = run.record
        try:
            value = await drive(m, L, state, run.checkpoint, resumed=resumed)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # Interrupted (Ctrl-C, cancellation, a crash): the run stays at
                # its last checkpoint and can be resumed.
                raise
            if record is not None and not isinstance(exc, SerializationError):
                record.status = "failed"
                try:
                    record.error = codec.encode(exc)
                except SerializationError:
                    record.error = codec.encode(RuntimeError(repr(exc)))
            elif record is not None:
                record.status = "blocked"
            raise
        try:
            blob, _ = codec.encode_document({"v": FORMAT_VERSION}, "value", value)
        except Unencodable as e:
            raise SerializationError(
                f"{run.machine.qualname} returned a `{_describe_type(e.value)}` "
                f"(at `result{e.where()}`), and {e.reason}"
            ) from None
        if record is not None:
            record.status = "completed"
            record.result = blob
        return codec.decode(blob, verify=False)
