"""`memory://`: runs in a dict, for tests and examples; gone with the process.

Records are copied in and out, as a real store would, so nothing outside
the store can change what it holds. Writes are fenced like SQLite's."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..queues import Queue
from .base import (
    ACTIVE,
    BLOCKED,
    CANCEL_OP,
    FAILED,
    FINISHED,
    PENDING,
    PURGEABLE,
    REQUESTED,
    RUNNING,
    SUMMARY_FIELDS,
    WAITING,
    Event,
    Lease,
    Operation,
    QueueClaim,
    RunRecord,
    RunSummary,
    Schedule,
    Store,
    Wake,
    Write,
    ancestors,
    cancel_target_error,
    event_target_error,
)
from .ownership import LocalOwnership

__all__ = ["MemoryStore"]


def _copy(record: RunRecord, pairs: Iterable[tuple[str, Any]] = (), **fields: Any) -> RunRecord:
    """A copy of `record` with the fields of `pairs` and `fields` changed
    (dataclasses.replace, without running __init__ over every field: this is
    on the path of every await)."""
    new = object.__new__(RunRecord)
    new.__dict__.update(record.__dict__)
    new.__dict__.update(pairs)
    new.__dict__.update(fields)
    return new


def _on_its_own(record: RunRecord) -> bool:
    """Taken by workers on its own: a top-level run or a dispatched child (sql.py)."""
    return record.parent is None or record.queue is not None


def _due(child: RunRecord, now: float) -> float | None:
    """When a parent waiting for this child is due (sql.py's wake rule)."""
    if child.queue is not None:  # dispatched: once it has ended
        return now if child.status in FINISHED else None
    return child.wake_at if child.status == WAITING else now


def _summary(record: RunRecord) -> RunSummary:
    return RunSummary(**{f: getattr(record, f) for f in SUMMARY_FIELDS}, rowid=record.rowid)


class MemoryStore(Store):
    applies_in_place = True

    def __init__(self) -> None:
        self.url = "memory://"
        self.runs: dict[str, RunRecord] = {}
        self.operations: dict[tuple[str, str], Operation] = {}
        self.sent: list[Event] = []
        self.kept_schedules: dict[str, Schedule] = {}
        #: Queues (queues.py): each one's limits, and its starts in the rate window.
        self.queues: dict[str, Queue] = {}
        self.starts: dict[str, list[float]] = {}
        self.ownership = LocalOwnership()

    def create(self, record: RunRecord) -> bool:
        if record.run_id in self.runs:
            return False
        now = time.time()
        self.runs[record.run_id] = _copy(
            record, created_at=now, updated_at=now, rowid=len(self.runs) + 1
        )
        return True

    def get(self, run_id: str) -> RunRecord | None:
        record = self.runs.get(run_id)
        return None if record is None else _copy(record)

    def _set(self, run_id: str, **fields: Any) -> None:
        # A new object: the copies handed out stay as they were.
        self.runs[run_id] = _copy(self.runs[run_id], **fields, updated_at=time.time())

    def claim(self, run_id: str, owner: str, fingerprint: str) -> Lease | None:
        record = self.runs.get(run_id)
        if record is None or record.status not in ACTIVE:
            return None
        generation = record.generation + 1
        self._set(
            run_id,
            status=RUNNING,
            generation=generation,
            owner=owner,
            fingerprint=fingerprint,
            wake_at=None,
        )
        return Lease(run_id, generation)

    async def commit(self, write: Write) -> bool:
        return self.apply(write)  # no I/O: not through `io`, one coroutine less per await

    def apply(self, write: Write) -> bool:
        creates = write.creates
        if creates is not None and not self.create(creates):
            record = self.runs.get(write.run_id)
            if record is not None and record.owner != creates.owner:
                return False  # made meanwhile: another driver's (sql.py)
        record = self.runs.get(write.run_id)
        if record is None or record.status not in write.statuses:
            return False
        generation = write.generation
        if generation is not None and record.generation != generation:
            return False
        # In place: the stored records are never handed out (get, summaries
        # and listings copy), and this is on the path of every await.
        fields = record.__dict__
        fields.update(write.sets)
        fields["updated_at"] = time.time()
        if write.operations or write.takes or write.wake is not None or write.wakes is not None:
            self._apply_more(write)
        return True

    def write_checkpoint(
        self, lease: Lease, blob: bytes, seq: int, line: int, fingerprint: str
    ) -> bool:
        # apply(checkpoint_write(...)) without the Write: on the path of every await.
        record = self.runs.get(lease.run_id)
        if record is None or record.status != RUNNING or record.generation != lease.generation:
            return False
        fields = record.__dict__  # checkpoint_write's sets:
        fields["checkpoint"] = blob
        fields["seq"] = seq
        fields["line"] = line
        fields["attempt"] = 0
        fields["reason"] = None
        fields["fingerprint"] = fingerprint
        fields["updated_at"] = time.time()
        return True

    def _apply_more(self, write: Write) -> None:
        """The rest of a write that applies: its operations, the events it
        takes, the runs it wakes."""
        for op in write.operations:
            self.operations[(op.run_id, op.op_id)] = op
            if op.op_id == CANCEL_OP and op.run_id != write.run_id:
                self._wake(op.run_id, 0.0)  # a fan-out's loser (sql.py)
        for event_id, op_id in write.takes:
            i = event_id - 1
            event = self.sent[i]
            if event.run_id == write.run_id and event.taken_by is None:
                self.sent[i] = dataclasses.replace(event, taken_by=op_id)
        if write.wake is not None:
            self._wake_rule(write.run_id, write.wake)
        if write.wakes is not None:
            self._wake(write.wakes, 0.0)

    def _wake_rule(self, run_id: str, wake: Wake) -> None:
        now = wake.now
        if wake.event is not None and self.next_event(run_id, wake.event, wake.skip):
            self._wake(run_id, now)
        awaited = [self.runs[c] for c in wake.awaited if c in self.runs]
        if awaited and self.runs[run_id].status == WAITING:
            times = [_due(c, now) for c in awaited]
            known = [t for t in (*times, self.runs[run_id].wake_at) if t is not None]
            self._set(run_id, wake_at=min(known) if known else None)

    def _wake(self, run_id: str, now: float) -> None:
        record = self.runs.get(run_id)
        if (
            record is not None
            and record.status == WAITING
            and (record.wake_at is None or record.wake_at > now)
        ):
            self._set(run_id, wake_at=now)

    def operation(self, run_id: str, op_id: str) -> Operation | None:
        return self.operations.get((run_id, op_id))

    def send_event(
        self, run_id: str, name: str, payload: bytes, dedup_key: str | None, now: float
    ) -> bool:
        record = self.runs.get(run_id)
        if (
            record is not None
            and dedup_key is not None
            and any(
                e.run_id == run_id and e.name == name and e.dedup_key == dedup_key
                for e in self.sent
            )
        ):
            return False  # a resend, also once the run has ended since (sql.py)
        error = event_target_error(run_id, None if record is None else record.status, self.url)
        if error is not None:
            raise error
        self.sent.append(Event(len(self.sent) + 1, run_id, name, payload, dedup_key, now, None))
        for woken in (run_id, *ancestors(run_id)):
            self._wake(woken, 0.0)  # due at once, whatever the clocks say
        return True

    def request_cancel(self, run_id: str) -> bool:
        record = self.runs.get(run_id)
        error = cancel_target_error(
            run_id,
            None if record is None else record.status,
            None if record is None else record.parent,
            self.url,
        )
        if error is not None:
            raise error
        changed = False
        for tree_id, member in list(self.runs.items()):
            in_tree = tree_id == run_id or tree_id.startswith(run_id + "/")
            if not in_tree or member.status not in (*ACTIVE, BLOCKED):
                continue
            if (tree_id, CANCEL_OP) not in self.operations:
                self.operations[tree_id, CANCEL_OP] = Operation(tree_id, CANCEL_OP, None, REQUESTED)
                changed = True
            if member.status == BLOCKED:
                self._set(tree_id, status=PENDING, wake_at=0.0)
            elif member.status == WAITING:
                self._set(tree_id, wake_at=0.0)
        return changed

    def cancel_requests(self, run_ids: Sequence[str]) -> set[str]:
        return {
            run_id
            for run_id in run_ids
            if (op := self.operations.get((run_id, CANCEL_OP))) is not None
            and op.outcome == REQUESTED
        }

    def next_event(self, run_id: str, name: str, skip: Sequence[int] = ()) -> Event | None:
        for e in self.sent:
            if (
                e.run_id == run_id
                and e.name == name
                and e.taken_by is None
                and e.event_id not in skip
            ):
                return e
        return None

    def taken_event(self, run_id: str, op_id: str) -> Event | None:
        for e in self.sent:
            if e.run_id == run_id and e.taken_by == op_id:
                return e
        return None

    def events(self, run_id: str) -> list[Event]:
        return [e for e in self.sent if e.run_id == run_id]

    def abandon(self, parent: Lease, child_ids: Sequence[str], error: bytes, reason: str) -> None:
        owner = self.runs.get(parent.run_id)
        if owner is None or owner.generation != parent.generation:
            return
        for child_id in child_ids:
            child = self.runs.get(child_id)
            if child is not None and child.status in ACTIVE:
                self._set(child_id, status=FAILED, error=error, reason=reason)

    def block_damaged(self, rowid: int, reason: str) -> bool:
        for record in self.runs.values():
            if record.rowid == rowid and record.status not in FINISHED:
                self._set(record.run_id, status=BLOCKED, reason=reason)
                return True
        return False

    def purge(self, before: float, *, limit: int = 500) -> list[str]:
        ended = sorted(
            (r for r in self.runs.values() if r.parent is None and r.status in PURGEABLE),
            key=lambda r: r.updated_at,
        )
        ids = [r.run_id for r in ended if r.updated_at < before][:limit]
        for run_id in ids:
            for tree_id in [k for k in self.runs if k == run_id or k.startswith(run_id + "/")]:
                del self.runs[tree_id]
                for key in [k for k in self.operations if k[0] == tree_id]:
                    del self.operations[key]
                self.sent = [e for e in self.sent if e.run_id != tree_id]
        return ids

    def list_runs(
        self,
        *,
        statuses: Iterable[str] | None = None,
        parent: str | None = None,
        top_only: bool = False,
        limit: int | None = None,
    ) -> list[RunSummary]:
        wanted = None if statuses is None else set(statuses)
        out = [
            _summary(r)
            for r in self.runs.values()
            if (wanted is None or r.status in wanted)
            and (parent is None or r.parent == parent)
            and not (top_only and r.parent is not None)
        ]
        out.sort(key=lambda r: (r.created_at, r.rowid), reverse=True)
        return out[:limit] if limit is not None else out

    def _runnable(self, now: float) -> list[RunRecord]:
        return [
            r
            for r in self.runs.values()
            if _on_its_own(r)
            and (
                r.status in (PENDING, RUNNING)
                or (r.status == WAITING and r.wake_at is not None and r.wake_at <= now)
            )
        ]

    def runnable_functions(self, now: float) -> set[str]:
        return {r.function for r in self._runnable(now)}

    def runnable(
        self,
        now: float,
        functions: Sequence[str],
        *,
        after: tuple[float, int] = (-1.0, -1),
        limit: int = 100,
        queued: bool = False,
    ) -> list[RunSummary]:
        wanted = set(functions)
        out = [
            _summary(r)
            for r in self._runnable(now)
            if r.function in wanted
            and (queued or r.queue is None)
            and (r.created_at, r.rowid) > after
        ]
        out.sort(key=lambda r: (r.created_at, r.rowid))
        return out[:limit]

    def next_wake(self, functions: Sequence[str]) -> float | None:
        wanted = set(functions)
        wakes = [
            r.wake_at
            for r in self.runs.values()
            if _on_its_own(r)
            and r.status == WAITING
            and r.wake_at is not None
            and r.function in wanted
        ]
        return min(wakes, default=None)

    # -- queues (as queueing.py does it in SQL)

    def create_run(self, record: RunRecord, queue: Queue | None = None) -> str | None:
        if record.run_id in self.runs:
            return record.run_id
        if record.dedup_key is not None:
            holder = self.dedup_holder(record.dedup_key)
            if holder is not None:
                return holder
        if queue is not None:
            self.queues[queue.name] = queue
        self.create(record)
        return None

    def dedup_holder(self, dedup_key: str) -> str | None:
        for r in self.runs.values():
            if r.dedup_key == dedup_key and r.status in (*ACTIVE, BLOCKED):
                return r.run_id
        return None

    def runnable_queues(self, now: float, functions: Sequence[str]) -> set[str]:
        wanted = set(functions)
        return {
            r.queue for r in self._runnable(now) if r.queue is not None and r.function in wanted
        }

    def claim_queued(
        self, queue: str, now: float, functions: Sequence[str], owner: str, limit: int
    ) -> QueueClaim:
        limits = self.queues.get(queue)
        budget, held_back = limit, None
        if limits is not None and limits.concurrency is not None:
            running = sum(
                1
                for r in self.runs.values()
                if r.queue == queue and r.status == RUNNING and self.ownership.held(r.run_id)
            )
            if limits.concurrency - running < budget:
                budget, held_back = limits.concurrency - running, now
        clock = time.time()
        starts = self.starts.setdefault(queue, [])
        if limits is not None and limits.rate is not None:
            n, period = limits.rate
            starts[:] = [t for t in starts if t > clock - period]
            if n - len(starts) < budget:
                budget = n - len(starts)
                held_back = (min(starts) if starts else clock) + period
        if budget <= 0:
            return QueueClaim(retry_at=held_back)
        wanted = set(functions)
        candidates = sorted(
            (r for r in self._runnable(now) if r.queue == queue and r.function in wanted),
            key=lambda r: (-r.priority, r.created_at, r.rowid),
        )
        taken: list[tuple[str, str]] = []
        for r in candidates:
            if len(taken) >= budget:
                break
            if not self.ownership.acquire(r.run_id):
                continue
            self._set(
                r.run_id, status=RUNNING, generation=r.generation + 1, owner=owner, wake_at=None
            )
            taken.append((r.run_id, r.function))
            if limits is not None and limits.rate is not None:
                starts.append(clock)
        return QueueClaim(tuple(taken), (), held_back if len(taken) >= budget else None)

    # -- schedules (Schedule is frozen: handed out as it is)

    def upsert_schedule(self, schedule: Schedule) -> bool:
        if schedule.schedule_id in self.kept_schedules:
            return False
        self.kept_schedules[schedule.schedule_id] = schedule
        return True

    def schedules(self) -> list[Schedule]:
        return [self.kept_schedules[k] for k in sorted(self.kept_schedules)]

    def get_schedule(self, schedule_id: str) -> Schedule | None:
        return self.kept_schedules.get(schedule_id)

    def delete_schedule(self, schedule_id: str) -> bool:
        return self.kept_schedules.pop(schedule_id, None) is not None

    def due_schedules(self, now: float) -> list[Schedule]:
        due = [s for s in self.kept_schedules.values() if s.next_at <= now]
        return sorted(due, key=lambda s: (s.next_at, s.schedule_id))

    def next_schedule(self, after: float) -> float | None:
        return min(
            (s.next_at for s in self.kept_schedules.values() if s.next_at > after), default=None
        )

    def fire_schedule(
        self, schedule: Schedule, fired_at: float, next_at: float, run: RunRecord
    ) -> bool:
        kept = self.kept_schedules.get(schedule.schedule_id)
        if kept is None or kept.last_fired != schedule.last_fired:
            return False
        self.kept_schedules[schedule.schedule_id] = dataclasses.replace(
            kept, last_fired=fired_at, next_at=next_at
        )
        self.create(run)
        return True
