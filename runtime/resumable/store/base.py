"""What every store keeps and does: run records, fenced writes, ownership.

A driver that starts driving a run *claims* it: the claim bumps the run's
owner generation and returns a `Lease` holding it. Every later write of the
driver (a checkpoint, a park to wait, the end of the run) is a `Write`
built by one of the typed constructors below, and carries the lease's
generation: the store applies it only if the row still has that generation
and is running, in the same statement. A write that changes no row means
another driver took the run over; the runtime then stops driving it
(`OwnershipLost`). Ownership itself (who may claim) is the store's
`Ownership` (ownership.py): OS locks for SQLite, a set for memory://.

    lease = store.claim(run_id, owner_name(), fingerprint)
    store.apply(checkpoint_write(lease, blob, seq, line, fingerprint))  # True, or lost
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..queues import Queue

__all__ = [
    "ACTIVE",
    "BLOCKED",
    "CANCELLED",
    "CANCEL_OP",
    "COMPLETED",
    "DEADLINE_OP",
    "DELIVERED",
    "FAILED",
    "FIELDS",
    "FINISHED",
    "MAX_COUNT",
    "MAX_TIME",
    "PENDING",
    "PURGEABLE",
    "REQUESTED",
    "RUNNING",
    "SCHEDULE_FIELDS",
    "STATUSES",
    "SUMMARY_FIELDS",
    "WAITING",
    "Claim",
    "Event",
    "Lease",
    "Operation",
    "Ownership",
    "QueueClaim",
    "RunRecord",
    "RunSummary",
    "Schedule",
    "Status",
    "Store",
    "Wake",
    "Write",
    "ancestors",
    "cancel_target_error",
    "checkpoint_write",
    "damage",
    "event_target_error",
    "finish_write",
    "operation_write",
    "owner_name",
    "park_write",
    "requeue_write",
    "schedule_damage",
    "storable_text",
    "wait_write",
]

T = TypeVar("T")


class Status(StrEnum):
    """A run's status, stored as its text (a Status equals its string; its
    repr is the string's, so messages read as before)."""

    PENDING = "pending"  # created (dispatched), not started yet
    RUNNING = "running"  # being driven, or was when its owner died (resumable)
    WAITING = (
        "waiting"  # parked until wake_at (a retry delay, a timer), or an event: a row, not a task
    )
    COMPLETED = "completed"
    FAILED = "failed"  # an exception left the function
    BLOCKED = "blocked"  # cannot go on until `retry` (unencodable value, changed code, ...)
    CANCELLED = "cancelled"  # `Runtime.cancel`: a CancelledError left the function

    def __repr__(self) -> str:
        return repr(self.value)


PENDING, RUNNING, WAITING = Status.PENDING, Status.RUNNING, Status.WAITING
COMPLETED, FAILED, BLOCKED, CANCELLED = (
    Status.COMPLETED,
    Status.FAILED,
    Status.BLOCKED,
    Status.CANCELLED,
)
STATUSES = tuple(Status)
#: A run in one of these has ended: it is never picked up again by itself.
FINISHED = (COMPLETED, FAILED, BLOCKED, CANCELLED)
#: Ended for good: a purge may delete them (a blocked run waits for a retry).
PURGEABLE = (COMPLETED, FAILED, CANCELLED)
ACTIVE = (PENDING, RUNNING, WAITING)

#: Counters (seq, attempts, generation) beyond this are damage, not data.
MAX_COUNT = 2**53
#: Timestamps beyond this (the year 9999) are damage, not data.
MAX_TIME = 253402300799.0


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
    attempt: int = 0  # failed attempts from the current checkpoint
    attempts: int = 0  # failed attempts over the whole run
    result: bytes | None = None  # the return value (a codec document)
    error: bytes | None = None  # the exception that failed or blocked it (a codec document)
    reason: str | None = None  # one line saying why it failed, is blocked or waits
    parent: str | None = None  # the run that awaited it (child runs)
    created_at: float = 0.0
    updated_at: float = 0.0
    wake_at: float | None = None  # WAITING: when it is due
    owner: str | None = None  # "pid@host" of the process that last drove it
    generation: int = 0  # owner generation: bumped by every claim, checked by every write
    args_digest: str = ""  # digest of the arguments (child runs are matched by it)
    queue: str | None = None  # the queue it is claimed through (top-level runs only)
    priority: int = 0  # within its queue: higher starts first
    dedup_key: str | None = None  # no two unended runs share one (DuplicateRun)
    #: Not stored: the row's position (to address a damaged row), and what is
    #: wrong with the row when it cannot be read as a run (then it is blocked).
    rowid: int = 0
    damaged: str | None = None


