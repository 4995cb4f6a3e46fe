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
import logging
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from ..errors import StoreError, StoreUnavailable
from .base import FIELDS, FINISHED, MAX_TIME
from .migrations import SCHEMA_VERSION, read_columns, set_up
from .ownership import FileOwnership, LocalOwnership
from .sql import DamagedText, SQLStore, engine_call

__all__ = ["SCHEMA_VERSION", "DamagedText", "SQLiteStore"]

T = TypeVar("T")

_WAL_LIMIT = 64 * 1024 * 1024


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return DamagedText(data)


class SQLiteStore(SQLStore):
    # A column may hold a value of any type: a time is checked to be a number.
    _VALID_WAKE = f"typeof(wake_at) IN ('integer', 'real') AND wake_at BETWEEN 0 AND {MAX_TIME!r}"
    _LEAST = "MIN"
    _IS = "IS"
    _NOT_FINISHED = (
        f"(typeof(status) != 'text' OR status NOT IN ({', '.join('?' * len(FINISHED))}))"
    )

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
        self._start_grouping()  # grouping.py
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
        try:
            if not self.readonly and not self.in_memory:
                _refuse_other_names(self.path)
                conn = self._in_wal_mode(conn)
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

    def _in_wal_mode(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """`conn`, or a new connection, on the database in WAL mode.

        Two processes opening a new database at once both find it in
        rollback mode and both switch it to WAL: SQLite refuses one of the
        two switches at once ("database is locked", without calling the
        busy handler), whatever the timeout. So a switch that finds the
        database locked connects again, and the new connection sees the mode
        the other process set (or switches it itself), until the timeout."""
        deadline = time.monotonic() + self.timeout
        wait = f"PRAGMA busy_timeout={int(self.timeout * 1000)}"
        try:
            while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA busy_timeout=0")
                try:
                    conn.execute("PRAGMA journal_mode=WAL").fetchall()
                except sqlite3.OperationalError as e:
                    if not _is_busy(e) or time.monotonic() > deadline:
                        raise
                    conn.close()
                    time.sleep(0.005)
                    conn = self._connect()
                conn.execute(wait)
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect(self) -> sqlite3.Connection:
        try:
            if not self.in_memory:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the store {self.url} ({self.path}): {e}") from None
        conn.text_factory = _text
        return conn

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
                conn.text_factory = _text
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
        if _is_busy(e):
            return StoreUnavailable(
                f"{where} stayed locked by another connection for more than "
                f"{self.timeout:g} s ({e}); raise ?timeout= in the store URL if this recurs"
            )
        return StoreUnavailable(f"{where} failed: {e} ({name or type(e).__name__})")

    @engine_call
    def probe(self) -> None:
        """A small write, to learn whether the store takes writes again (after
        a full disk, say); truncates the WAL first. Raises StoreUnavailable."""
        conn = self.conn
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute(
            "INSERT OR REPLACE INTO resumable_meta VALUES ('probed_at', ?)", (str(time.time()),)
        )

    # -- the engine's hooks (sql.py) -------------------------------------------------

    def _call(self, method: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run the method on the store's thread (directly when already there),
        its sqlite3 errors as StoreUnavailable."""
        if threading.get_ident() == self._thread_id:
            try:
                return method(*args, **kwargs)
            except sqlite3.Error as e:
                raise self.unavailable(e) from None
        return self._executor.submit(self._call, method, *args, **kwargs).result()

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def _exec_many(self, sql: str, rows: list[list[Any]]) -> int:
        return self.conn.executemany(sql, rows).rowcount

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _savepoint(self) -> Iterator[None]:
        conn = self.conn
        conn.execute("SAVEPOINT write")  # a transaction of its own when not in one
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK TO write")
            conn.execute("RELEASE write")
            raise
        conn.execute("RELEASE write")

    def _ignore(self, insert: str) -> str:
        return f"INSERT OR IGNORE {insert}"

    def _IS_NUMBER(self, column: str) -> str:
        return f"typeof({column}) IN ('integer', 'real')"

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


def _is_busy(e: sqlite3.Error) -> bool:
    name = getattr(e, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(e)


def _is_format_error(e: sqlite3.Error) -> bool:
    name = getattr(e, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in str(e)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return bool(found)
