"""One run being driven: its checkpoints, failed steps and idempotency keys.

A *step* is what runs after checkpoint n (the operand of await n, the await,
and the code after it) up to checkpoint n+1. Everything a step does is
identified by (run id, n): the ids of child runs it starts and the keys
`resumable.idempotency_key()` hands out, so they are the same when the step
runs again, after a crash or a retry.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import codec
from .codec import Unencodable
from .codec.encoder import type_name
from .errors import CheckpointError, SerializationError, VersionMismatch
from .machine import Locals, Machine
from .retry import DEFAULT_RETRY, Retry
from .store import ACTIVE, FAILED, RUNNING, WAITING, RunRecord

if TYPE_CHECKING:
    from .function import Call, Function
    from .runtime import Runtime

__all__ = [
    "ACTIVE_RUN",
    "CheckpointInfo",
    "Run",
    "decode_checkpoint",
    "idempotency_key",
    "one_line",
]

#: The run being driven in this task (None outside runs).
ACTIVE_RUN: ContextVar[Run | None] = ContextVar("resumable_active_run", default=None)


def idempotency_key() -> str:
    """A key for an external call made by the current step, the same every
    time the step runs again (after a crash or a retry): `<run id>:<n>` for the
    first key a step asks for, `<run id>:<n>.<k>` for the k-th after it.

    Pass it to services that deduplicate requests (a payment API's
    Idempotency-Key header), so that a step run twice has its effect once.
    Outside a durable run (native mode) every call returns a new random key."""
    run = ACTIVE_RUN.get()
    if run is None:
        return uuid.uuid4().hex
    return run.next_key()


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


class Run:
    """The driver's partner for one run (top-level or child): `m.run`."""

    def __init__(
        self, runtime: Runtime, function: Function, machine: type[Machine], record: RunRecord
    ) -> None:
        self.runtime = runtime
        self.function = function
        self.machine = machine
        self.run_id = record.run_id
        self.seq = record.seq
        self.blob = record.checkpoint  # the latest checkpoint, to try a step again from
        self.attempt = record.attempt
        self.attempts = record.attempts
        self.policy: Retry = function.retry or runtime.retry_policy or DEFAULT_RETRY
        self.calls = 0  # child runs started by the current step
        self.keys = 0  # idempotency keys handed out by the current step
        #: Exceptions raised by failed child runs in the current step (by id):
        #: never retried by this run, the child already did.
        self.child_failures: set[int] = set()
        #: Child runs cancelled while this run went on (asyncio.wait_for timed
        #: out, a gather was cancelled): failed once it has passed them by.
        self.abandoned: set[str] = set()

    # -- the current step ---------------------------------------------------------

    def _new_step(self) -> None:
        self.calls = self.keys = 0
        self.child_failures.clear()

    def next_key(self) -> str:
        n = self.keys
        self.keys += 1
        return f"{self.run_id}:{self.seq}" + (f".{n}" if n else "")

    def child_id(self) -> str:
        n = self.calls
        self.calls += 1
        return f"{self.run_id}/{self.seq}.{n}"

    async def child(self, call: Call) -> Any:
        """Drive a decorated function awaited by this run as a child run."""
        return await self.runtime._child(self, call, self.child_id())

    # -- checkpoints --------------------------------------------------------------

    async def checkpoint(self, m: Machine, state: int, L: Locals) -> Locals:
        cls = self.machine
        seq = self.seq + 1
        try:  # the locals live at `state`, with the envelope (v, fn, at, fp, seq, state)
            blob = codec.encode_checkpoint(cls, state, seq, L.__dict__)
        except Unencodable as e:
            raise self._unencodable(state, e) from None
        line = m.source_line(state)
        store = self.runtime.store
        await store.io(
            store.update,
            self.run_id,
            {
                "checkpoint": blob,
                "seq": seq,
                "line": line,
                "status": RUNNING,
                "attempt": 0,
                "wake_at": None,
                "reason": None,
                "fingerprint": cls.run_fingerprint,
            },
        )
        self.seq, self.blob, self.attempt = seq, blob, 0
        self._new_step()
        if self.abandoned:
            await self.settle_abandoned()
        fresh = Locals()
        fresh.__dict__.update(_decode_locals(blob, cls))
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

    def _unencodable(self, state: int, e: Unencodable) -> SerializationError:
        cls = self.machine
        line = cls.lines[state] + cls.line_shift
        name = e.variable
        what = cls.hidden.get(name)
        held = f"variable `{name}`" if what is None else f"{what}"
        where = f" at `{name}{e.where()}`" if e.path else ""
        return SerializationError(
            f"cannot checkpoint {cls.qualname} at the await on line {line} "
            f"({cls.source_file}:{line}): {held} holds a `{type_name(type(e.value))}`{where}, "
            f"and {e.reason}. Fix: do not keep it across the await "
            "(finish using it before the await, or create it again after it)"
        )

    async def settle_abandoned(self) -> None:
        """Mark failed the child runs this run was cancelled out of and has
        now passed by (a later checkpoint, or its end, is committed): nothing
        will ever await them again. Until then a retry of the step resumes them."""
        store = self.runtime.store
        reason = (
            f"cancelled: run {self.run_id!r} went on without it "
            "(asyncio.wait_for timed out, or the task awaiting it was cancelled)"
        )
        error = codec.encode(asyncio.CancelledError(reason))
        for child_id in sorted(self.abandoned):
            fields = {"status": FAILED, "error": error, "reason": reason}
            await store.io(store.update, child_id, fields, when=ACTIVE)
        self.abandoned.clear()

    # -- failed steps -------------------------------------------------------------

    async def retry_step(self, state: int, exc: Exception) -> Locals | None:
        """Wait and return the checkpoint's locals when the policy allows
        another attempt of this step; None to raise `exc` at the await."""
        if id(exc) in self.child_failures or not self.policy.retryable(exc):
            return None
        if self.attempt + 1 >= self.policy.max_attempts or self.blob is None:
            return None
        self.attempt += 1
        self.attempts += 1
        runtime = self.runtime
        delay = self.policy.delay(self.attempt, runtime.random)
        store = runtime.store
        await store.io(
            store.update,
            self.run_id,
            {
                "status": WAITING,
                "attempt": self.attempt,
                "attempts": self.attempts,
                "wake_at": runtime.clock.time() + delay,
                "reason": f"attempt {self.attempt} failed: {one_line(exc)}",
            },
        )
        await runtime.clock.sleep(delay)
        await store.io(store.update, self.run_id, {"status": RUNNING, "wake_at": None})
        self._new_step()
        fresh = Locals()
        fresh.__dict__.update(_decode_locals(self.blob, self.machine))
        return fresh


def one_line(exc: BaseException, limit: int = 300) -> str:
    """`Type: message`, first line only, at most `limit` characters: a run's reason."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text.splitlines()[0][:limit]


def _decode_locals(blob: bytes, machine: type[Machine]) -> Any:
    """The locals of a checkpoint this process has just written."""
    return codec.decode_document(blob, "locals", imports=machine.import_set, verify=False)[1]


def decode_checkpoint(
    blob: bytes, machine: type[Machine], *, verify: bool = True, run_id: str = ""
) -> dict[str, Any]:
    """{"state", "locals", "seq"} of a stored checkpoint, the state mapped
    onto `machine`, which may be newer code than the code that wrote it.

    Raises CheckpointError (corrupt, or not a checkpoint of this function) or
    VersionMismatch (the code before the await, or what is live there,
    changed). `verify=False`: bytes this process has just written."""
    try:
        document, locals_ = codec.decode_document(
            blob, "locals", imports=machine.import_set, verify=verify
        )
    except CheckpointError as e:
        raise CheckpointError(_run_prefix(run_id) + str(e)) from None
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
        "again, let them complete, then deploy the change), or start them again"
    )