#: The stored fields of a record, in the order stores keep them.
FIELDS = tuple(f.name for f in dataclasses.fields(RunRecord))[:-2]


@dataclass(frozen=True)
class RunSummary:
    """A run as listed: no checkpoint, arguments, result or error is read."""

    run_id: str
    function: str
    status: str
    parent: str | None
    seq: int
    line: int
    source: str
    attempts: int
    reason: str | None
    created_at: float
    updated_at: float
    wake_at: float | None
    owner: str | None
    rowid: int = 0
    damaged: str | None = None


SUMMARY_FIELDS = tuple(f.name for f in dataclasses.fields(RunSummary))[:-2]


@dataclass(frozen=True)
class Schedule:
    """A function run on a schedule (`Runtime.schedule`): exactly one of
    `cron` (an expression, UTC) and `every` (seconds). Each firing is a
    top-level run `<schedule_id>@<UTC time>` (schedules.py)."""

    schedule_id: str
    function: str  # module:qualname
    args: bytes  # the bound arguments (a codec document)
    args_digest: str
    cron: str | None
    every: float | None
    created_at: float
    last_fired: float | None = None  # the time of the last firing created
    next_at: float = 0.0  # the time of the next firing
    source: str = ""  # the function's source file (a worker may import it from there)
    #: Not stored: what is wrong with a row that cannot be read as a schedule.
    damaged: str | None = None


#: The stored fields of a schedule, in the order stores keep them.
SCHEDULE_FIELDS = tuple(f.name for f in dataclasses.fields(Schedule))[:-1]


def schedule_damage(values: dict[str, Any]) -> str | None:
    """What is wrong with a schedule row (None: nothing); damaged values are
    replaced by harmless ones, as `damage` does for runs."""
    problems: list[str] = []

    def bad(name: str, default: Any) -> None:
        problems.append(f"column {name!r} holds {values[name]!r:.60}")
        values[name] = default

    for name in ("schedule_id", "function", "args_digest", "source"):
        if type(values[name]) is not str:
            bad(name, str(values[name]) if isinstance(values[name], str) else "")
    if type(values["args"]) is not bytes:
        bad("args", b"")
    if values["cron"] is not None and type(values["cron"]) is not str:
        bad("cron", None)
    every = values["every"]
    if every is not None and not (type(every) in (int, float) and 1 <= every <= MAX_TIME):
        bad("every", None)
    if (values["cron"] is None) == (values["every"] is None) and not problems:
        problems.append("it has neither or both of a cron expression and an interval")
    for name in ("created_at", "last_fired", "next_at"):
        v = values[name]
        if v is None and name == "last_fired":
            continue
        if type(v) not in (int, float) or not (math.isfinite(v) and 0 <= v <= MAX_TIME):
            bad(name, None if name == "last_fired" else 0.0)
    return "; ".join(problems) or None


_TEXT = ("run_id", "function", "fingerprint", "status", "source", "args_digest")
_OPTIONAL_TEXT = ("reason", "parent", "owner", "queue", "dedup_key")
_BLOBS = ("args",)
_OPTIONAL_BLOBS = ("checkpoint", "result", "error")
_COUNTS = ("seq", "line", "attempt", "attempts", "generation")
_TIMES = ("created_at", "updated_at")


