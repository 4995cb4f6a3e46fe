"""`sqlite:///path.db`: the embedded store (stdlib sqlite3).

- WAL journal, `synchronous=FULL` unless the URL says otherwise
  (`?synchronous=NORMAL` trades the last commits before a power loss for
  speed; a killed process loses nothing either way). The WAL is truncated
  after checkpoints beyond 64 MiB, so a burst does not keep its space.
- Every write is one statement, atomic: a checkpoint, its sequence number,
  its line and the reset of the attempt count are committed together or not
  at all, and only while the writer's lease generation is the row's
  (base.py). Writes awaited by concurrent runs are group-committed: those
  that queue up while a commit is under way share the next transaction (and
  its fsync), and each caller goes on only once it is committed.
- One connection per store object, used only by the store's own thread:
  async callers hand work to it (`io`, `commit`), so a commit (an fsync)
  never stalls the event loop.
- Every sqlite3 error becomes a `StoreUnavailable` that says what happened
  (disk full, read-only, locked, I/O) and what to do.
- Rows are read defensively: text that is not UTF-8, a counter that is not
  a number, a status nobody wrote make the record `damaged` (base.damage),
  never an exception, so one bad row affects only itself.
- `readonly=True` (`resumable runs list|show`): the file is opened
  read-only, never created, never migrated, and takes no lock, so it works
  while another process writes, and on a read-only mount.
- The schema is versioned in `resumable_meta` (migrations.py).
- Ownership: OFD locks on the database file (ownership.py).
- A database file with several names (hard links) is refused for writing:
  SQLite keeps a database's WAL beside the name it was opened by, so two
  names would be two WALs, and commits would be lost. A symlink is fine
  (SQLite opens the file it points to by its own name).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import functools
import logging
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from ..errors import StoreError, StoreUnavailable
from .base import (
    ACTIVE,
    BLOCKED,
    CANCEL_OP,
    FIELDS,
    FINISHED,
    MAX_TIME,
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
    Store,
    Wake,
    Write,
    ancestors,
    cancel_target_error,
    damage,
    event_target_error,
    schedule_damage,
    storable_text,
)
from .migrations import SCHEMA_VERSION, read_columns, set_up
from .ownership import FileOwnership, LocalOwnership

__all__ = ["SCHEMA_VERSION", "DamagedText", "SQLiteStore"]

T = TypeVar("T")

#: A wake time a run can be woken at (base.damage says the same of a record).
_VALID_WAKE = f"typeof(wake_at) IN ('integer', 'real') AND wake_at BETWEEN 0 AND {MAX_TIME!r}"
#: Top-level runs a worker may drive at time `?`. A waiting run whose wake
#: time is not a time (1e300, text) is never due: it is picked up at once,
#: to be blocked as damaged, instead of keeping a draining worker waiting.
_RUNNABLE = (
    "parent IS NULL AND (status IN ('pending', 'running') OR (status = 'waiting' AND "
    f"(wake_at <= ? OR (wake_at IS NOT NULL AND NOT ({_VALID_WAKE})))))"
)
_WAL_LIMIT = 64 * 1024 * 1024


class DamagedText(str):
    """Text read from a TEXT column that is not valid UTF-8: shown escaped;
    `raw` holds the stored bytes (to find the row again)."""

    raw: bytes

    def __new__(cls, raw: bytes) -> DamagedText:
        text = super().__new__(cls, raw.decode("utf-8", "backslashreplace"))
        text.raw = raw
        return text


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return DamagedText(data)


def _on_store_thread(method: Callable[..., T]) -> Callable[..., T]:
    """Run the method on the store's thread (directly when already there),
    its sqlite3 errors as StoreUnavailable."""

    @functools.wraps(method)
    def wrapper(self: SQLiteStore, *args: Any, **kwargs: Any) -> T:
        if threading.get_ident() == self._thread_id:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as e:
                raise self.unavailable(e) from None
        return self._executor.submit(wrapper, self, *args, **kwargs).result()

    return wrapper


class SQLiteStore(Store):
    def __init__(
        self,
        path: str,
        *,
        url: str = "",
        synchronous: str = "FULL",
        timeout: float = 30.0,
        readonly: bool = False,
    ) -> None:
        self.path = path
        self.url = url or f"sqlite:///{path}"
        self.synchronous = synchronous
        self.timeout = timeout
        self.readonly = readonly
        self.in_memory = path == ":memory:"
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="resumable-sqlite"
        )
        self._thread_id = self._executor.submit(threading.get_ident).result()
        self._conn: sqlite3.Connection | None = None
        #: The runs table's columns (an older schema, read-only, has fewer).
        self._columns: frozenset[str] = frozenset(FIELDS)
        self._has_waits = True
        self._has_schedules = True
        #: Writes waiting for the next group commit (see _flush).
        self._queue: list[Any] = []
        self._queue_lock = threading.Lock()
        self._flushing = False
        try:
            self._executor.submit(self._open).result()
        except BaseException:
            self._executor.shutdown(wait=True)  # a refused store leaves no thread behind
            raise
        self.ownership = LocalOwnership()
        try:
            if not self.in_memory:
                self.ownership = FileOwnership(path)
        except OSError as e:
            self.close()
            raise StoreError(f"cannot open the store {self.url} ({self.path}): {e}") from None

    # -- setup -----------------------------------------------------------------------

    def _open(self) -> None:
        """Connect, and create or migrate the schema (on the store's thread)."""
        if self.readonly:
            conn = self._connect_readonly()
        else:
            conn = self._connect()
        conn.text_factory = _text
        try:
            if not self.readonly and not self.in_memory:
                _refuse_other_names(self.path)
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            set_up(conn, self.path, readonly=self.readonly)
            self._columns = read_columns(conn)
            self._has_waits = _has_table(conn, "events")
            self._has_schedules = _has_table(conn, "schedules")
        except sqlite3.DatabaseError as e:
            conn.close()
            if isinstance(e, sqlite3.OperationalError) and not _is_format_error(e):
                raise self.unavailable(e) from None
            raise StoreError(f"{self.path} is not a resumable store: {e}") from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _connect(self) -> sqlite3.Connection:
        try:
            if not self.in_memory:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
            return sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the store {self.url} ({self.path}): {e}") from None

    def _connect_readonly(self) -> sqlite3.Connection:
        if not os.path.exists(self.path):
            raise StoreError(
                f"there is no store at {self.path} ({self.url}): check the path, or the "
                "working directory a relative sqlite:/// path is resolved against"
            )
        uri = "file:" + urllib.parse.quote(self.path)
        error: sqlite3.Error | None = None
        # A read-only mount cannot hold the -shm file WAL readers share:
        # then the file is read as immutable (no other process writes it).
        for options in ("?mode=ro", "?mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(
                    uri + options, uri=True, timeout=self.timeout, isolation_level=None
                )
                conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
                if "immutable" in options and _size(self.path + "-wal"):
                    logging.getLogger("resumable").warning(
                        "resumable: %s: its write-ahead log (%s-wal) cannot be read without "
                        "a -shm file, which this read-only folder cannot hold: the runs shown "
                        "are as of the last checkpoint of the log, and may be out of date",
                        self.path,
                        self.path,
                    )
                return conn
            except sqlite3.Error as e:
                error = e
        raise StoreError(f"cannot read the store {self.url} ({self.path}): {error}")

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store {self.url} is closed")
        return self._conn

    def unavailable(self, e: sqlite3.Error) -> StoreUnavailable:
        """A sqlite3 error as a StoreUnavailable saying what to do."""
        name = getattr(e, "sqlite_errorname", "") or ""
        where = f"the store {self.path}"
        if name.startswith("SQLITE_FULL") or "disk is full" in str(e):
            return StoreUnavailable(
                f"{where}: the disk is full, or the database reached its size limit ({e}): "
                "free space; runs go on from their last checkpoint when writes succeed again"
            )
        if name.startswith("SQLITE_READONLY") or "readonly" in str(e):
            return StoreUnavailable(
                f"{where} cannot be written ({e}): the file, its folder or its mount is "
                "read-only or not writable by this user; make it writable",
                permanent=True,
            )
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(e):
            return StoreUnavailable(
                f"{where} stayed locked by another connection for more than "
                f"{self.timeout:g} s ({e}); raise ?timeout= in the store URL if this recurs"
            )
        return StoreUnavailable(f"{where} failed: {e} ({name or type(e).__name__})")

    # -- reads -----------------------------------------------------------------------

    def _select(self, fields: Sequence[str]) -> str:
        """The select list of `fields`, defaults for columns an older schema lacks."""
        out = ["rowid"]
        for name in fields:
            if name in self._columns:
                out.append(name)
            else:
                out.append(f"{'0' if name == 'generation' else repr('')} AS {name}")
        return ", ".join(out)

    @_on_store_thread
    def get(self, run_id: str) -> RunRecord | None:
        row = self.conn.execute(
            f"SELECT {self._select(FIELDS)} FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        return None if row is None else _record(row)

    @_on_store_thread
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
        return [_summary(row) for row in self.conn.execute(sql, values)]

    @_on_store_thread
    def runnable_functions(self, now: float) -> set[str]:
        sql = f"SELECT DISTINCT function FROM runs WHERE {_RUNNABLE}"
        return {row[0] for row in self.conn.execute(sql, (now,))}

    @_on_store_thread
    def runnable(
        self,
        now: float,
        functions: Sequence[str],
        *,
        after: tuple[float, int] = (-1.0, -1),
        limit: int = 100,
    ) -> list[RunSummary]:
        if not functions:
            return []
        match, values = _function_match(functions)
        sql = (
            f"SELECT {self._select(SUMMARY_FIELDS)} FROM runs WHERE {_RUNNABLE} AND ({match}) "
            "AND (created_at, rowid) > (?, ?) ORDER BY created_at, rowid LIMIT ?"
        )
        rows = self.conn.execute(sql, (now, *values, *after, limit))
        return [_summary(row) for row in rows]

    @_on_store_thread
    def next_wake(self, functions: Sequence[str]) -> float | None:
        if not functions:
            return None
        match, values = _function_match(functions)
        sql = (
            "SELECT MIN(wake_at) FROM runs WHERE parent IS NULL AND status = 'waiting' "
            f"AND {_VALID_WAKE} AND ({match})"
        )
        found = self.conn.execute(sql, values).fetchone()[0]
        return found if type(found) in (int, float) else None

    # -- writes ----------------------------------------------------------------------

    @_on_store_thread
    def create(self, record: RunRecord) -> bool:
        return self._insert(record)

    def _insert(self, record: RunRecord) -> bool:
        now = time.time()
        values = [getattr(record, f) for f in FIELDS]
        values[FIELDS.index("created_at")] = now
        values[FIELDS.index("updated_at")] = now
        cursor = self.conn.execute(
            f"INSERT OR IGNORE INTO runs ({', '.join(FIELDS)}) VALUES ({_marks(values)})", values
        )
        return cursor.rowcount == 1

    @_on_store_thread
    def claim(self, run_id: str, owner: str, fingerprint: str) -> Lease | None:
        return self._claim(Claim(run_id, owner, fingerprint))

    def _claim(self, claim: Claim) -> Lease | None:
        run_id = claim.run_id
        rows = self.conn.execute(
            "UPDATE runs SET status = 'running', generation = generation + 1, owner = ?, "
            "fingerprint = ?, wake_at = NULL, updated_at = ? "
            f"WHERE run_id = ? AND status IN ({_marks(ACTIVE)}) RETURNING generation",
            (storable_text(claim.owner), claim.fingerprint, time.time(), run_id, *ACTIVE),
        ).fetchall()
        return Lease(run_id, rows[0][0]) if rows else None

    @_on_store_thread
    def apply(self, write: Write) -> bool:
        return self._apply(write)

    def _apply(self, write: Write) -> bool:
        if not write.compound:
            return self._update(write)
        conn = self.conn
        conn.execute("SAVEPOINT write")  # a transaction of its own when not in one
        try:
            changed = self._update(write)
            if changed:
                self._record_parts(write)
        except BaseException:
            conn.execute("ROLLBACK TO write")
            conn.execute("RELEASE write")
            raise
        conn.execute("RELEASE write")
        return changed

    def _update(self, write: Write) -> bool:
        """The fenced UPDATE of the run's row."""
        sets = "".join(f"{name} = ?, " for name, _ in write.sets)
        values: list[Any] = [v for _, v in write.sets]
        values += [time.time(), write.run_id, *write.statuses]
        sql = (
            f"UPDATE runs SET {sets}updated_at = ? "
            f"WHERE run_id = ? AND status IN ({_marks(write.statuses)})"
        )
        if write.generation is not None:
            sql += " AND generation = ?"
            values.append(write.generation)
        return self.conn.execute(sql, values).rowcount == 1

    def _record_parts(self, write: Write) -> None:
        """The operations, event takes and wake rule of a write whose row changed."""
        conn, run_id = self.conn, write.run_id
        for op in write.operations:
            conn.execute(
                "INSERT OR REPLACE INTO operations (run_id, op_id, wake_at, outcome) "
                "VALUES (?, ?, ?, ?)",
                (op.run_id, op.op_id, op.wake_at, op.outcome),
            )
        for event_id, op_id in write.takes:
            conn.execute(
                "UPDATE events SET taken_by = ? WHERE event_id = ? AND run_id = ? "
                "AND taken_by IS NULL",
                (op_id, event_id, run_id),
            )
        if write.wake is not None:
            self._wake_rule(run_id, write.wake)

    def _wake_rule(self, run_id: str, wake: Wake) -> None:
        now = wake.now
        if wake.event is not None:
            conn = self.conn
            conn.execute(
                "UPDATE runs SET wake_at = ? WHERE run_id = ? AND status = 'waiting' AND EXISTS "
                "(SELECT 1 FROM events WHERE run_id = ? AND name = ? AND taken_by IS NULL "
                f"AND event_id NOT IN ({_marks(wake.skip)}))",
                (now, run_id, run_id, wake.event, *wake.skip),
            )
        awaited = wake.awaited
        if awaited:
            # Due when the first of them is: its wake time, or now if it is no
            # longer waiting (MIN ignores the NULL of a wait for an event);
            # and at its own wake time (a deadline) at the latest.
            first = (
                "(SELECT MIN(CASE WHEN c.status = 'waiting' THEN c.wake_at ELSE ? END) "
                f"FROM runs AS c WHERE c.run_id IN ({_marks(awaited)}))"
            )
            self.conn.execute(
                f"UPDATE runs SET wake_at = CASE WHEN wake_at IS NULL THEN {first} "
                f"ELSE MIN(wake_at, COALESCE({first}, wake_at)) END "
                "WHERE run_id = ? AND status = 'waiting'",
                (now, *awaited, now, *awaited, run_id),
            )

    # -- durable waits ---------------------------------------------------------------

    @_on_store_thread
    def operation(self, run_id: str, op_id: str) -> Operation | None:
        row = self.conn.execute(
            "SELECT wake_at, outcome FROM operations WHERE run_id = ? AND op_id = ?",
            (run_id, op_id),
        ).fetchone()
        if row is None:
            return None
        wake_at, outcome = row
        if wake_at is not None and type(wake_at) not in (int, float):
            wake_at = 0.0  # damaged: due now, and decided again
        return Operation(run_id, op_id, wake_at, outcome if type(outcome) is str else None)

    @_on_store_thread
    def send_event(
        self, run_id: str, name: str, payload: bytes, dedup_key: str | None, now: float
    ) -> bool:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            error = event_target_error(run_id, None if row is None else row[0], self.url)
            if error is not None:
                raise error
            cursor = conn.execute(
                "INSERT OR IGNORE INTO events (run_id, name, payload, dedup_key, sent_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (run_id, storable_text(name), payload, dedup_key, now),
            )
            new = cursor.rowcount == 1
            if new:
                # Due at once (wake time 0), whatever the clocks of the sender
                # and of the workers say.
                woken = [run_id, *ancestors(run_id)]
                conn.execute(
                    f"UPDATE runs SET wake_at = 0 WHERE run_id IN ({_marks(woken)}) "
                    "AND status = 'waiting'",
                    woken,
                )
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return new

    @_on_store_thread
    def request_cancel(self, run_id: str) -> bool:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT status, parent FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            error = cancel_target_error(
                run_id, None if row is None else row[0], None if row is None else row[1], self.url
            )
            if error is not None:
                raise error
            # The run and the runs below it that have not ended: child ids
            # are `<run>/...`, the range [<run>/, <run>0) ("0" follows "/").
            live = (*ACTIVE, BLOCKED)
            tree = f"(run_id = ? OR (run_id >= ? AND run_id < ?)) AND status IN ({_marks(live)})"
            where = (run_id, run_id + "/", run_id + "0", *live)
            changed = conn.execute(
                "INSERT OR IGNORE INTO operations (run_id, op_id, wake_at, outcome) "
                f"SELECT run_id, ?, NULL, ? FROM runs WHERE {tree}",
                (CANCEL_OP, REQUESTED, *where),
            ).rowcount
            conn.execute(
                "UPDATE runs SET wake_at = 0, status = CASE WHEN status = 'blocked' "
                f"THEN 'pending' ELSE status END WHERE {tree} "
                "AND status IN ('waiting', 'blocked')",
                where,
            )
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return changed > 0

    @_on_store_thread
    def cancel_requests(self, run_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(run_ids), 500):
            chunk = run_ids[i : i + 500]
            found.update(
                r[0]
                for r in self.conn.execute(
                    f"SELECT run_id FROM operations WHERE op_id = ? AND outcome = ? "
                    f"AND run_id IN ({_marks(chunk)})",
                    (CANCEL_OP, REQUESTED, *chunk),
                )
            )
        return found

    _EVENT = "event_id, run_id, name, payload, dedup_key, sent_at, taken_by"

    @_on_store_thread
    def next_event(self, run_id: str, name: str, skip: Sequence[int] = ()) -> Event | None:
        row = self.conn.execute(
            f"SELECT {self._EVENT} FROM events WHERE run_id = ? AND name = ? "
            f"AND taken_by IS NULL AND event_id NOT IN ({_marks(skip)}) "
            "ORDER BY event_id LIMIT 1",
            (run_id, name, *skip),
        ).fetchone()
        return None if row is None else _event(row)

    @_on_store_thread
    def taken_event(self, run_id: str, op_id: str) -> Event | None:
        row = self.conn.execute(
            f"SELECT {self._EVENT} FROM events WHERE run_id = ? AND taken_by = ?",
            (run_id, op_id),
        ).fetchone()
        return None if row is None else _event(row)

    @_on_store_thread
    def events(self, run_id: str) -> list[Event]:
        if not self._has_waits:
            return []  # an older schema, read-only
        rows = self.conn.execute(
            f"SELECT {self._EVENT} FROM events WHERE run_id = ? ORDER BY event_id", (run_id,)
        )
        return [_event(row) for row in rows]

    @_on_store_thread
    def abandon(self, parent: Lease, child_ids: Sequence[str], error: bytes, reason: str) -> None:
        if not child_ids:
            return
        self.conn.execute(
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

    @_on_store_thread
    def block_damaged(self, rowid: int, reason: str) -> bool:
        cursor = self.conn.execute(
            "UPDATE runs SET status = ?, reason = ?, updated_at = ? WHERE rowid = ? "
            f"AND (typeof(status) != 'text' OR status NOT IN ({_marks(FINISHED)}))",
            (BLOCKED, storable_text(reason)[:500], time.time(), rowid, *FINISHED),
        )
        return cursor.rowcount == 1

    # -- schedules -------------------------------------------------------------------

    _SCHEDULE = ", ".join(SCHEDULE_FIELDS)

    @_on_store_thread
    def upsert_schedule(self, schedule: Schedule) -> bool:
        values = [getattr(schedule, f) for f in SCHEDULE_FIELDS]
        cursor = self.conn.execute(
            f"INSERT INTO schedules ({self._SCHEDULE}) VALUES ({_marks(values)}) "
            "ON CONFLICT (schedule_id) DO NOTHING",
            values,
        )
        return cursor.rowcount == 1

    @_on_store_thread
    def schedules(self) -> list[Schedule]:
        if not self._has_schedules:
            return []  # an older schema, read-only
        rows = self.conn.execute(f"SELECT {self._SCHEDULE} FROM schedules ORDER BY schedule_id")
        return [_schedule(row) for row in rows]

    @_on_store_thread
    def get_schedule(self, schedule_id: str) -> Schedule | None:
        if not self._has_schedules:
            return None
        row = self.conn.execute(
            f"SELECT {self._SCHEDULE} FROM schedules WHERE schedule_id = ?", (schedule_id,)
        ).fetchone()
        return None if row is None else _schedule(row)

    @_on_store_thread
    def delete_schedule(self, schedule_id: str) -> bool:
        cursor = self.conn.execute("DELETE FROM schedules WHERE schedule_id = ?", (schedule_id,))
        return cursor.rowcount == 1

    @_on_store_thread
    def due_schedules(self, now: float) -> list[Schedule]:
        # A next_at that is not a time (text, NULL, 1e300) is never due.
        rows = self.conn.execute(
            f"SELECT {self._SCHEDULE} FROM schedules WHERE next_at <= ? "
            "AND typeof(next_at) IN ('integer', 'real') ORDER BY next_at, schedule_id",
            (now,),
        )
        return [_schedule(row) for row in rows]

    @_on_store_thread
    def next_schedule(self, after: float) -> float | None:
        found = self.conn.execute(
            "SELECT MIN(next_at) FROM schedules WHERE next_at > ? "
            f"AND typeof(next_at) IN ('integer', 'real') AND next_at <= {MAX_TIME!r}",
            (after,),
        ).fetchone()[0]
        return found if type(found) in (int, float) else None

    @_on_store_thread
    def fire_schedule(
        self, schedule: Schedule, fired_at: float, next_at: float, run: RunRecord
    ) -> bool:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            cursor = conn.execute(
                "UPDATE schedules SET last_fired = ?, next_at = ? "
                "WHERE schedule_id = ? AND last_fired IS ?",
                (fired_at, next_at, schedule.schedule_id, schedule.last_fired),
            )
            fired = cursor.rowcount == 1
            if fired:
                self._insert(run)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return fired

    @_on_store_thread
    def probe(self) -> None:
        """A small write, to learn whether the store takes writes again (after
        a full disk, say); truncates the WAL first. Raises StoreUnavailable."""
        conn = self.conn
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute(
            "INSERT OR REPLACE INTO resumable_meta VALUES ('probed_at', ?)", (str(time.time()),)
        )

    # -- ownership, plumbing ---------------------------------------------------------

    def lock(self, run_id: str) -> bool:
        try:
            return super().lock(run_id)
        except OSError as e:  # the file cannot be opened for its locks
            if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise StoreUnavailable(
                    f"the store {self.path} cannot be written ({e.strerror}): the file, its "
                    "folder or its mount is read-only (or immutable) or not writable by this "
                    "user; make it writable",
                    permanent=True,
                ) from None
            raise StoreUnavailable(f"the store {self.path} failed: {e}") from None

    async def io(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        future = self._executor.submit(fn, *args, **kwargs)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        if self._conn is not None:
            self._executor.submit(self._conn.close).result()
            self._conn = None
        self._executor.shutdown(wait=True)
        super().close()  # after the connection: see ownership.py

    # -- group commit ----------------------------------------------------------------
    #
    # Writes awaited by async callers (claims, checkpoints, parks, ends) queue up
    # while the store thread commits; it then applies all that queued in one
    # transaction, so runs driven concurrently share one fsync instead of
    # waiting for one each. Each write still commits whole or not at all,
    # and its caller goes on only after the commit. If the shared
    # transaction fails, each write is tried again alone, so one bad write
    # fails only its own caller.

    async def commit(self, write: Write) -> bool:
        result: bool = await self._grouped(write)
        return result

    async def claim_async(self, run_id: str, owner: str, fingerprint: str) -> Lease | None:
        result: Lease | None = await self._grouped(Claim(run_id, owner, fingerprint))
        return result

    async def _grouped(self, op: Write | Claim) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._queue_lock:
            self._queue.append((loop, future, op))
            start = not self._flushing
            self._flushing = True
        if start:
            self._executor.submit(self._flush)
        return await future

    def _perform(self, op: Write | Claim) -> Any:
        return self._apply(op) if isinstance(op, Write) else self._claim(op)

    def _flush(self) -> None:
        with self._queue_lock:
            batch, self._queue = self._queue, []
            self._flushing = False
        batch = [item for item in batch if not item[1].cancelled()]
        outcomes: list[tuple[Any, BaseException | None]] = []
        if len(batch) > 1:
            with contextlib.suppress(Exception):  # then each alone, below
                outcomes = self._in_one_transaction([item[2] for item in batch])
        if not outcomes:
            outcomes = [self._alone(item[2]) for item in batch]
        for (loop, future, _), (result, error) in zip(batch, outcomes, strict=True):
            with contextlib.suppress(RuntimeError):  # its event loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, future, result, error)

    def _in_one_transaction(
        self, ops: list[Write | Claim]
    ) -> list[tuple[Any, BaseException | None]]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            outcomes: list[tuple[Any, BaseException | None]] = [
                (self._perform(op), None) for op in ops
            ]
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return outcomes

    def _alone(self, op: Write | Claim) -> tuple[Any, BaseException | None]:
        """One queued write in its own transaction (one statement)."""
        try:
            return self._perform(op), None
        except sqlite3.Error as e:
            return None, self.unavailable(e)
        except Exception as e:
            return None, e


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


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
    return " OR ".join(parts) or "0", [*names, *raw]


def _refuse_other_names(path: str) -> None:
    """Refuse a database file with more than one name (hard links): SQLite
    keeps the WAL and shared memory of a database beside the name it was
    opened by, so processes writing it by two names would not see each
    other's commits, and lose them. (A symlink is fine: SQLite resolves it.)"""
    try:
        links = os.stat(path).st_nlink
    except OSError:
        return  # then SQLite's first statement says what is wrong
    if links > 1:
        raise StoreError(
            f"the store {path} is a file with {links} names (hard links): SQLite keeps a "
            "database's WAL beside the name it is opened by, so writers using different names "
            "would lose each other's commits. Remove the other hard links (a symlink may "
            "point to the file instead)"
        )


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _is_format_error(e: sqlite3.Error) -> bool:
    name = getattr(e, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in str(e)


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


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return bool(found)


def _schedule(row: tuple[Any, ...]) -> Schedule:
    values = dict(zip(SCHEDULE_FIELDS, row, strict=True))
    damaged = schedule_damage(values)
    return Schedule(**values, damaged=damaged)


def _summary(row: tuple[Any, ...]) -> RunSummary:
    values = dict(zip(SUMMARY_FIELDS, row[1:], strict=True))
    damaged = damage(values)
    return RunSummary(**values, rowid=row[0], damaged=damaged)
