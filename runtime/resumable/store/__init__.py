"""Where runs live: one record per run, its latest checkpoint inside.

    open_store("memory://")                     # tests: a dict, gone with the process
    open_store("sqlite:///.resumable/state.db") # the embedded default (relative path)
    open_store("sqlite:////var/lib/app/state.db?synchronous=NORMAL")

Every write is one atomic transaction: a checkpoint replaces the previous one
together with the step's bookkeeping, so no crash leaves a run half-written.
A store also gives *ownership*: `lock(run_id)` succeeds in one process at a
time, and a lock dies with its process (see locks.py), so a run whose owner
was killed can be taken over at once.

Store methods are synchronous; from async code the runtime calls them through
`await store.io(method, *args)`, which runs them on the store's own thread
when they do I/O, so a commit never stalls the event loop.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

from ..errors import StoreError
from .base import (
    ACTIVE,
    BLOCKED,
    COMPLETED,
    FAILED,
    FINISHED,
    PENDING,
    RUNNING,
    STATUSES,
    WAITING,
    RunRecord,
    Store,
)

__all__ = [
    "ACTIVE",
    "BLOCKED",
    "COMPLETED",
    "FAILED",
    "FINISHED",
    "PENDING",
    "RUNNING",
    "STATUSES",
    "WAITING",
    "RunRecord",
    "Store",
    "open_store",
]


def open_store(url: str) -> Store:
    """A store from its URL (SQLAlchemy style). Raises StoreError."""
    if url == "memory://":
        from .memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite://"):
        from .sqlite import SQLiteStore

        path, options = _sqlite_url(url)
        return SQLiteStore(path, url=url, **options)
    if url.startswith(("postgresql://", "postgres://")):
        raise StoreError(
            f"store {url!r}: PostgreSQL is not available in this version of resumable; "
            "use 'sqlite:///path.db'"
        )
    raise StoreError(
        f"unknown store URL {url!r}: use 'sqlite:///relative/path.db', "
        "'sqlite:////absolute/path.db' or 'memory://'"
    )


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
                options["timeout"] = float(value)
            except ValueError:
                raise StoreError(f"store {url!r}: timeout must be seconds, not {value!r}") from None
        else:
            raise StoreError(f"store {url!r}: unknown option {key!r} (known: synchronous, timeout)")
    return os.path.abspath(path), options