def damage(values: dict[str, Any]) -> str | None:
    """What is wrong with a row read from a store (None: nothing), and the
    row's values made safe to carry in a record: a damaged value is replaced
    by its type's default, so that only `damaged` says what it was."""
    problems: list[str] = []

    def bad(name: str, default: Any) -> None:
        problems.append(f"column {name!r} holds {values[name]!r:.60}")
        values[name] = default

    def problems_of(name: str) -> bool:
        return any(p.startswith(f"column {name!r} ") for p in problems)

    for name in _TEXT + _OPTIONAL_TEXT:
        if name not in values:
            continue
        v = values[name]
        if type(v) is not str and not (v is None and name in _OPTIONAL_TEXT):
            if isinstance(v, str):  # text that is not UTF-8 (see storable_text)
                problems.append(f"column {name!r} is not valid UTF-8 ({v!r:.60})")
                values[name] = str(v)
            else:
                bad(name, None if name in _OPTIONAL_TEXT else "")
    if values.get("status", PENDING) not in STATUSES:
        if problems_of("status"):  # not UTF-8: said already
            values["status"] = BLOCKED
        else:
            bad("status", BLOCKED)
    for name in _BLOBS + _OPTIONAL_BLOBS:
        if name not in values or type(values[name]) is bytes:
            continue
        if not (values[name] is None and name in _OPTIONAL_BLOBS):
            bad(name, b"" if name in _BLOBS else None)
    for name in _COUNTS:
        v = values.get(name, 0)
        if type(v) is not int or not 0 <= v < MAX_COUNT:
            bad(name, 0)
    if "priority" in values:
        v = values["priority"]
        if type(v) is not int or not -MAX_COUNT < v < MAX_COUNT:
            bad("priority", 0)
    for name in (*_TIMES, "wake_at"):
        if name not in values:
            continue
        v = values[name]
        if v is None and name == "wake_at":
            continue
        if type(v) not in (int, float) or not (math.isfinite(v) and 0 <= v <= MAX_TIME):
            bad(name, 0.0 if name in _TIMES else None)
    return "; ".join(problems) or None


def storable_text(text: str) -> str:
    """`text` with what a TEXT column cannot hold (lone surrogates) escaped."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def ancestors(run_id: str) -> list[str]:
    """The runs above a child run, its parent first (child ids nest with `/`)."""
    parts = run_id.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def event_target_error(run_id: str, status: str | None, url: str) -> Exception | None:
    """Why an event cannot be sent to a run in `status` (None: no such run)."""
    if status is None:
        return LookupError(f"cannot send an event to run {run_id!r}: there is no such run in {url}")
    if status in FINISHED:
        return ValueError(
            f"cannot send an event to run {run_id!r}: it has ended ({status}), and nothing "
            "will wait for it again"
        )
    return None


def cancel_target_error(
    run_id: str, status: str | None, parent: str | None, url: str
) -> Exception | None:
    """Why the run `run_id` in `status` (None: absent) cannot be cancelled."""
    if status is None:
        return LookupError(f"cannot cancel run {run_id!r}: there is no such run in {url}")
    if parent is not None:
        top = run_id.split("/", 1)[0]
        return ValueError(
            f"cannot cancel run {run_id!r}: it is a child run of {parent!r}; cancel "
            f"the top-level run {top!r}, which cancels the runs below it"
        )
    if status in FINISHED and status != BLOCKED:
        return ValueError(f"cannot cancel run {run_id!r}: it has ended ({status})")
    return None


def owner_name() -> str:
    """How the current process is named as a run's owner."""
    return f"{os.getpid()}@{socket.gethostname()}"


# -- fenced writes -------------------------------------------------------------------


@dataclass(frozen=True)
class QueueClaim:
    """What `Store.claim_queued` took: `taken` (run id, function) pairs,
    now owned by the caller; `damaged` rows seen (to be blocked); `retry_at`:
    runnable runs were held back by a limit: when to look again (a rate
    window's next free start, or `now` for a full concurrency); None: none
    were held back."""

    taken: tuple[tuple[str, str], ...] = ()
    damaged: tuple[RunSummary, ...] = ()
    retry_at: float | None = None


@dataclass(frozen=True)
class Lease:
    """What a driver holds while it drives a run: its owner generation."""

    run_id: str
    generation: int


@dataclass(frozen=True)
class Claim:
    """A driver starts driving an active run it owns: see `Store.claim`."""

    run_id: str
    owner: str
    fingerprint: str


