"""`sqlite:///path.db`: the embedded store (stdlib sqlite3).

- WAL journal, `synchronous=FULL` unless the URL says otherwise
  (`?synchronous=NORMAL` trades the last commits before a power loss for
  speed; a killed process loses nothing either way).
- Every write is one atomic transaction: a checkpoint, its sequence number,
  its line and the reset of the step's attempt count are committed together
  or not at all. Writes awaited by concurrent runs are group-committed: those
  that queue up while a commit is under way share the next transaction (and
  its fsync), and each caller goes on only once it is committed.
- One connection per store object, used only by the store's own thread:
  async callers hand work to it (`io`), so a commit (an fsync) never stalls
  the event loop.
- The schema is created on first use and versioned in `resumable_meta`; a
  database written by a newer resumable is refused with a clear message.
- Ownership: OS record locks in `<database>.locks` (locks.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..errors import StoreError
from .base import FIELDS, PENDING, RUNNING, WAITING, RunRecord, Store
from .locks import lock_file

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

#: Bump with a migration in `_migrate` when the tables change.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resumable_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    function    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    args        BLOB NOT NULL,
    status      TEXT NOT NULL,
    checkpoint  BLOB,
    seq         INTEGER NOT NULL DEFAULT 0,
    line        INTEGER NOT NULL DEFAULT 0,
    source      TEXT NOT NULL DEFAULT '',
    attempt     INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    result      BLOB,
    error       BLOB,
    reason      TEXT,
    parent      TEXT,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    wake_at     REAL,
    owner       TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, created_at) WHERE parent IS NULL;
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent) WHERE parent IS NOT NULL;
"""

_COLUMNS = ", ".join(FIELDS)
_FIELD_SET = frozenset(FIELDS)
T = TypeVar("T")


def _on_store_thread(method: Callable[..., T]) -> Callable[..., T]:
    """Run the method on the store's thread (directly when already there)."""

    @functools.wraps(method)
    def wrapper(self: SQLiteStore, *args: Any, **kwargs: Any) -> T:
        if threading.get_ident() == self._thread_id:
            return method(self, *args, **kwargs)
        return self._executor.submit(method, self, *args, **kwargs).result()

    return wrapper


