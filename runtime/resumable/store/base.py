"""What every store keeps and does: run records, atomic updates, ownership."""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "ACTIVE",
    "BLOCKED",
    "COMPLETED",
    "FAILED",
    "FIELDS",
    "FINISHED",
    "PENDING",
    "RUNNING",
    "STATUSES",
    "WAITING",
    "RunRecord",
    "Store",
    "owner_name",
]

T = TypeVar("T")

PENDING = "pending"  # created (dispatched), not started yet
RUNNING = "running"  # being driven, or was when its owner died (resumable)
WAITING = "waiting"  # waiting to try a failed step again (wake_at)
COMPLETED = "completed"
FAILED = "failed"  # an exception left the function
BLOCKED = "blocked"  # cannot go on until `retry` (unencodable value, changed code, ...)
STATUSES = (PENDING, RUNNING, WAITING, COMPLETED, FAILED, BLOCKED)
#: A run in one of these has ended: it is never picked up again by itself.
FINISHED = (COMPLETED, FAILED, BLOCKED)
ACTIVE = (PENDING, RUNNING, WAITING)


@dataclass
class RunRecord:
    """One run as a store keeps it."""

    run_id: str
    function: str  # module:qualname
    fingerprint: str  # run fingerprint of the code that last drove it
    args: bytes  # the bound arguments (a codec document)
    status: str = PENDING
    checkpoint: bytes | None = None  # the latest checkpoint (a codec document)
    seq: int = 0  # its number: 1, 2, ... (0: none yet)
    line: int = 0  # source line of the await it stands at
    source: str = ""  # the function's source file, as shown to people
    attempt: int = 0  # failed attempts of the current step
    attempts: int = 0  # failed attempts over the whole run
    result: bytes | None = None  # the return value (a codec document)
    error: bytes | None = None  # the exception that failed or blocked it (a codec document)
    reason: str | None = None  # one line saying why it failed or is blocked
    parent: str | None = None  # the run that awaited it (child runs)
    created_at: float = 0.0
    updated_at: float = 0.0
    wake_at: float | None = None  # WAITING: when to try the step again
    owner: str | None = None  # "pid@host" of the process that last drove it


#: The fields of a record, in the order stores keep them.
FIELDS = tuple(f.name for f in dataclasses.fields(RunRecord))


def owner_name() -> str:
    """How the current process is named as a run's owner."""
    return f"{os.getpid()}@{socket.gethostname()}"


class Store:
    """The operations the runtime needs. Each write is atomic."""

    url: str = ""

    def create(self, record: RunRecord) -> bool:
        """Insert `record` unless a run with its id exists; True if inserted."""
        raise NotImplementedError

    def get(self, run_id: str) -> RunRecord | None:
        raise NotImplementedError

    def update(
        self, run_id: str, fields: dict[str, Any], *, when: Iterable[str] | None = None
    ) -> bool:
        """Set `fields` of a run (and `updated_at`), only if its status is in
        `when` (any status when None). True if the run was updated."""
        raise NotImplementedError

    def list_runs(
        self,
        *,
        statuses: Iterable[str] | None = None,
        parent: str | None = None,
        top_only: bool = False,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first: of the given statuses, children of `parent`,
        or only top-level runs."""
        raise NotImplementedError

    def runnable(self, now: float, limit: int) -> list[RunRecord]:
        """Top-level runs a worker may drive now, oldest first: pending,
        running (an owner may have died: the lock tells), waiting and due."""
        raise NotImplementedError

    def lock(self, run_id: str) -> bool:
        """Take ownership of a run, without waiting; False if another owner
        (another process, or another driver in this one) holds it."""
        raise NotImplementedError

    def unlock(self, run_id: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the store holds (locks included)."""

    async def io(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call a store method from async code (in a thread when it does I/O)."""
        return fn(*args, **kwargs)