#: The operation of a run that says it is to be cancelled: outcome
#: "requested" (by `Runtime.cancel`, for the run and the runs below it),
#: then "delivered" (raised at one of its awaits, committed with the next
#: checkpoint). And the one that holds a run's deadline (`timeout=`).
CANCEL_OP, DEADLINE_OP = "cancel", "deadline"
REQUESTED, DELIVERED = "requested", "delivered"


@dataclass(frozen=True)
class Operation:
    """A durable operation of a run that outlives its step: a timer's wake
    time, an event wait's deadline, or its outcome once decided (a timeout).
    `op_id` is `<kind>:<seq>.<n>`, as the step numbered it (run.py)."""

    run_id: str
    op_id: str
    wake_at: float | None = None
    outcome: str | None = None  # "timeout": the wait ended without an event


@dataclass(frozen=True)
class Event:
    """An event sent to a run: kept until a wait of the run takes it."""

    event_id: int  # send order (one counter per store)
    run_id: str
    name: str
    payload: bytes  # a codec document
    dedup_key: str | None
    sent_at: float
    taken_by: str | None  # the op id of the wait that took it


@dataclass(frozen=True)
class Wake:
    """What a waiting run's wake time also depends on, decided in the write's
    own transaction, so that nothing sent or woken meanwhile is missed:
    `event`: an event of that name not taken yet (other than `skip`) makes the
    run due at once; `child`: the run is due when that child run is (its wake
    time, or now if it is no longer waiting); `children`: due when the first
    of those child runs is (a fan-out whose children all wait). `now`: the
    driver's clock."""

    now: float
    event: str | None = None
    skip: tuple[int, ...] = ()
    child: str | None = None
    children: tuple[str, ...] = ()

    @property
    def awaited(self) -> tuple[str, ...]:
        """The child runs the waiting run is due with."""
        return (self.child, *self.children) if self.child is not None else self.children


@dataclass(frozen=True)
class Write:
    """One change of a run's row, built by the constructors below.

    `generation`: applied only while the row has it and is running (a
    driver's write); None for an operator's write (`requeue_write`), which
    applies only while the row's status is in `statuses`. `operations` are
    recorded, and `takes` (event id, op id) bind events to the waits that
    took them, in the same transaction and only if the row was changed."""

    kind: str  # checkpoint, park, wait, operation, finish, requeue: what the write is
    run_id: str
    sets: tuple[tuple[str, Any], ...]
    generation: int | None = None
    statuses: tuple[str, ...] = (RUNNING,)
    operations: tuple[Operation, ...] = ()
    takes: tuple[tuple[int, str], ...] = ()
    wake: Wake | None = None
    #: The end of a dispatched child run (one claimed through its queue):
    #: its parent, due at once if it waits (for it) as a row.
    wakes: str | None = None
    #: The run's own row, not stored yet (a child run's first write: see
    #: `Run.unsaved`), inserted first in the same transaction. If the row
    #: exists, the write applies only if it names this row's owner (and,
    #: as any driver's write, its generation): it was made by this driver's
    #: first write, whose commit its driver did not see end (cancelled while
    #: in flight), not by another driver of the run.
    creates: RunRecord | None = None

    @property
    def compound(self) -> bool:
        """More than the one UPDATE of the run's row."""
        return bool(self.operations or self.takes or self.wake or self.wakes or self.creates)


def checkpoint_write(
    lease: Lease,
    blob: bytes,
    seq: int,
    line: int,
    fingerprint: str,
    *,
    takes: tuple[tuple[int, str], ...] = (),
    operations: tuple[Operation, ...] = (),
) -> Write:
    """Checkpoint `seq`: it replaces the last one; the attempt count restarts;
    the events the step took are bound to their waits; `operations` (a
    cancellation delivered) are recorded."""
    sets = (
        ("checkpoint", blob),
        ("seq", seq),
        ("line", line),
        ("attempt", 0),
        ("reason", None),
        ("fingerprint", fingerprint),
    )
    # Write(...) without the frozen dataclass's __init__ (an object.__setattr__
    # per field), its fields made as its __dict__: this is on the path of
    # every await.
    write = object.__new__(Write)
    _set_fields(
        write,
        "__dict__",
        {
            "kind": "checkpoint",
            "run_id": lease.run_id,
            "sets": sets,
            "generation": lease.generation,
            "statuses": _RUNNING_ONLY,
            "operations": operations,
            "takes": takes,
            "wake": None,
            "wakes": None,
            "creates": None,
        },
    )
    return write