class SQLiteStore(Store):
    def __init__(
        self, path: str, *, url: str = "", synchronous: str = "FULL", timeout: float = 30.0
    ) -> None:
        self.path = path
        self.url = url or f"sqlite:///{path}"
        self.synchronous = synchronous
        self.timeout = timeout
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="resumable-sqlite"
        )
        self._thread_id = self._executor.submit(threading.get_ident).result()
        self._conn: sqlite3.Connection | None = None
        #: Updates waiting for the next group commit (see _flush).
        self._queue: list[Any] = []
        self._queue_lock = threading.Lock()
        self._flushing = False
        try:
            self._open()
        except BaseException:
            self._executor.shutdown(wait=True)  # a refused store leaves no thread behind
            raise
        self._locks = lock_file(path + ".locks")

    # -- setup -----------------------------------------------------------------------

    @_on_store_thread
    def _open(self) -> None:
        folder = os.path.dirname(self.path)
        try:
            os.makedirs(folder, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the store {self.url} ({self.path}): {e}") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            self._check_schema(conn)
        except sqlite3.DatabaseError as e:
            conn.close()
            raise StoreError(f"{self.path} is not a resumable store: {e}") from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            has_meta = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='resumable_meta'"
            ).fetchone()
            version = None
            if has_meta:
                row = conn.execute(
                    "SELECT value FROM resumable_meta WHERE key='schema_version'"
                ).fetchone()
                version = int(row[0]) if row else None
            if version is None:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT OR REPLACE INTO resumable_meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"the store {self.path} was written by a newer resumable (schema version "
                    f"{version}; this version knows up to {SCHEMA_VERSION}): upgrade resumable "
                    "to use it"
                )
            elif version < SCHEMA_VERSION:
                self._migrate(conn, version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _migrate(self, conn: sqlite3.Connection, version: int) -> None:
        raise StoreError(f"the store {self.path} has unknown schema version {version}")

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store {self.url} is closed")
        return self._conn

    # -- records ---------------------------------------------------------------------

    @_on_store_thread
    def create(self, record: RunRecord) -> bool:
        now = time.time()
        values = [getattr(record, f) for f in FIELDS]
        values[FIELDS.index("created_at")] = now
        values[FIELDS.index("updated_at")] = now
        marks = ", ".join("?" * len(values))
        cursor = self.conn.execute(
            f"INSERT OR IGNORE INTO runs ({_COLUMNS}) VALUES ({marks})", values
        )
        return cursor.rowcount == 1

    @_on_store_thread
    def get(self, run_id: str) -> RunRecord | None:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        return None if row is None else _record(row)

    @_on_store_thread
    def update(
        self, run_id: str, fields: dict[str, Any], *, when: Iterable[str] | None = None
    ) -> bool:
        return self._update(run_id, fields, when)

    def _update(self, run_id: str, fields: dict[str, Any], when: Iterable[str] | None) -> bool:
        unknown = fields.keys() - _FIELD_SET
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        sets = ", ".join(f"{name} = ?" for name in fields)
        values: list[Any] = [*fields.values(), time.time(), run_id]
        sql = f"UPDATE runs SET {sets}, updated_at = ? WHERE run_id = ?"
        if when is not None:
            statuses = tuple(when)
            sql += f" AND status IN ({', '.join('?' * len(statuses))})"
            values += statuses
        return self.conn.execute(sql, values).rowcount == 1

    @_on_store_thread
    def list_runs(
        self,
        *,
        statuses: Iterable[str] | None = None,
        parent: str | None = None,
        top_only: bool = False,
        limit: int | None = None,
    ) -> list[RunRecord]:
        where: list[str] = []
        values: list[Any] = []
        if statuses is not None:
            wanted = tuple(statuses)
            where.append(f"status IN ({', '.join('?' * len(wanted))})")
            values += wanted
        if parent is not None:
            where.append("parent = ?")
            values.append(parent)
        if top_only:
            where.append("parent IS NULL")
        sql = f"SELECT {_COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, run_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_record(row) for row in self.conn.execute(sql, values)]

    @_on_store_thread
    def runnable(self, now: float, limit: int) -> list[RunRecord]:
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM runs WHERE parent IS NULL AND (status IN (?, ?) "
            "OR (status = ? AND (wake_at IS NULL OR wake_at <= ?))) ORDER BY created_at LIMIT ?",
            (PENDING, RUNNING, WAITING, now, limit),
        )
        return [_record(row) for row in rows]

    # -- ownership -------------------------------------------------------------------

    def lock(self, run_id: str) -> bool:
        return self._locks.lock(run_id)

    def unlock(self, run_id: str) -> None:
        self._locks.unlock(run_id)

    # -- plumbing --------------------------------------------------------------------

    async def io(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        if (
            getattr(fn, "__func__", None) is SQLiteStore.update
            and getattr(fn, "__self__", None) is self
        ):
            return await self._group_update(*args, **kwargs)
        future = self._executor.submit(fn, *args, **kwargs)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        if self._conn is not None:
            self._executor.submit(self._conn.close).result()
            self._conn = None
        self._executor.shutdown(wait=True)

    # -- group commit ----------------------------------------------------------------
    #
    # Updates awaited by async callers (checkpoints, status changes) queue up
    # while the store thread commits; it then writes all that queued in one
    # transaction, so runs driven concurrently share one fsync instead of
    # waiting for one each. Each update still commits whole or not at all, and
    # its caller goes on only after the commit. If the shared transaction
    # fails, each update is tried again alone, so one bad write fails only
    # its own caller.

    async def _group_update(
        self, run_id: str, fields: dict[str, Any], *, when: Iterable[str] | None = None
    ) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        with self._queue_lock:
            self._queue.append((loop, future, run_id, fields, when))
            start = not self._flushing
            self._flushing = True
        if start:
            self._executor.submit(self._flush)
        return await future

    def _flush(self) -> None:
        with self._queue_lock:
            batch, self._queue = self._queue, []
            self._flushing = False
        batch = [item for item in batch if not item[1].cancelled()]
        outcomes: list[tuple[bool, BaseException | None]] = []
        if len(batch) > 1:
            with contextlib.suppress(Exception):  # then each alone, below
                outcomes = self._in_one_transaction(batch)
        if not outcomes:
            outcomes = [self._alone(item) for item in batch]
        for (loop, future, *_), (result, error) in zip(batch, outcomes, strict=True):
            with contextlib.suppress(RuntimeError):  # its event loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, future, result, error)

    def _in_one_transaction(self, batch: list[Any]) -> list[tuple[bool, BaseException | None]]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            outcomes: list[tuple[bool, BaseException | None]] = [
                (self._update(*item[2:]), None) for item in batch
            ]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return outcomes

    def _alone(self, item: Any) -> tuple[bool, BaseException | None]:
        """One queued update in its own transaction (one statement)."""
        try:
            return self._update(*item[2:]), None
        except Exception as e:
            return False, e


def _settle(future: asyncio.Future[bool], result: bool, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _record(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(**dict(zip(FIELDS, row, strict=True)))
