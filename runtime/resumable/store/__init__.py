"""Where runs live: one record per run, its latest checkpoint inside.

    open_store("memory://")                     # tests: a dict, gone with the process
    open_store("sqlite:///.resumable/state.db") # the embedded default (relative path)
    open_store("sqlite:////var/lib/app/state.db?synchronous=NORMAL")
    open_store("sqlite:///state.db", readonly=True)   # to look, never to write
    open_store("postgresql://app@db/shop?lease=30")    # many workers, many machines

Every write is one atomic statement, fenced by the writer's lease (base.py):
a checkpoint replaces the previous one together with the step's
bookkeeping, so no crash leaves a run half-written, and a driver that lost
its run writes nothing. Ownership (who may drive a run) dies with its
process (ownership.py), so a run whose owner was killed is taken over at once
(SQLite), or once its lease expires (PostgreSQL).

Store methods are synchronous; from async code the runtime calls them through
`await store.io(method, *args)` and `await store.commit(write)`, which run
them on the store's own thread, so a commit never stalls the event loop.
"""

from __future__ import annotations

import math
import os
import urllib.parse
from typing import Any

from ..errors import StoreError
from .base import (
    ACTIVE,
    BLOCKED,
    CANCELLED,
    COMPLETED,
    FAILED,
    FINISHED,
    PENDING,
    RUNNING,
    STATUSES,
    WAITING,
    Lease,
    RunRecord,
    RunSummary,
    Status,
    Store,
    Write,
)
from .migrations import SCHEMA_VERSION

__all__ = [
    "ACTIVE",
    "BLOCKED",
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "FINISHED",
    "PENDING",
    "RUNNING",
    "SCHEMA_VERSION",
    "STATUSES",
    "WAITING",
    "Lease",
    "RunRecord",
    "RunSummary",
    "Status",
    "Store",
    "Write",
    "describe",
    "open_store",
]


def open_store(url: str, *, readonly: bool = False) -> Store:
    """A store from its URL (SQLAlchemy style). Raises StoreError.

    `readonly`: for looking only (a SQLite file is never created, migrated
    or locked)."""
    if not isinstance(url, str) or not url:
        raise StoreError(
            f"the store URL is {url!r}: use 'sqlite:///relative/path.db', "
            "'sqlite:////absolute/path.db' or 'memory://'"
        )
    if url == "memory://":
        from .memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite://"):
        from .sqlite import SQLiteStore

        path, options = _sqlite_url(url)
        return SQLiteStore(path, url=url, readonly=readonly, **options)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url, readonly=readonly)
    raise StoreError(
        f"unknown store URL {url!r}: use 'sqlite:///relative/path.db', "
        "'sqlite:////absolute/path.db', 'postgresql://user@host/db' or 'memory://'"
    )


def describe(url: str) -> str:
    """The store a URL names, as an absolute location (for logs)."""
    if url.startswith("sqlite://"):
        try:
            path, _ = _sqlite_url(url)
        except StoreError:
            return url
        return "sqlite:///:memory:" if path == ":memory:" else f"sqlite:///{path}"
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import redact

        return redact(url)
    return url


def _sqlite_url(url: str) -> tuple[str, dict[str, Any]]:
    parsed = urllib.parse.urlsplit(url)
    if parsed.netloc:
        raise StoreError(
            f"store {url!r}: a SQLite URL has no host; use 'sqlite:///relative.db' or "
            "'sqlite:////absolute/path.db'"
        )
    path = urllib.parse.unquote(parsed.path)
    path = path[1:]  # sqlite:///x.db -> "x.db"; sqlite:////abs.db -> "/abs.db"
    if not path:
        raise StoreError(f"store {url!r} names no file: use 'sqlite:///path.db'")
    if "\x00" in path:
        raise StoreError(f"store {url!r}: the path holds a NUL character (%00)")
    options: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
        if key == "synchronous":
            if value.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
                raise StoreError(
                    f"store {url!r}: synchronous must be OFF, NORMAL, FULL or EXTRA, not {value!r}"
                )
            options["synchronous"] = value.upper()
        elif key == "timeout":
            try:
                seconds = float(value)
            except ValueError:
                seconds = math.nan
            if not (math.isfinite(seconds) and 0 <= seconds <= 86400):
                raise StoreError(
                    f"store {url!r}: timeout must be seconds between 0 and 86400, not {value!r}"
                )
            options["timeout"] = seconds
        else:
            raise StoreError(f"store {url!r}: unknown option {key!r} (known: synchronous, timeout)")
    if path == ":memory:":
        return path, options  # an SQLite database in memory, gone with the store
    return os.path.abspath(path), options