_RUNNING_ONLY = (RUNNING,)
_set_fields = object.__setattr__


def park_write(lease: Lease, *, attempt: int, attempts: int, wake_at: float, reason: str) -> Write:
    """The run waits (a row with a wake time) to try again from its checkpoint."""
    sets = (
        ("status", WAITING),
        ("attempt", attempt),
        ("attempts", attempts),
        ("wake_at", wake_at),
        ("reason", storable_text(reason)),
    )
    return Write("park", lease.run_id, sets, lease.generation)


def wait_write(
    lease: Lease,
    *,
    wake_at: float | None,
    reason: str,
    operations: tuple[Operation, ...] = (),
    wake: Wake | None = None,
) -> Write:
    """The run waits for a timer or an event (`wake_at` None: only an event,
    or `wake`, makes it due), with the operations that started the wait."""
    sets = (("status", WAITING), ("wake_at", wake_at), ("reason", storable_text(reason)))
    return Write("wait", lease.run_id, sets, lease.generation, operations=operations, wake=wake)


def operation_write(lease: Lease, *operations: Operation) -> Write:
    """Record operations of the running run (a timer started, a timeout
    decided), fenced by its lease."""
    return Write("operation", lease.run_id, (), lease.generation, operations=operations)


def woken_by_end(record: RunRecord) -> str | None:
    """The run a run's end makes due: a dispatched child's parent (the child
    of a queue, claimed through it while its parent waits as a row)."""
    return record.parent if record.queue is not None else None


def finish_write(
    lease: Lease,
    status: str,
    *,
    result: bytes | None = None,
    error: bytes | None = None,
    reason: str | None = None,
    takes: tuple[tuple[int, str], ...] = (),
    wakes: str | None = None,
) -> Write:
    """The end of a run: completed with `result`, failed or blocked with
    `error`. `wakes`: the parent of a dispatched child run."""
    if status not in FINISHED:
        raise ValueError(f"finish_write: {status!r} is not an end status")
    sets = (
        ("status", status),
        ("result", result),
        ("error", error),
        ("reason", None if reason is None else storable_text(reason)),
        ("wake_at", None),
    )
    return Write("finish", lease.run_id, sets, lease.generation, takes=takes, wakes=wakes)


def requeue_write(run_id: str) -> Write:
    """An operator's retry: a failed or blocked run is pending again, at its
    last checkpoint, with a fresh attempt count."""
    sets = (
        ("status", PENDING),
        ("error", None),
        ("reason", None),
        ("attempt", 0),
        ("wake_at", None),
    )
    return Write("requeue", run_id, sets, None, (FAILED, BLOCKED))


# -- the interface -------------------------------------------------------------------


class Ownership:
    """Who may claim a run: one owner at a time, across processes too.

    `acquire` never waits; an owner that dies loses what it held at once
    (SQLite: OS locks) or when its lease ends (stores with leases)."""

    def acquire(self, run_id: str) -> bool:
        raise NotImplementedError

    def release(self, run_id: str) -> None:
        raise NotImplementedError

    def held(self, run_id: str) -> bool:
        """Whether a driver (of this process or another) owns the run now.
        (Counts a queue's running runs on SQLite; called inside the claiming
        transaction, so no other claimer acquires meanwhile.)"""
        if self.acquire(run_id):
            self.release(run_id)
            return False
        return True

    def current(self, run_id: str) -> bool:
        """Whether this process may still act as the owner of a run it
        acquired, by its own clock. Leases: False once the lease may have
        ended unrenewed (the process was frozen, or cut off from the
        database, for longer than the lease); OS locks never end so."""
        return True

    def close(self) -> None:
        """Release everything this object holds."""


