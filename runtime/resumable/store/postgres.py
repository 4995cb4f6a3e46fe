"""`postgresql://user@host:port/db`: the store for many workers on many machines.

    open_store("postgresql://app@db.internal/shop")
    open_store("postgresql://app@db/shop?lease=10&heartbeat=3&schema=tenant_a")

The queries are SQLStore's (sql.py); what differs here:

- psycopg 3, synchronous, over a psycopg_pool connection pool: each store
  method is one transaction on a pooled connection, run on a small thread
  pool of the store's own (`io`, `commit`), so the event loop never waits
  for the database. `?pool=N` (default 4) threads, N + 2 connections.
- Ownership is a lease with fencing (ownership.py `LeaseOwnership`): a row
  in `leases` with an expiry measured with the database's `now()`,
  `?lease=` seconds long (default 30), renewed every `?heartbeat=` seconds
  (default a third of the lease) while held. A running run whose lease
  expired is runnable again (its owner died or froze); one under a live
  lease is not. The owner generation fences every write, as on SQLite.
- Rows read or written by a transaction that must see concurrent writes
  are locked first (`FOR UPDATE`): an event sent while its run parks, a
  cancellation while a run parks. A deadlock or serialization failure is
  retried (the transaction is tried again whole).
- The schema (pg_schema.py) is created on first use under an advisory
  lock; `?schema=NAME` keeps the tables in that schema (created if absent).
- Text PostgreSQL cannot hold (a NUL character) is stored escaped (`\\x00`).
- Every psycopg error becomes a `StoreUnavailable` naming the server.
- Idle workers wait on LISTEN/NOTIFY (`listen`): each write that makes a
  run runnable or moves a wake time sends a NOTIFY on the store's channel
  with its commit. Workers still poll, rarely, as a fallback (worker.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import re
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..errors import StoreError, StoreUnavailable
from .base import owner_name
from .ownership import LeaseOwnership
from .pg_schema import set_up
from .sql import SQLStore, engine_call, one_statement

__all__ = ["Listener", "PostgresStore", "connect_options"]

T = TypeVar("T")

_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_RETRIES = 5


def _missing_driver(url: str) -> StoreError:
    return StoreError(
        f"store {redact(url)}: the PostgreSQL store needs psycopg 3 and psycopg_pool; "
        "install them with: pip install 'resumable[postgres]'"
    )


def redact(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def server(url: str) -> str:
    """Where the server is, as people say it: host:port, or the local socket."""
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "an unreadable address"
    if not host:
        return "the local socket"
    return f"{host}:{port or 5432}"


def connect_options(url: str) -> tuple[str, dict[str, Any]]:
    """The libpq URL (our options removed) and our options. Raises StoreError."""
    parts = urllib.parse.urlsplit(url)
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as e:
        raise StoreError(f"store {redact(url)}: {e}") from None
    options: dict[str, Any] = {}
    passed: list[tuple[str, str]] = []
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if key in ("lease", "heartbeat"):
            try:
                seconds = float(value)
            except ValueError:
                seconds = -1.0
            if not 0.1 <= seconds <= 86400:
                raise StoreError(
                    f"store {redact(url)}: {key} must be seconds between 0.1 and 86400, "
                    f"not {value!r}"
                )
            options[key] = seconds
        elif key == "pool":
            if not (value.isdigit() and 1 <= int(value) <= 64):
                raise StoreError(f"store {redact(url)}: pool must be 1 to 64, not {value!r}")
            options["pool"] = int(value)
        elif key == "schema":
            if not _SCHEMA_NAME.fullmatch(value):
                raise StoreError(
                    f"store {redact(url)}: schema must be a plain SQL name (letters, digits, "
                    f"_), not {value!r}"
                )
            options["schema"] = value
        else:
            passed.append((key, value))  # libpq's own (sslmode, connect_timeout, ...)
    if not any(k == "connect_timeout" for k, _ in passed):
        passed.append(("connect_timeout", "10"))
    lease = options.setdefault("lease", 30.0)
    options.setdefault("heartbeat", min(10.0, lease / 3))
    if options["heartbeat"] >= lease:
        raise StoreError(f"store {redact(url)}: the heartbeat must be shorter than the lease")
    passed.append(("options", _session_options(options)))
    conninfo = urllib.parse.urlunsplit(
        parts._replace(
            scheme="postgresql", query=urllib.parse.urlencode(passed, quote_via=urllib.parse.quote)
        )
    )
    return conninfo, options


def _session_options(options: dict[str, Any]) -> str:
    """The settings of every session of the store, in libpq's `options`.

    A worker frozen (SIGSTOP, a paused VM) inside a transaction keeps its
    row locks: every other worker would wait on them for as long as it is
    frozen, its lease long expired. So the server ends a session of ours
    idle in a transaction for half a lease (the frozen worker's transaction
    rolls back, its locks go, and a takeover gets through within the
    lease; a heartbeat skips lease rows locked meanwhile), and a statement waits for a lock at most a lease
    (one held by another program, say an operator's open psql transaction,
    is then a StoreUnavailable naming the server, retried later, not a hung
    worker). A transaction of a live but slow process that the server ended
    so is tried again (`_call`): it was rolled back.
    """
    idle = max(100, int(options["lease"] * 500))
    wait = max(100, int(options["lease"] * 1000))
    settings = [f"idle_in_transaction_session_timeout={idle}", f"lock_timeout={wait}"]
    if "schema" in options:
        settings.append(f"search_path={options['schema']}")
    return " ".join(f"-c{setting}" for setting in settings)


def _clean(value: Any) -> Any:
    """A parameter as PostgreSQL takes it: str subclasses (a Status) as
    plain text, NUL characters escaped."""
    if isinstance(value, str):
        value = str.__str__(value)
        if "\x00" in value:
            value = value.replace("\x00", "\\x00")
    return value


@functools.lru_cache(maxsize=512)
def _dialect(sql: str) -> str:
    """SQLStore's `?` placeholders as psycopg's `%s`."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresStore(SQLStore):
    def __init__(self, url: str, *, readonly: bool = False) -> None:
        try:
            import psycopg
            import psycopg_pool
        except ImportError:
            raise _missing_driver(url) from None
        self._psycopg = psycopg
        self.url = redact(url)
        self.readonly = readonly
        self.where = f"{self.url} (PostgreSQL at {server(url)})"
        conninfo, options = connect_options(url)
        self._conninfo = conninfo
        self.lease, self.heartbeat = options["lease"], options["heartbeat"]
        self.schema: str | None = options.get("schema")
        #: The NOTIFY channel of this store's tables (one per schema).
        self.channel = f"resumable_{self.schema or 'public'}"
        threads = options.get("pool", 4)
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute("SET lock_timeout = 0")  # another process's migration may be long
                set_up(conn, self.where, readonly=readonly, schema=self.schema)
        except psycopg.Error as e:
            raise StoreError(
                f"cannot open the store {self.url}: connecting to the PostgreSQL server at "
                f"{server(url)} failed: {_first_line(e)}{_what_to_do(str(e))}"
            ) from None
        self._local = threading.local()
        self.pool = psycopg_pool.ConnectionPool(
            conninfo,
            min_size=1,
            max_size=threads + 2,  # + `lock` and `unlock` from other threads
            kwargs={"autocommit": True},
            open=False,
            name="resumable",
        )
        self.pool.open(wait=True, timeout=30)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="resumable-postgres"
        )
        self._start_grouping()  # grouping.py: concurrent runs' writes share a commit
        self._beat_conn: Any = None
        self._beat_lock = threading.Lock()
        self.ownership = self._leases = LeaseOwnership(
            self._rows,
            lease=self.lease,
            heartbeat=self.heartbeat,
            holder=f"{owner_name()}/{uuid.uuid4().hex[:12]}",
            renew=self._renew_rows,
        )

    # -- the engine's hooks (sql.py) -------------------------------------------------

    _UNOWNED = (
        "NOT EXISTS (SELECT 1 FROM leases AS l WHERE l.run_id = runs.run_id "
        "AND l.expires_at > now())"
    )
    # Queues (queueing.py): the queue's row is locked while its budget is
    # counted and spent; candidate runs locked elsewhere are skipped.
    _FOR_UPDATE = " FOR UPDATE"
    _SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

    def _clock(self) -> float:
        """The database's time (the rate window never depends on a worker's clock)."""
        return float(self._exec("SELECT extract(epoch FROM clock_timestamp())").fetchone()[0])

    def _call(self, method: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run the method in one transaction on a pooled connection (within
        the current one when nested); a deadlock, or a transaction the
        server ended as idle too long (rolled back), is tried again."""
        if getattr(self._local, "conn", None) is not None:
            return method(*args, **kwargs)
        errors = self._psycopg.errors
        alone = getattr(method, "one_statement", False)  # atomic as it is (autocommit)
        for attempt in range(_RETRIES):
            try:
                with self.pool.connection(timeout=30) as conn:
                    self._local.conn = conn
                    try:
                        if alone:
                            return method(*args, **kwargs)
                        with conn.transaction():
                            return method(*args, **kwargs)
                    finally:
                        self._local.conn = None
            except (
                errors.DeadlockDetected,
                errors.SerializationFailure,
                errors.IdleInTransactionSessionTimeout,  # rolled back by the server
            ) as e:
                if attempt == _RETRIES - 1:
                    raise self.unavailable(e) from None
            except self._psycopg.Error as e:
                raise self.unavailable(e) from None
            except Exception as e:
                if type(e).__module__.startswith("psycopg_pool"):  # PoolTimeout, PoolClosed
                    raise self.unavailable(e) from None
                raise
        raise AssertionError("unreachable")

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._local.conn.execute(_dialect(sql), [_clean(p) for p in params])

    def _exec_many(self, sql: str, rows: list[list[Any]]) -> int:
        with self._local.conn.cursor() as cursor:
            cursor.executemany(_dialect(sql), [[_clean(p) for p in row] for row in rows])
            return int(cursor.rowcount)

    def _lock_runs(self, where: str, params: Sequence[Any]) -> None:
        self._exec(f"SELECT 1 FROM runs WHERE {where} ORDER BY run_id FOR UPDATE", params)

    def _lease_held(self) -> tuple[str, Sequence[Any]]:
        # A driver's write also needs its lease unexpired by the database's
        # clock: a worker frozen past it (not taken over yet) commits
        # nothing, and so never starts the step after it.
        return (
            "EXISTS (SELECT 1 FROM leases AS l WHERE l.run_id = runs.run_id "
            "AND l.holder = ? AND l.expires_at > now())",
            (self._leases.holder,),
        )

    def _changed(self) -> None:
        # Delivered when the transaction commits (once, however many times
        # it is sent in it).
        self._exec("SELECT pg_notify(?, '')", (self.channel,))

    def listen(self, changed: Callable[[], None]) -> Listener:
        """Call `changed` (from a thread of its own) whenever runs of this
        store became runnable or a wake time moved, until the listener is
        closed: LISTEN on a connection of its own."""
        return Listener(self._conninfo, self.channel, changed, self._psycopg)

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """One statement, a transaction of its own: its rows (for ownership)."""

        @one_statement
        def rows() -> list[tuple[Any, ...]]:
            return list(self._exec(sql, params).fetchall())

        return self._call(rows)

    def _renew_rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """One statement on the heartbeat's own connection (not the pool's:
        when every pooled connection is busy, or waits on a lock, the leases
        must still be renewed), reconnecting once if it broke."""
        psycopg = self._psycopg
        with self._beat_lock:
            for attempt in range(2):
                try:
                    if self._beat_conn is None or self._beat_conn.closed:
                        self._beat_conn = psycopg.connect(self._conninfo, autocommit=True)
                    cursor = self._beat_conn.execute(_dialect(sql), [_clean(p) for p in params])
                    return list(cursor.fetchall())
                except psycopg.Error as e:
                    with contextlib.suppress(Exception):
                        self._beat_conn.close()
                    self._beat_conn = None
                    if attempt == 1:
                        raise self.unavailable(e) from None
        raise AssertionError("unreachable")

    def unavailable(self, e: BaseException) -> StoreUnavailable:
        return StoreUnavailable(
            f"the store {self.where} failed: {_first_line(e)} ({type(e).__name__}); "
            "runs go on from their last checkpoint when it is reachable again"
        )

    @engine_call
    def probe(self) -> None:
        """A small write, to learn whether the store takes writes again."""
        self._exec(
            "INSERT INTO resumable_meta VALUES ('probed_at', now()::text) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )

    # -- plumbing ----------------------------------------------------------------------

    async def lock_async(self, run_id: str) -> bool:
        return await self.io(self.lock, run_id)  # a round trip: off the event loop

    async def io(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        future = self._executor.submit(fn, *args, **kwargs)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
        super().close()  # the leases first, while the pool is open
        self._executor.shutdown(wait=True)
        self.pool.close()
        with self._beat_lock:
            if self._beat_conn is not None:
                with contextlib.suppress(Exception):
                    self._beat_conn.close()
                self._beat_conn = None


class Listener:
    """LISTEN for a store's changes on a connection of its own, in a thread;
    reconnects (after a pause) when the connection breaks."""

    #: How long a wait for notifications lasts before looking at `closed`.
    TICK = 0.5

    def __init__(
        self, conninfo: str, channel: str, changed: Callable[[], None], psycopg: Any
    ) -> None:
        self.conninfo, self.channel, self.changed = conninfo, channel, changed
        self.psycopg = psycopg
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._run, name="resumable-listen", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        psycopg = self.psycopg
        while not self.closed.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute(
                        psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(self.channel))
                    )
                    self.changed()  # anything sent before LISTEN: look once
                    while not self.closed.is_set():
                        for _ in conn.notifies(timeout=self.TICK, stop_after=1):
                            self.changed()
            except psycopg.Error:
                self.closed.wait(1.0)  # the server is away: the workers poll meanwhile

    def close(self) -> None:
        self.closed.set()
        self.thread.join(timeout=5)


def _what_to_do(message: str) -> str:
    """What to do about a failed connection, when its message says what failed."""
    if "invalid URI query parameter" in message or "invalid connection option" in message:
        return (
            ". The URL's options are resumable's (lease, heartbeat, pool, schema) and libpq's "
            "connection parameters (sslmode, connect_timeout, application_name, ...): "
            "remove or correct that one"
        )
    found = re.search(r'(database|role) "([^"]*)" does not exist', message)
    if found:
        what, name = found.groups()
        if what == "database":
            return f": create it (createdb {name}, or CREATE DATABASE) or name another in the URL"
        return ": create that role on the server, or name another user in the URL"
    if "Connection refused" in message or "No such file or directory" in message:
        return ": is the server running, and listening at that address?"
    if "password authentication failed" in message or "no password supplied" in message:
        return ": give the right password (in the URL, PGPASSWORD or ~/.pgpass)"
    return ""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
