"""The exceptions resumable raises, and who raises each one.

Every error names what a user needs to find the problem (file, line, column,
function, variable) and says what to do about it. `InternalError` is kept for
our own bugs: seeing one means resumable is wrong, not the user's code.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = [
    "BLOCKING",
    "CheckpointError",
    "CompileError",
    "DuplicateRun",
    "InternalError",
    "NondeterminismError",
    "OwnershipLost",
    "ResumableError",
    "RunCancelled",
    "SerializationError",
    "StaleCodeError",
    "StepAborted",
    "StoreError",
    "StoreUnavailable",
    "VersionMismatch",
]


class ResumableError(Exception):
    """Base class of every error resumable raises on its own account."""


class CompileError(ResumableError):
    """Raised by `resumable compile` for a decorated function it cannot compile.

    Carries the position and prints like a compiler diagnostic::

        shop.py:12:9: error[E02]: await inside a generator expression
            total = sum(await price(i) for i in items)
                        ^
          fix: use a list comprehension: sum([await price(i) for i in items])
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "<unknown>",
        line: int = 0,
        column: int = 0,
        code: str = "E00",
        construct: str = "",
        fix: str = "",
        source_line: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.code = code
        self.construct = construct
        self.fix = fix
        self.source_line = source_line

    def __str__(self) -> str:
        out = f"{self.path}:{self.line}:{self.column + 1}: error[{self.code}]: {self.message}"
        if self.source_line:
            text = self.source_line.rstrip("\n")
            stripped = text.lstrip()
            indent = len(text) - len(stripped)
            caret = max(self.column - indent, 0)
            out += f"\n    {stripped}\n    {' ' * caret}^"
        if self.fix:
            out += f"\n  fix: {self.fix}"
        return out


class SerializationError(ResumableError):
    """A value held across an await cannot be written into a checkpoint.

    Raised by the runtime when it encodes a checkpoint (or a run's arguments or
    result), and at the entry of a loop whose iterator cannot be checkpointed.
    The run stays at its last good checkpoint.
    """


class CheckpointError(ResumableError):
    """A stored checkpoint is corrupt, truncated, hostile, or names a type that
    is not available. Raised by the codec when decoding; nothing is executed."""


class StaleCodeError(ResumableError):
    """The generated state machine of a function is missing or was compiled from
    different source. Raised at the first durable run of the function; the fix is
    to run `resumable compile` on the source file it names."""


class VersionMismatch(ResumableError):
    """A persisted run cannot resume under the function's current code because
    something it depends on changed. Raised when a run is resumed."""


class InternalError(ResumableError):
    """A bug in resumable itself (an invariant of the compiler or runtime broke).
    This should never happen: please report it with the message."""


class StoreError(ResumableError):
    """A store cannot be opened or used: a bad URL, a database that is not a
    resumable store, or one written by a newer resumable (upgrade it)."""


class StoreUnavailable(StoreError):
    """An open store refused a read or a write: the disk is full, the file
    became read-only, the database stayed locked, an I/O error. Raised by
    the store; the run it concerned stays at its last committed write, and
    the worker waits (with backoff) before it tries again.

    `permanent`: the store cannot be written as it is (read-only), as
    opposed to a failure that may pass (disk full, locked, I/O)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class NondeterminismError(ResumableError):
    """A step, run again after a crash or a retry, did something else than
    the first time: it started a child run with other arguments, or a task
    it created started a child run after its step had ended. Raised by the
    runtime at the child call; the run is blocked at its last checkpoint."""


class StepAborted(ResumableError):
    """A step raised a BaseException that is not an Exception
    (KeyboardInterrupt, SystemExit, GeneratorExit, a CancelledError the run
    was not cancelled with) while a worker drove it. The worker blocks the
    run with this error, the original as its `__cause__`, and goes on with
    its other runs."""


class OwnershipLost(ResumableError):
    """Internal: a fenced write of a run changed no row, so another driver
    took the run over (its owner generation moved on). The driver stops
    driving that run at once, writes nothing more for it, and logs this."""


class DuplicateRun(ResumableError, ValueError):
    """A dispatch gave a `dedup_key` that an active run holds (pending,
    running, waiting or blocked): no second run is created. `run_id` is the
    id of the run that holds the key; once it has ended (completed, failed,
    cancelled) the key is free again. Also a ValueError: the argument is
    refused."""

    def __init__(self, dedup_key: str, run_id: str) -> None:
        super().__init__(
            f"dedup_key {dedup_key!r}: run {run_id!r} holds it and has not ended; no new run "
            "was created (the key is free again once that run has ended)"
        )
        self.dedup_key = dedup_key
        self.run_id = run_id

    def __reduce__(self) -> Any:
        return (type(self), (self.dedup_key, self.run_id))


class RunConflict(ResumableError, ValueError):
    """A dispatch named an existing run (`run_id=`) but is not the same call:
    the stored run is of another function, or was started with other
    arguments. Nothing is created or changed. `run_id` is the run's id.
    Also a ValueError: the argument is refused. (A dispatch of the same
    call returns the existing id: dispatching is idempotent by run id.)"""

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id

    def __reduce__(self) -> Any:
        return (type(self), (str(self), self.run_id))


class RunCancelled(asyncio.CancelledError):
    """A run was cancelled (`Runtime.cancel`, or as a loser of
    `resumable.race`/`any`, or a `gather` that failed): raised at the
    run's current await, and by `Runtime.result` / `await rt.call(...)` once
    it has ended cancelled. `run_id` says which run, so that a caller can
    tell it from a cancellation of its own task."""

    def __init__(self, message: str = "", run_id: str = "") -> None:
        super().__init__(message)
        self.run_id = run_id


#: Errors that block a run instead of failing it: fixing the code or the
#: deployment and calling `retry` lets it go on from its last checkpoint.
BLOCKING = (
    SerializationError,
    VersionMismatch,
    StaleCodeError,
    CheckpointError,
    InternalError,
    NondeterminismError,
    StepAborted,
)