class Store:
    """The operations the runtime needs. Each write is atomic.

    Methods are synchronous; async callers use `io` (any method) and
    `commit` (a Write), which do the I/O off the event loop."""

    url: str = ""
    ownership: Ownership
    #: `commit` is `apply` with no I/O and nothing grouped (memory://): a
    #: run's checkpoint is written by `write_checkpoint`, called by the run
    #: itself, with no coroutine per await.
    applies_in_place: bool = False

    # -- reads
    def get(self, run_id: str) -> RunRecord | None:
        raise NotImplementedError

    def list_runs(
        self,
        *,
        statuses: Iterable[str] | None = None,
        parent: str | None = None,
        top_only: bool = False,
        limit: int | None = None,
    ) -> list[RunSummary]:
        """Runs, newest first: of the given statuses, children of `parent`,
        or only top-level runs."""
        raise NotImplementedError

    def runnable_functions(self, now: float) -> set[str]:
        """The functions of the top-level runs a worker may drive now."""
        raise NotImplementedError

    def runnable(
        self,
        now: float,
        functions: Sequence[str],
        *,
        after: tuple[float, int] = (-1.0, -1),
        limit: int = 100,
        queued: bool = False,
    ) -> list[RunSummary]:
        """Top-level runs of `functions` a worker may drive now, oldest
        first, from after `after` (created_at, rowid): pending, running (an
        owner may have died: ownership tells), waiting and due. Runs of a
        queue are left out (they are taken by `claim_queued`) unless `queued`."""
        raise NotImplementedError

    def next_wake(self, functions: Sequence[str]) -> float | None:
        """The earliest wake time of a waiting top-level run of `functions`."""
        raise NotImplementedError

    # -- writes
    def create(self, record: RunRecord) -> bool:
        """Insert `record` unless a run with its id exists; True if inserted."""
        raise NotImplementedError

    def claim(self, run_id: str, owner: str, fingerprint: str) -> Lease | None:
        """Start driving an active run (the caller holds its ownership): it is
        running, its generation bumped. None if it is not active (or absent)."""
        raise NotImplementedError

    def apply(self, write: Write) -> bool:
        """Apply one write; False when it changed no row (lost, or not in a
        status it applies to)."""
        raise NotImplementedError

    def write_checkpoint(
        self, lease: Lease, blob: bytes, seq: int, line: int, fingerprint: str
    ) -> bool:
        """`apply(checkpoint_write(lease, blob, seq, line, fingerprint))`: a
        checkpoint and nothing else (a store may do it without the Write)."""
        return self.apply(checkpoint_write(lease, blob, seq, line, fingerprint))

    def abandon(self, parent: Lease, child_ids: Sequence[str], error: bytes, reason: str) -> None:
        """Fail active children the parent went on without (its next
        checkpoint or its end is committed), if no other driver has claimed
        the parent since (fenced by the parent's generation)."""
        raise NotImplementedError

    def block_damaged(self, rowid: int, reason: str) -> bool:
        """Block a row that cannot be read as a run (by its rowid)."""
        raise NotImplementedError

    def purge(self, before: float, *, limit: int = 500) -> list[str]:
        """Delete up to `limit` top-level runs that ended (completed, failed
        or cancelled; never blocked: those wait for a retry) and were last
        written before `before`, with their child runs, operations and
        events; the ids of those deleted."""
        raise NotImplementedError

    # -- queues (queues.py; the SQL in store/queueing.py)
    def create_run(self, record: RunRecord, queue: Queue | None = None) -> str | None:
        """Insert `record` and keep `queue`'s limits, in one transaction.
        None: inserted; else the id of the run in the way: the run with its
        id, or the unended run that holds its `dedup_key` (nothing changes)."""
        raise NotImplementedError

    def dedup_holder(self, dedup_key: str) -> str | None:
        """The unended run (pending, running, waiting, blocked) holding the key."""
        raise NotImplementedError

    def runnable_queues(self, now: float, functions: Sequence[str]) -> set[str]:
        """The queues with top-level runs of `functions` a worker may drive now."""
        raise NotImplementedError

    def claim_queued(
        self, queue: str, now: float, functions: Sequence[str], owner: str, limit: int
    ) -> QueueClaim:
        """In one transaction: count the queue's runs driven now and its
        starts in the rate window, and take (own, and mark running) as many
        of its runnable runs of `functions` as its limits and `limit` allow,
        highest priority first, then oldest. The caller drives (and unlocks)
        the runs taken."""
        raise NotImplementedError

    # -- durable waits
    def operation(self, run_id: str, op_id: str) -> Operation | None:
        raise NotImplementedError

    def send_event(
        self, run_id: str, name: str, payload: bytes, dedup_key: str | None, now: float
    ) -> bool:
        """Keep an event for the active run `run_id` and make it (and the
        runs above it) due at once if waiting (wake time 0). False: an event of that name with that
        `dedup_key` was sent already (nothing changes). Raises LookupError
        (no such run) or ValueError (it has ended)."""
        raise NotImplementedError

    def request_cancel(self, run_id: str) -> bool:
        """Ask the active top-level run `run_id`, and the active runs below
        it, to be cancelled: each waiting one is due at once, a blocked one
        pending again (to run its `finally` blocks). False: it was asked
        already. Raises LookupError (no such run) or ValueError (a child
        run, or one that has ended)."""
        raise NotImplementedError

    def cancel_requests(self, run_ids: Sequence[str]) -> set[str]:
        """Those of `run_ids` asked to be cancelled and not told yet."""
        raise NotImplementedError

    def next_event(self, run_id: str, name: str, skip: Sequence[int] = ()) -> Event | None:
        """The first event of `name` sent to the run and not taken yet (nor in `skip`)."""
        raise NotImplementedError

    def taken_event(self, run_id: str, op_id: str) -> Event | None:
        """The event the wait `op_id` of the run took, once that was committed."""
        raise NotImplementedError

    def events(self, run_id: str) -> list[Event]:
        """Every event sent to the run, in send order."""
        raise NotImplementedError

    # -- schedules (Runtime.schedule, schedules.py)
    def upsert_schedule(self, schedule: Schedule) -> bool:
        """Keep `schedule` unless one with its id exists (nothing of that one
        changes); True if it was new."""
        raise NotImplementedError

    def schedules(self) -> list[Schedule]:
        """Every schedule, by id."""
        raise NotImplementedError

    def get_schedule(self, schedule_id: str) -> Schedule | None:
        raise NotImplementedError

    def delete_schedule(self, schedule_id: str) -> bool:
        """Forget a schedule (its runs stay); False if there was none."""
        raise NotImplementedError

    def due_schedules(self, now: float) -> list[Schedule]:
        """The schedules whose next firing is at or before `now`."""
        raise NotImplementedError

    def next_schedule(self, after: float) -> float | None:
        """The earliest next firing of a schedule later than `after`."""
        raise NotImplementedError

    def fire_schedule(
        self, schedule: Schedule, fired_at: float, next_at: float, run: RunRecord
    ) -> bool:
        """In one transaction: if the schedule's last firing is still
        `schedule.last_fired` (no one fired it meanwhile), record `fired_at`
        as its last firing and `next_at` as its next, and create `run`
        unless a run with its id exists. False (nothing changes) if the
        schedule was fired meanwhile or is gone."""
        raise NotImplementedError

    # -- ownership, plumbing
    def lock(self, run_id: str) -> bool:
        return self.ownership.acquire(run_id)

    async def lock_async(self, run_id: str) -> bool:
        """`lock` from async code (off the event loop where it does I/O)."""
        return self.lock(run_id)

    def unlock(self, run_id: str) -> None:
        self.ownership.release(run_id)

    def close(self) -> None:
        """Release what the store holds (ownership included)."""
        self.ownership.close()

    async def io(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call a store method from async code (in a thread when it does I/O)."""
        return fn(*args, **kwargs)

    async def claim_async(self, run_id: str, owner: str, fingerprint: str) -> Lease | None:
        """`claim` from async code (grouped with concurrent writes when the
        store can)."""
        return await self.io(self.claim, run_id, owner, fingerprint)

    async def commit(self, write: Write) -> bool:
        """`apply` from async code (grouped with concurrent writes when the
        store can)."""
        return await self.io(self.apply, write)

    async def create_async(self, record: RunRecord) -> bool:
        """`create` from async code (grouped with concurrent writes when the
        store can)."""
        return await self.io(self.create, record)
