"""The SQL store: one class, the queries of every SQL engine, dialect hooks apart.

`SQLStore` holds every query the runtime needs (reads, fenced writes,
durable waits, schedules), written once with `?` placeholders. An engine's
subclass (sqlite.py, postgres.py) supplies how a statement runs and what its
dialect spells differently:

    _call(method, ...)   where a store method runs (SQLite: its store thread;
                         PostgreSQL: a pooled connection, one transaction)
    _exec(sql, params)   one statement (PostgreSQL turns `?` into `%s`)
    _transaction()       several statements as one (SQLite: BEGIN IMMEDIATE)
    _savepoint()         a write inside a group commit (SQLite only)
    _lock_runs(where)    lock rows a transaction reads before it writes them
                         (PostgreSQL: FOR UPDATE; SQLite's writer lock does it)
    _ignore(sql)         INSERT OR IGNORE / ON CONFLICT DO NOTHING
    _VALID_WAKE, _UNOWNED, _LEAST, _IS, _IS_NUMBER(col), _NOT_FINISHED
                         fragments: SQLite checks `typeof` (a column may hold
                         any type there), PostgreSQL's columns are typed;
                         `_UNOWNED` keeps runs under a live lease out of the
                         runnable ones (PostgreSQL; SQLite's locks say it).

    class SQLiteStore(SQLStore): _IS = "IS"; ...
    store.apply(checkpoint_write(lease, blob, seq, line, fp))   # shared SQL
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from .base import (
    ACTIVE,
    BLOCKED,
    CANCEL_OP,
    FIELDS,
    FINISHED,
    MAX_TIME,
    PURGEABLE,
    REQUESTED,
    SCHEDULE_FIELDS,
    SUMMARY_FIELDS,
    Claim,
    Event,
    Lease,
    Operation,
    RunRecord,
    RunSummary,
    Schedule,
    Wake,
    Write,
    ancestors,
    cancel_target_error,
    damage,
    event_target_error,
    schedule_damage,
    storable_text,
)
from .grouping import GroupCommit
from .queueing import QueueQueries

__all__ = ["DamagedText", "SQLStore", "engine_call"]

T = TypeVar("T")


class DamagedText(str):
    """Text read from a TEXT column that is not valid UTF-8: shown escaped;
    `raw` holds the stored bytes (to find the row again). (SQLite only:
    PostgreSQL checks the encoding of what it stores.)"""

    raw: bytes

    def __new__(cls, raw: bytes) -> DamagedText:
        text = super().__new__(cls, raw.decode("utf-8", "backslashreplace"))
        text.raw = raw
        return text


def engine_call(method: Callable[..., T]) -> Callable[..., T]:
    """A store method: run through the engine's `_call` (its thread, its
    connection, its error mapping)."""

    @functools.wraps(method)
    def wrapper(self: SQLStore, *args: Any, **kwargs: Any) -> T:
        return self._call(method, self, *args, **kwargs)

    return wrapper


def one_statement(method: Callable[..., T]) -> Callable[..., T]:
    """Mark a store method that runs one statement (a read of one row): it
    needs no transaction of its own (PostgreSQL: no BEGIN and COMMIT round
    trips around it)."""
    method.one_statement = True  # type: ignore[attr-defined]
    return method


class SQLStore(GroupCommit, QueueQueries):
    """The queries shared by the SQL stores (see the module docstring);
    those of queues are in queueing.py."""

    #: A wake time a run can be woken at (base.damage says the same of a record).
    _VALID_WAKE = f"wake_at BETWEEN 0 AND {MAX_TIME!r}"
    #: A condition on a row of `runs`: no live lease of another driver (or "").
    _UNOWNED = ""
    _LEAST = "LEAST"
    _IS = "IS NOT DISTINCT FROM"
    #: The status of a row is not an end status (a damaged one is not either).
    _NOT_FINISHED = f"status NOT IN ({', '.join('?' * len(FINISHED))})"

    #: The runs table's columns (an older SQLite schema, read-only, has fewer).
    _columns: frozenset[str] = frozenset(FIELDS)
    _has_waits = True
    _has_schedules = True

    # -- the engine's hooks ------------------------------------------------------------

    def _call(self, method: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        raise NotImplementedError

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; a DB-API cursor (rowcount, fetchone, iteration)."""
        raise NotImplementedError

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def _savepoint(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def _lock_runs(self, where: str, params: Sequence[Any]) -> None:
        """Lock the rows of `runs` matching `where` until the transaction ends."""

    def _changed(self) -> None:
        """Runs became runnable, or a wake time moved: tell idle workers
        (with the transaction's commit), where the engine can."""

    def _ignore(self, insert: str) -> str:
        """`INTO table (...) VALUES/SELECT ...` as an insert that skips conflicts."""
        return f"INSERT {insert} ON CONFLICT DO NOTHING"

    def _IS_NUMBER(self, column: str) -> str:
        return "1 = 1"

    @property
    def _runnable_sql(self) -> str:
        """Top-level runs a worker may drive at time `?`. A waiting run whose
        wake time is not a time (1e300, text) is never due: it is picked up at
        once, to be blocked as damaged, instead of keeping a draining worker
        waiting."""
        unowned = f" AND {self._UNOWNED}" if self._UNOWNED else ""
        return (
            f"{self._on_their_own} AND (status IN ('pending', 'running') OR (status = 'waiting' AND "
            f"(wake_at <= ? OR (wake_at IS NOT NULL AND NOT ({self._VALID_WAKE})))))" + unowned
        )

    @property
    def _on_their_own(self) -> str:
        """Runs workers take on their own: top-level runs, and dispatched
        child runs (those of a queue: their parent waits for them as a row)."""
        return (
            "(parent IS NULL OR queue IS NOT NULL)"
            if "queue" in self._columns
            else "parent IS NULL"
        )

    # -- reads -------------------------------------------------------------------------

    def _select(self, fields: Sequence[str]) -> str:
        """The select list of `fields`, defaults for columns an older schema lacks."""
        out = ["rowid"]
        for name in fields:
            if name in self._columns:
                out.append(name)
            else:
                out.append(f"{_MISSING.get(name, repr(''))} AS {name}")
        return ", ".join(out)

    @engine_call
    @one_statement
    def get(self, run_id: str) -> RunRecord | None:
        row = self._exec(
            f"SELECT {self._select(FIELDS)} FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        return None if row is None else _record(row)

    @engine_call
    def list_runs(
        self,
        *,
        statuses: Iterable[str] | None = None,
        parent: str | None = None,
        top_only: bool = False,
        limit: int | None = None,
    ) -> list[RunSummary]:
        where: list[str] = []
        values: list[Any] = []
        if statuses is not None:
            wanted = tuple(statuses)
            where.append(f"status IN ({_marks(wanted)})")
            values += wanted
        if parent is not None:
            where.append("parent = ?")
            values.append(parent)
        if top_only:
            where.append("parent IS NULL")
        sql = f"SELECT {self._select(SUMMARY_FIELDS)} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_summary(row) for row in self._exec(sql, values)]

    @engine_call
    def runnable_functions(self, now: float) -> set[str]:
        sql = f"SELECT DISTINCT function FROM runs WHERE {self._runnable_sql}"
        return {row[0] for row in self._exec(sql, (now,))}

    @engine_call
    def runnable(
        self,
        now: float,
        functions: Sequence[str],
        *,
        after: tuple[float, int] = (-1.0, -1),
        limit: int = 100,
        queued: bool = False,
    ) -> list[RunSummary]:
        if not functions:
            return []
        match, values = _function_match(functions)
        # Runs of a queue are claimed through it (claim_queued), within its limits.
        unqueued = " AND queue IS NULL" if "queue" in self._columns and not queued else ""
        sql = (
            f"SELECT {self._select(SUMMARY_FIELDS)} FROM runs WHERE {self._runnable_sql} "
            f"AND ({match}){unqueued} "
            "AND (created_at, rowid) > (?, ?) ORDER BY created_at, rowid LIMIT ?"
        )
        rows = self._exec(sql, (now, *values, *after, limit))
        return [_summary(row) for row in rows]

    @engine_call
    def next_wake(self, functions: Sequence[str]) -> float | None:
        if not functions:
            return None
        match, values = _function_match(functions)
        sql = (
            f"SELECT MIN(wake_at) FROM runs WHERE {self._on_their_own} AND status = 'waiting' "
            f"AND {self._VALID_WAKE} AND ({match})"
        )
        found = self._exec(sql, values).fetchone()[0]
        return found if type(found) in (int, float) else None

    # -- writes ----------------------------------------------------------------------

    @engine_call
    def create(self, record: RunRecord) -> bool:
        return self._insert(record)

    def _insert(self, record: RunRecord) -> bool:
        now = time.time()
        values = [getattr(record, f) for f in FIELDS]
        values[FIELDS.index("created_at")] = now
        values[FIELDS.index("updated_at")] = now
        cursor = self._exec(
            self._ignore(f"INTO runs ({', '.join(FIELDS)}) VALUES ({_marks(values)})"), values
        )
        created = bool(cursor.rowcount == 1)
        if created and (record.parent is None or record.queue is not None):
            self._changed()
        return created

    @engine_call
    def claim(self, run_id: str, owner: str, fingerprint: str) -> Lease | None:
        return self._claim(Claim(run_id, owner, fingerprint))

    def _claim(self, claim: Claim) -> Lease | None:
        run_id = claim.run_id
        rows = self._exec(
            "UPDATE runs SET status = 'running', generation = generation + 1, owner = ?, "
            "fingerprint = ?, wake_at = NULL, updated_at = ? "
            f"WHERE run_id = ? AND status IN ({_marks(ACTIVE)}) RETURNING generation",
            (storable_text(claim.owner), claim.fingerprint, time.time(), run_id, *ACTIVE),
        ).fetchall()
        return Lease(run_id, rows[0][0]) if rows else None

    @engine_call
    def apply(self, write: Write) -> bool:
        return self._apply(write)

    def _apply(self, write: Write) -> bool:
        if not write.compound:
            changed = self._update(write)
        else:
            with self._savepoint():
                if write.wakes is not None:
                    # The parent first (as its wait does): a wait committed
                    # meanwhile sees this end, or is seen waiting here.
                    self._lock_runs("run_id = ?", (write.wakes,))
                # A run's first write stores its row, and applies only if it
                # made it, or its own driver did (see Write.creates): a row
                # made meanwhile is another driver's.
                creates = write.creates
                made = creates is None or self._insert(creates)
                changed = self._update(write, None if made or creates is None else creates.owner)
                if changed:
                    self._record_parts(write)
        if changed and (write.kind in _WAKING or write.wakes is not None):
            self._changed()
        return changed

    def _update(self, write: Write, owner: str | None = None) -> bool:
        """The fenced UPDATE of the run's row (`owner`: only if it names it)."""
        sql, values = self._update_statement(write, owner)
        return self._exec(sql, values).rowcount == 1

    def _update_statement(self, write: Write, owner: str | None = None) -> tuple[str, list[Any]]:
        """`_update`'s statement (made once per shape of write) and values."""
        names = tuple([name for name, _ in write.sets])
        fenced = write.generation is not None
        key = (type(self), names, write.statuses, owner is not None, fenced)
        sql = _UPDATES.get(key)
        if sql is None:
            sets = "".join(f"{name} = ?, " for name in names)
            sql = (
                f"UPDATE runs SET {sets}updated_at = ? "
                f"WHERE run_id = ? AND status IN ({_marks(write.statuses)})"
            )
            if owner is not None:
                sql += " AND owner = ?"
            if fenced:
                sql += " AND generation = ?"
                held = self._lease_held()[0]
                if held:
                    sql += f" AND {held}"
            _UPDATES[key] = sql
        values: list[Any] = [v for _, v in write.sets]
        values += [time.time(), write.run_id, *write.statuses]
        if owner is not None:
            values.append(storable_text(owner))
        if fenced:
            values.append(write.generation)
            values += self._lease_held()[1]
        return sql, values

    def _perform_all(self, ops: Sequence[Write | Claim | RunRecord]) -> list[Any]:
        """Each op's outcome, applied in order in the current transaction
        (group commit). Consecutive writes that are each one UPDATE of the
        same statement (the checkpoints of concurrent runs) go as one
        executemany; if any of those does not apply (its run was taken
        over), raises NotAllApplied, so that the group is rolled back and
        each write is tried alone."""
        outcomes: list[Any] = []
        i, n = 0, len(ops)
        while i < n:
            op = ops[i]
            if not _lone_update(op):
                outcomes.append(self._perform(op))
                i += 1
                continue
            assert isinstance(op, Write)
            sql, values = self._update_statement(op)
            rows = [values]
            i += 1
            while i < n and _lone_update(ops[i]):
                more = self._update_statement(ops[i])  # type: ignore[arg-type]
                if more[0] != sql:
                    break
                rows.append(more[1])
                i += 1
            if len(rows) == 1:
                outcomes.append(self._exec(sql, values).rowcount == 1)
            elif self._exec_many(sql, rows) == len(rows):
                outcomes += [True] * len(rows)
            else:
                raise NotAllApplied(f"{len(rows)} writes, not all applied")
        return outcomes

    def _exec_many(self, sql: str, rows: list[list[Any]]) -> int:
        """Run `sql` once per row of values; the number of rows it changed."""
        raise NotImplementedError

    def _lease_held(self) -> tuple[str, Sequence[Any]]:
        """SQL that holds while this store's process still holds the run's
        lease (none: ownership is not by leases)."""
        return "", ()

    def _record_parts(self, write: Write) -> None:
        """The operations, event takes and wake rule of a write whose row changed."""
        run_id = write.run_id
        for op in write.operations:
            self._exec(
                "INSERT INTO operations (run_id, op_id, wake_at, outcome) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (run_id, op_id) "
                "DO UPDATE SET wake_at = excluded.wake_at, outcome = excluded.outcome",
                (op.run_id, op.op_id, op.wake_at, op.outcome),
            )
            if op.op_id == CANCEL_OP and op.run_id != run_id:
                # A fan-out's loser, told to cancel: due now if it waits as a
                # row (a dispatched child is driven by whoever takes it).
                self._exec(
                    "UPDATE runs SET wake_at = 0 WHERE run_id = ? AND status = 'waiting'",
                    (op.run_id,),
                )
                self._changed()
        for event_id, op_id in write.takes:
            self._exec(
                "UPDATE events SET taken_by = ? WHERE event_id = ? AND run_id = ? "
                "AND taken_by IS NULL",
                (op_id, event_id, run_id),
            )
        if write.wake is not None:
            self._wake_rule(run_id, write.wake)
        if write.wakes is not None:
            # Due at once (wake time 0: whatever the workers' clocks say).
            self._exec(
                "UPDATE runs SET wake_at = 0 WHERE run_id = ? AND status = 'waiting'",
                (write.wakes,),
            )

    def _wake_rule(self, run_id: str, wake: Wake) -> None:
        now = wake.now
        if wake.event is not None:
            self._exec(
                "UPDATE runs SET wake_at = ? WHERE run_id = ? AND status = 'waiting' AND EXISTS "
                "(SELECT 1 FROM events WHERE run_id = ? AND name = ? AND taken_by IS NULL "
                f"AND {_not_in('event_id', wake.skip)})",
                (now, run_id, run_id, wake.event, *wake.skip),
            )
        awaited = wake.awaited
        if awaited:
            # Due when the first of them is: its wake time, or now if it is no
            # longer waiting (MIN ignores the NULL of a wait for an event); a
            # dispatched child (of a queue, driven by whichever worker takes
            # it) once it has ended. And at its own wake time (a deadline) at
            # the latest.
            ended = ", ".join(f"'{s}'" for s in FINISHED)
            first = (
                "(SELECT MIN(CASE WHEN c.queue IS NOT NULL THEN "
                f"(CASE WHEN c.status IN ({ended}) THEN ? END) "
                "WHEN c.status = 'waiting' THEN c.wake_at ELSE ? END) "
                f"FROM runs AS c WHERE c.run_id IN ({_marks(awaited)}))"
            )
            self._exec(
                f"UPDATE runs SET wake_at = CASE WHEN wake_at IS NULL THEN {first} "
                f"ELSE {self._LEAST}(wake_at, COALESCE({first}, wake_at)) END "
                "WHERE run_id = ? AND status = 'waiting'",
                (now, now, *awaited, now, now, *awaited, run_id),
            )

    # -- durable waits -----------------------------------------------------------------

    @engine_call
    @one_statement
    def operation(self, run_id: str, op_id: str) -> Operation | None:
        row = self._exec(
            "SELECT wake_at, outcome FROM operations WHERE run_id = ? AND op_id = ?",
            (run_id, op_id),
        ).fetchone()
        if row is None:
            return None
        wake_at, outcome = row
        if wake_at is not None and type(wake_at) not in (int, float):
            wake_at = 0.0  # damaged: due now, and decided again
        return Operation(run_id, op_id, wake_at, outcome if type(outcome) is str else None)

    @engine_call
    def send_event(
        self, run_id: str, name: str, payload: bytes, dedup_key: str | None, now: float
    ) -> bool:
        woken = [run_id, *ancestors(run_id)]
        with self._transaction():
            # Locked first: a wait committed meanwhile sees this event, or
            # is seen waiting here (the wake rule, _wake_rule).
            self._lock_runs(f"run_id IN ({_marks(woken)})", woken)
            row = self._exec("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is not None and dedup_key is not None:
                # A resend is a resend, also once the run has ended since.
                sent = self._exec(
                    "SELECT 1 FROM events WHERE run_id = ? AND name = ? AND dedup_key = ?",
                    (run_id, storable_text(name), dedup_key),
                ).fetchone()
                if sent is not None:
                    return False
            error = event_target_error(run_id, None if row is None else row[0], self.url)
            if error is not None:
                raise error
            cursor = self._exec(
                self._ignore(
                    "INTO events (run_id, name, payload, dedup_key, sent_at) VALUES (?, ?, ?, ?, ?)"
                ),
                (run_id, storable_text(name), payload, dedup_key, now),
            )
            new = bool(cursor.rowcount == 1)
            if new:
                # Due at once (wake time 0), whatever the clocks of the sender
                # and of the workers say.
                self._exec(
                    f"UPDATE runs SET wake_at = 0 WHERE run_id IN ({_marks(woken)}) "
                    "AND status = 'waiting'",
                    woken,
                )
                self._changed()
        return new

    @engine_call
    def request_cancel(self, run_id: str) -> bool:
        # The run and the runs below it that have not ended: child ids
        # are `<run>/...`, the range [<run>/, <run>0) ("0" follows "/").
        live = (*ACTIVE, BLOCKED)
        tree = f"(run_id = ? OR (run_id >= ? AND run_id < ?)) AND status IN ({_marks(live)})"
        where = (run_id, run_id + "/", run_id + "0", *live)
        with self._transaction():
            # Locked first: a run parking meanwhile is seen waiting here.
            self._lock_runs(tree, where)
            row = self._exec(
                "SELECT status, parent FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            error = cancel_target_error(
                run_id, None if row is None else row[0], None if row is None else row[1], self.url
            )
            if error is not None:
                raise error
            changed: int = self._exec(
                self._ignore(
                    "INTO operations (run_id, op_id, outcome) "
                    f"SELECT run_id, ?, ? FROM runs WHERE {tree}"
                ),
                (CANCEL_OP, REQUESTED, *where),
            ).rowcount
            self._exec(
                "UPDATE runs SET wake_at = 0, status = CASE WHEN status = 'blocked' "
                f"THEN 'pending' ELSE status END WHERE {tree} "
                "AND status IN ('waiting', 'blocked')",
                where,
            )
            self._changed()
        return changed > 0

    @engine_call
    def cancel_requests(self, run_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(run_ids), 500):
            chunk = run_ids[i : i + 500]
            found.update(
                r[0]
                for r in self._exec(
                    f"SELECT run_id FROM operations WHERE op_id = ? AND outcome = ? "
                    f"AND run_id IN ({_marks(chunk)})",
                    (CANCEL_OP, REQUESTED, *chunk),
                )
            )
        return found

    _EVENT = "event_id, run_id, name, payload, dedup_key, sent_at, taken_by"

    @engine_call
    def next_event(self, run_id: str, name: str, skip: Sequence[int] = ()) -> Event | None:
        row = self._exec(
            f"SELECT {self._EVENT} FROM events WHERE run_id = ? AND name = ? "
            f"AND taken_by IS NULL AND {_not_in('event_id', skip)} "
            "ORDER BY event_id LIMIT 1",
            (run_id, name, *skip),
        ).fetchone()
        return None if row is None else _event(row)

    @engine_call
    def taken_event(self, run_id: str, op_id: str) -> Event | None:
        row = self._exec(
            f"SELECT {self._EVENT} FROM events WHERE run_id = ? AND taken_by = ?",
            (run_id, op_id),
        ).fetchone()
        return None if row is None else _event(row)

    @engine_call
    def events(self, run_id: str) -> list[Event]:
        if not self._has_waits:
            return []  # an older schema, read-only
        rows = self._exec(
            f"SELECT {self._EVENT} FROM events WHERE run_id = ? ORDER BY event_id", (run_id,)
        )
        return [_event(row) for row in rows]

    @engine_call
    def abandon(self, parent: Lease, child_ids: Sequence[str], error: bytes, reason: str) -> None:
        if not child_ids:
            return
        self._exec(
            "UPDATE runs SET status = 'failed', error = ?, reason = ?, updated_at = ? "
            f"WHERE run_id IN ({_marks(child_ids)}) AND status IN ({_marks(ACTIVE)}) "
            "AND EXISTS (SELECT 1 FROM runs AS p WHERE p.run_id = ? AND p.generation = ?)",
            (
                error,
                storable_text(reason),
                time.time(),
                *child_ids,
                *ACTIVE,
                parent.run_id,
                parent.generation,
            ),
        )

    @engine_call
    def block_damaged(self, rowid: int, reason: str) -> bool:
        cursor = self._exec(
            "UPDATE runs SET status = ?, reason = ?, updated_at = ? WHERE rowid = ? "
            f"AND {self._NOT_FINISHED}",
            (BLOCKED, storable_text(reason)[:500], time.time(), rowid, *FINISHED),
        )
        return cursor.rowcount == 1

    @engine_call
    def purge(self, before: float, *, limit: int = 500) -> list[str]:
        with self._transaction():
            ids = [
                row[0]
                for row in self._exec(
                    f"SELECT run_id FROM runs WHERE parent IS NULL AND status IN "
                    f"({_marks(PURGEABLE)}) AND updated_at < ? ORDER BY updated_at LIMIT ?",
                    (*PURGEABLE, before, limit),
                )
            ]
            for run_id in ids:
                # The run and its children: `<run>/...` is [<run>/, <run>0).
                tree = "(run_id = ? OR (run_id >= ? AND run_id < ?))"
                values = (run_id, run_id + "/", run_id + "0")
                for table in ("operations", "events", "runs"):
                    if table != "runs" and not self._has_waits:
                        continue
                    self._exec(f"DELETE FROM {table} WHERE {tree}", values)
        return ids

    # -- schedules ---------------------------------------------------------------------

    _SCHEDULE = ", ".join(SCHEDULE_FIELDS)

    @engine_call
    def upsert_schedule(self, schedule: Schedule) -> bool:
        values = [getattr(schedule, f) for f in SCHEDULE_FIELDS]
        cursor = self._exec(
            f"INSERT INTO schedules ({self._SCHEDULE}) VALUES ({_marks(values)}) "
            "ON CONFLICT (schedule_id) DO NOTHING",
            values,
        )
        return cursor.rowcount == 1

    @engine_call
    def schedules(self) -> list[Schedule]:
        if not self._has_schedules:
            return []  # an older schema, read-only
        rows = self._exec(f"SELECT {self._SCHEDULE} FROM schedules ORDER BY schedule_id")
        return [_schedule(row) for row in rows]

    @engine_call
    def get_schedule(self, schedule_id: str) -> Schedule | None:
        if not self._has_schedules:
            return None
        row = self._exec(
            f"SELECT {self._SCHEDULE} FROM schedules WHERE schedule_id = ?", (schedule_id,)
        ).fetchone()
        return None if row is None else _schedule(row)

    @engine_call
    def delete_schedule(self, schedule_id: str) -> bool:
        cursor = self._exec("DELETE FROM schedules WHERE schedule_id = ?", (schedule_id,))
        return cursor.rowcount == 1

    @engine_call
    def due_schedules(self, now: float) -> list[Schedule]:
        # A next_at that is not a time (text, NULL, 1e300) is never due.
        rows = self._exec(
            f"SELECT {self._SCHEDULE} FROM schedules WHERE next_at <= ? "
            f"AND {self._IS_NUMBER('next_at')} ORDER BY next_at, schedule_id",
            (now,),
        )
        return [_schedule(row) for row in rows]

    @engine_call
    def next_schedule(self, after: float) -> float | None:
        found = self._exec(
            "SELECT MIN(next_at) FROM schedules WHERE next_at > ? "
            f"AND {self._IS_NUMBER('next_at')} AND next_at <= {MAX_TIME!r}",
            (after,),
        ).fetchone()[0]
        return found if type(found) in (int, float) else None

    @engine_call
    def fire_schedule(
        self, schedule: Schedule, fired_at: float, next_at: float, run: RunRecord
    ) -> bool:
        with self._transaction():
            cursor = self._exec(
                "UPDATE schedules SET last_fired = ?, next_at = ? "
                f"WHERE schedule_id = ? AND last_fired {self._IS} ?",
                (fired_at, next_at, schedule.schedule_id, schedule.last_fired),
            )
            fired = bool(cursor.rowcount == 1)
            if fired:
                self._insert(run)
        return fired


#: Writes after which a run may be due at another time: idle workers look.
_WAKING = ("park", "wait", "requeue")
#: `_update`'s statements, by store class and shape of write.
_UPDATES: dict[tuple[Any, ...], str] = {}


class NotAllApplied(Exception):
    """Internal: a group of writes sent at once did not all apply."""


def _lone_update(op: Any) -> bool:
    """Is `op` a write that is one UPDATE of its run's row, and nothing else?"""
    return isinstance(op, Write) and not op.compound and op.kind not in _WAKING


#: What a column an older schema lacks reads as.
_MISSING = {"generation": "0", "priority": "0", "queue": "NULL", "dedup_key": "NULL"}


def _not_in(column: str, values: Sequence[Any]) -> str:
    """`column NOT IN (...)`, for an empty list too (PostgreSQL has no `IN ()`)."""
    return f"{column} NOT IN ({_marks(values)})" if values else "1 = 1"


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _function_match(functions: Sequence[str]) -> tuple[str, list[Any]]:
    """SQL matching `function` against names; damaged names by their bytes."""
    names = [f for f in functions if type(f) is str]
    raw = [f.raw for f in functions if isinstance(f, DamagedText)]
    parts = []
    if names:
        parts.append(f"function IN ({_marks(names)})")
    if raw:
        parts.append(f"CAST(function AS BLOB) IN ({_marks(raw)})")
    return " OR ".join(parts) or "1 = 0", [*names, *raw]


def _record(row: tuple[Any, ...]) -> RunRecord:
    values = dict(zip(FIELDS, row[1:], strict=True))
    damaged = damage(values)
    return RunRecord(**values, rowid=row[0], damaged=damaged)


def _event(row: tuple[Any, ...]) -> Event:
    event_id, run_id, name, payload, dedup_key, sent_at, taken_by = row
    return Event(
        event_id,
        run_id,
        name,
        payload if type(payload) is bytes else b"",
        dedup_key,
        sent_at if type(sent_at) in (int, float) else 0.0,
        taken_by,
    )


def _schedule(row: tuple[Any, ...]) -> Schedule:
    values = dict(zip(SCHEDULE_FIELDS, row, strict=True))
    damaged = schedule_damage(values)
    return Schedule(**values, damaged=damaged)


def _summary(row: tuple[Any, ...]) -> RunSummary:
    values = dict(zip(SUMMARY_FIELDS, row[1:], strict=True))
    damaged = damage(values)
    return RunSummary(**values, rowid=row[0], damaged=damaged)
