"""The worker sees all the work it can do (worker subprocesses, on SQLite and
PostgreSQL: memory:// is one process's own):

- runs of functions it does not import, however many and however old, do
  not hide its own: `--drain` drives every one of its runs;
- a second `--drain` worker drives the runs the first one has not taken,
  instead of exiting while they are pending;
- a run waiting out a retry delay is a row with a wake time, not a task: it
  holds no slot, so healthy runs behind 300 waiting ones complete at once,
  and a waiting row made due is taken at the next poll.

The user's modules are compiled into a temporary folder once per module:
`sees_jobs` (given to the workers) and `other_jobs` (given to none).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from resumable.store import Store, open_store
from resumable.store.base import owner_name, park_write
from tests.procs import (
    clean_env,
    compile_module,
    python,
    resumable_cmd,
    start_worker,
    stop,
    wait_until,
)
from tests.stores import LASTING, store_url

JOBS = '''
"""Functions for tests/test_worker_sees.py."""

from __future__ import annotations

import asyncio
import os

import resumable

ONCE = resumable.Retry(max_attempts=1)


async def noop(i: int) -> int:
    await asyncio.sleep(0)
    return i


@resumable.function(retry=ONCE)
async def mine(i: int) -> int:
    return await noop(i)


# -- runs held by a worker until $SEES_GATE exists (when it is set) ------------------

_open: asyncio.Event | None = None


async def _watch(path: str, event: asyncio.Event) -> None:
    while not os.path.exists(path):
        await asyncio.sleep(0.02)
    event.set()


async def gate() -> None:
    """Wait until the file $SEES_GATE exists (one watcher for all runs)."""
    global _open
    path = os.environ.get("SEES_GATE")
    if not path:
        return
    if _open is None:
        _open = asyncio.Event()
        asyncio.get_running_loop().create_task(_watch(path, _open))
    await _open.wait()


@resumable.function(retry=ONCE)
async def held(i: int) -> int:
    await gate()
    return i


# -- runs that fail once, then wait 30 s to try again ---------------------------------

_failed: set[int] = set()


async def fail_first(i: int) -> int:
    """Fails the first time it is called for `i` in this process."""
    await asyncio.sleep(0)
    if i not in _failed:
        _failed.add(i)
        raise ConnectionError(f"flaky {i}: try again later")
    return i


@resumable.function(retry=resumable.Retry(max_attempts=2, initial_delay=30, jitter=0))
async def flaky(i: int) -> int:
    return await fail_first(i)
'''

OTHER = '''
"""Runs of these are never driven by the workers of tests/test_worker_sees.py."""

import asyncio

import resumable


@resumable.function
async def theirs(i: int) -> int:
    await asyncio.sleep(0)
    return i
'''


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("worker_sees")
    compile_module(folder, "sees_jobs", JOBS)
    compile_module(folder, "other_jobs", OTHER)
    return folder


def dispatch(folder: Path, env: dict[str, str], *calls: str) -> None:
    """Dispatch runs from a process that imports both modules; each call is
    `function:count` (the args are 0..count-1), in this order."""
    lines = ["import sees_jobs, other_jobs"]
    for call in calls:
        name, count = call.split(":")
        module = "other_jobs" if name == "theirs" else "sees_jobs"
        lines.append(f"for i in range({count}): {module}.{name}.dispatch(i)")
    proc = python("\n".join(lines), cwd=folder, env=env)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(params=LASTING)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path, "state.db")


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    """The store the workers use, as this process sees it."""
    opened = open_store(url)
    yield opened
    opened.close()


def by_status(store: Store, function: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in store.list_runs():
        if run.function.endswith(f":{function}"):
            counts[run.status] = counts.get(run.status, 0) + 1
    return counts


def park(store: Store, run_id: str, wake_at: float) -> None:
    """Make the active run `run_id` wait to try again until `wake_at`, as
    its driver does (owned, claimed, parked; its attempt counts kept)."""
    record = store.get(run_id)
    assert record is not None and store.lock(run_id)
    try:
        lease = store.claim(run_id, owner_name(), record.fingerprint)
        assert lease is not None
        parked = park_write(
            lease,
            attempt=record.attempt,
            attempts=record.attempts,
            wake_at=wake_at,
            reason="waiting to try again",
        )
        assert store.apply(parked)
    finally:
        store.unlock(run_id)


def test_runs_of_functions_it_does_not_import_do_not_hide_its_own(
    folder: Path, tmp_path: Path, url: str, store: Store
) -> None:
    env = clean_env(RESUMABLE_STORE=url)
    dispatch(folder, env, "theirs:200", "mine:20")  # 200 older runs of another module
    proc = resumable_cmd(
        "worker", "--module", str(folder / "sees_jobs.py"), "--drain", cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert by_status(store, "mine") == {"completed": 20}
    assert by_status(store, "theirs") == {"pending": 200}  # left for a worker that has them


def test_a_second_draining_worker_drives_what_the_first_has_not_taken(
    folder: Path, tmp_path: Path, url: str, store: Store
) -> None:
    env = clean_env(RESUMABLE_STORE=url)
    dispatch(folder, env, "held:300")
    gate = tmp_path / "gate"
    module = str(folder / "sees_jobs.py")
    # Worker 1 takes the oldest 150 and holds them until the gate opens.
    first = start_worker(
        *("--module", module, "--concurrency", "150", "--drain"),
        cwd=tmp_path,
        env={**env, "SEES_GATE": str(gate)},
    )
    try:
        wait_until(
            lambda: by_status(store, "held").get("running") == 150,
            "worker 1 to hold 150 runs",
            proc=first,
        )
        # Worker 2 (16 slots, no gate) drives the other 150, then exits: the
        # runs worker 1 holds are worker 1's.
        second = resumable_cmd("worker", "--module", module, "--drain", cwd=tmp_path, env=env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert by_status(store, "held") == {"completed": 150, "running": 150}
        assert first.poll() is None
        gate.touch()
        out, err = first.communicate(timeout=60)
    finally:
        stop(first)
    assert first.returncode == 0, out + err
    owners: dict[str, int] = {}
    for run in store.list_runs():
        assert run.status == "completed", run
        owners[run.owner or ""] = owners.get(run.owner or "", 0) + 1
    # 150 driven by each worker.
    assert sorted(owners.values()) == [150, 150]
    assert owners[f"{first.pid}@{socket.gethostname()}"] == 150


def test_a_draining_worker_without_modules_waits_for_a_run_it_can_import(
    folder: Path, url: str, store: Store
) -> None:
    # No --module: the worker imports a run's module from the file the run
    # was started from. A run waiting to try again (due in 1 s) is one it
    # could drive later, so --drain waits for it instead of exiting.
    env = clean_env(RESUMABLE_STORE=url)
    dispatch(folder, env, "mine:1")
    (run,) = store.list_runs()
    park(store, run.run_id, time.time() + 1)
    proc = resumable_cmd("worker", "--drain", cwd=folder, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "imported sees_jobs from sees_jobs.py" in proc.stdout
    assert by_status(store, "mine") == {"completed": 1}


def test_runs_waiting_to_try_again_hold_no_slot(
    folder: Path, tmp_path: Path, url: str, store: Store
) -> None:
    env = clean_env(RESUMABLE_STORE=url)
    dispatch(folder, env, "flaky:300", "mine:20")  # the 300 are older
    started = time.monotonic()
    worker = start_worker(
        "--module", str(folder / "sees_jobs.py"), "--concurrency", "16", cwd=tmp_path, env=env
    )
    try:
        # Each flaky run fails once and waits 30 s. Were a waiting run a
        # task holding its slot, the 20 healthy runs would wait 30 s and more.
        wait_until(
            lambda: by_status(store, "mine").get("completed") == 20,
            "the healthy runs to complete",
            proc=worker,
            timeout=25,
        )
        healthy = time.monotonic() - started
        wait_until(
            lambda: by_status(store, "flaky").get("waiting") == 300,
            "every flaky run to wait",
            proc=worker,
            timeout=25,
        )
        now = time.time()
        waiting = [
            store.get(run.run_id) for run in store.list_runs() if run.function.endswith(":flaky")
        ]
        assert all(row is not None and row.attempt == 1 for row in waiting)
        assert all(row is not None and row.wake_at > now + 15 for row in waiting)  # ~30 s on
        # A row, not a task: made due in the store, the worker takes it at
        # its next poll (and its second attempt succeeds).
        due = [run.run_id for run in waiting[:5] if run is not None]
        for run_id in due:
            park(store, run_id, now)
        wait_until(
            lambda: all(store.get(run_id).status == "completed" for run_id in due),
            "the runs made due to complete",
            proc=worker,
            timeout=10,
        )
        assert by_status(store, "flaky") == {"completed": 5, "waiting": 295}
    finally:
        out, err = stop(worker)
    assert worker.returncode == 0, out + err
    assert healthy < 20, f"the healthy runs took {healthy:.1f} s"
