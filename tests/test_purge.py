"""`Store.purge` and `resumable runs purge --older-than`: ended top-level
runs (completed, failed, cancelled) last written before the age are deleted
with their child runs, operations and events; blocked and active runs, and
runs written since, are kept. On memory://, SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from resumable.store import RunRecord, open_store
from resumable.store.base import Operation, operation_write
from tests.procs import clean_env, resumable_cmd
from tests.stores import KINDS, store_url


def record(run_id: str, status: str, parent: str | None = None) -> RunRecord:
    return RunRecord(run_id, "m:f", "fp", b"{}", status=status, parent=parent)


@pytest.mark.parametrize("kind", KINDS)
def test_purge_deletes_ended_trees_and_keeps_the_rest(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path
) -> None:
    store = open_store(store_url(request, kind, tmp_path))
    try:
        for run_id, status in [
            ("done", "completed"),
            ("bad", "failed"),
            ("gone", "cancelled"),
            ("stuck", "blocked"),
            ("live", "pending"),
        ]:
            store.create(record(run_id, status))
        store.create(record("done/1.0", "completed", parent="done"))
        store.create(record("done0", "completed"))  # not a child of "done": kept if new
        store.create(record("live/1.0", "running", parent="live"))
        lease = store.claim("live/1.0", "me", "fp")
        assert lease is not None
        store.apply(operation_write(lease, Operation("done/1.0", "timer:1.0", 5.0)))
        cut = time.time() + 1  # everything above was written before it
        newer = sorted(store.purge(cut - 3600))
        assert newer == []  # nothing is an hour old
        assert sorted(store.purge(cut)) == ["bad", "done", "done0", "gone"]
        left = {r.run_id for r in store.list_runs()}
        assert left == {"stuck", "live", "live/1.0"}
        assert store.operation("done/1.0", "timer:1.0") is None
        assert store.purge(cut) == []
    finally:
        store.close()


def test_the_purge_command(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = open_store(f"sqlite:///{db}")
    store.create(record("old", "completed"))
    store.create(record("keep", "blocked"))
    store.close()
    env = clean_env(RESUMABLE_STORE=f"sqlite:///{db}")
    dry = resumable_cmd("runs", "purge", "--older-than", "0s", "--dry-run", env=env)
    assert dry.returncode == 0 and "1 ended runs would be deleted" in dry.stdout
    bad = resumable_cmd("runs", "purge", "--older-than", "soon", env=env)
    assert bad.returncode == 2 and "is not an age" in bad.stderr
    done = resumable_cmd("runs", "purge", "--older-than", "0s", env=env)
    assert done.returncode == 0 and "deleted 1 ended runs" in done.stdout
    store = open_store(f"sqlite:///{db}")
    assert [r.run_id for r in store.list_runs()] == ["keep"]
    store.close()
