"""The SQL schema of a store and its migrations, versioned in `resumable_meta`.

    version 1  runs: one row per run
    version 2  + generation (owner generation, for fenced writes)
               + args_digest (child runs are matched by it)
    version 3  + operations: timers' wake times and event waits' deadlines
                 and outcomes, by run and operation id
               + events: events sent to runs, in send order, and the wait
                 that took each
    version 4  + schedules: functions run on a cron expression or an
                 interval, with the time of the last firing and the next
    version 5  + runs.queue, runs.priority, runs.dedup_key (queues.py)
               + queues: each queue's limits, as its last dispatch gave them
               + queue_starts: the starts of a rate-limited queue's runs
                 within its window
               + a unique index of the dedup keys of runs that have not ended
    version 6  the queue index covers dispatched child runs (those of a
               queue, claimed through it while their parent waits)

A store opened for writing creates the schema, or migrates an older one in
one transaction, the first time it is opened; a store opened read-only
reads an older schema as it is (missing columns read as their defaults).
A database written by a newer resumable is refused.
"""

from __future__ import annotations

import sqlite3

from ..errors import StoreError

__all__ = ["SCHEMA_VERSION", "read_columns", "set_up"]

#: Bump with a step in MIGRATIONS when the tables change.
SCHEMA_VERSION = 6

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
    owner       TEXT,
    generation  INTEGER NOT NULL DEFAULT 0,
    args_digest TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, created_at) WHERE parent IS NULL;
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent) WHERE parent IS NOT NULL;
"""

#: The tables of durable waits (version 3).
_WAITS = """
CREATE TABLE IF NOT EXISTS operations (
    run_id  TEXT NOT NULL,
    op_id   TEXT NOT NULL,
    wake_at REAL,
    outcome TEXT,
    PRIMARY KEY (run_id, op_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    event_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id    TEXT NOT NULL,
    name      TEXT NOT NULL,
    payload   BLOB NOT NULL,
    dedup_key TEXT,
    sent_at   REAL NOT NULL,
    taken_by  TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS events_dedup ON events (run_id, name, dedup_key)
    WHERE dedup_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_waiting ON events (run_id, name, event_id)
    WHERE taken_by IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS events_taken ON events (run_id, taken_by)
    WHERE taken_by IS NOT NULL
"""

#: The table of schedules (version 4): one row per `Runtime.schedule`; a
#: firing is a run `<schedule_id>@<time>`, created with `last_fired` advanced.
_SCHEDULES = """
CREATE TABLE IF NOT EXISTS schedules (
    schedule_id TEXT PRIMARY KEY,
    function    TEXT NOT NULL,
    args        BLOB NOT NULL,
    args_digest TEXT NOT NULL,
    cron        TEXT,
    every       REAL,
    created_at  REAL NOT NULL,
    last_fired  REAL,
    next_at     REAL NOT NULL,
    source      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS schedules_by_next ON schedules (next_at)
"""

#: Queues, priorities and dedup keys (version 5). A run holds its dedup key
#: while it is pending, running, waiting or blocked (the index's condition).
_QUEUES = """
ALTER TABLE runs ADD COLUMN queue TEXT;
ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN dedup_key TEXT;
CREATE INDEX IF NOT EXISTS runs_by_queue ON runs (queue, status, priority, created_at)
    WHERE queue IS NOT NULL AND parent IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS runs_dedup ON runs (dedup_key)
    WHERE dedup_key IS NOT NULL AND status IN ('pending', 'running', 'waiting', 'blocked');
CREATE TABLE IF NOT EXISTS queues (
    name        TEXT PRIMARY KEY,
    concurrency INTEGER,
    rate_limit  INTEGER,
    rate_period REAL,
    updated_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS queue_starts (queue TEXT NOT NULL, started_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS queue_starts_by_time ON queue_starts (queue, started_at)
"""

#: Child runs of a queue are claimed through it too (version 6).
_QUEUED_CHILDREN = """
DROP INDEX IF EXISTS runs_by_queue;
CREATE INDEX IF NOT EXISTS runs_by_queue ON runs (queue, status, priority, created_at)
    WHERE queue IS NOT NULL
"""

#: version -> the statements that take a store from it to the next version.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE runs ADD COLUMN generation INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN args_digest TEXT NOT NULL DEFAULT ''",
    ),
    2: tuple(s for s in _WAITS.split(";") if s.strip()),
    3: tuple(s for s in _SCHEDULES.split(";") if s.strip()),
    4: tuple(s for s in _QUEUES.split(";") if s.strip()),
    5: tuple(s for s in _QUEUED_CHILDREN.split(";") if s.strip()),
}


def _version(conn: sqlite3.Connection, path: str) -> int | None:
    """The schema version of the database (None: no resumable schema yet)."""
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'resumable_meta'"
    ).fetchone()
    if not has_meta:
        return None
    row = conn.execute("SELECT value FROM resumable_meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        return None
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise StoreError(
            f"the store {path} is damaged: its schema version is {row[0]!r:.40}, not a number "
            "(restore it from a backup, or point resumable at another file)"
        ) from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the store {path} was written by a newer resumable (schema version {version}; "
            f"this version knows up to {SCHEMA_VERSION}): upgrade resumable to use it"
        )
    if version < 1:
        raise StoreError(f"the store {path} has an unknown schema version {version}")
    return version


def set_up(conn: sqlite3.Connection, path: str, *, readonly: bool) -> None:
    """Create or migrate the schema (or, read-only, check it). Raises StoreError."""
    version = _version(conn, path)
    if version == SCHEMA_VERSION:
        return
    if readonly:
        if version is None:
            raise StoreError(f"{path} is not a resumable store (it has no resumable tables)")
        return  # an older schema is read as it is
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn, path)  # again, now that no one else can change it
        if version is None:
            for statement in (
                _SCHEMA + ";" + _WAITS + ";" + _SCHEDULES + ";" + _QUEUES + ";" + _QUEUED_CHILDREN
            ).split(";"):
                if statement.strip():
                    conn.execute(statement)
        else:
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                version += 1
        conn.execute(
            "INSERT OR REPLACE INTO resumable_meta VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def read_columns(conn: sqlite3.Connection) -> frozenset[str]:
    """The columns of the runs table as it is."""
    return frozenset(row[1] for row in conn.execute("PRAGMA table_info(runs)"))
