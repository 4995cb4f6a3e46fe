"""The stores the same tests run on: memory://, SQLite, and PostgreSQL when
`RESUMABLE_TEST_POSTGRES` names a server (conftest.py's `postgres_url`:
a schema of its own per test, in a database of the test session)."""

from __future__ import annotations

from pathlib import Path

import pytest

KINDS = ["memory", "sqlite", "postgres"]
#: The stores that outlive a Runtime (memory:// is gone with its Runtime):
#: for tests where a second Runtime, standing for a process started after
#: the first died, reads what the first wrote.
LASTING = ["sqlite", "postgres"]


def store_url(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path, name: str = "runs.db"
) -> str:
    """A fresh, empty store of `kind` for one test."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / name}"
    url: str = request.getfixturevalue("postgres_url")
    return url
