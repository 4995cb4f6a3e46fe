"""Cancellation and timeouts across real processes (worker subprocesses, a
real SQLite file, `resumable runs cancel`, SIGKILL):

- a run a worker is driving, cancelled from another process, gets
  CancelledError at its await within the worker's watch interval;
- a worker killed inside a cancelled run's finally block: the next worker
  finishes the finally block from its last checkpoint, and the run is not
  cancelled a second time;
- a run sleeping while no worker runs is cancelled by the next worker;
- a timeout survives a worker killed while the run sleeps past it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.procs import (
    clean_env,
    compile_module,
    lines,
    python,
    resumable_cmd,
    rows,
    start_worker,
    stop,
    wait_until,
)

JOBS = '''
"""Functions for tests/test_cancel_crash.py: each step appends to $CANCEL_LOG."""

import asyncio
import json
import os
import signal

import resumable


async def note(*what):
    with open(os.environ["CANCEL_LOG"], "a") as f:
        f.write(json.dumps(what) + "\\n")
    return what


def die_once():
    flag = os.environ["CANCEL_LOG"] + ".died"
    if not os.path.exists(flag):
        open(flag, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)


@resumable.function
async def busy():
    try:
        await note("busy")
        await asyncio.sleep(60)
        await note("never")
    except asyncio.CancelledError:
        await note("cancelled")
        raise
    finally:
        await note("cleanup")
        die_once()  # killed in the finally block, after its first checkpoint
        await note("cleanup 2")


@resumable.function
async def nap():
    try:
        await note("nap")
        await resumable.sleep(3600)
    finally:
        await note("cleanup")


@resumable.function(timeout=1.5)
async def limited():
    await note("limited")
    await resumable.sleep(3600)
    await note("never")
'''


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    compile_module(tmp_path, "cancel_jobs", JOBS)
    return tmp_path


@pytest.fixture
def env(folder: Path) -> dict[str, str]:
    return clean_env(
        RESUMABLE_STORE=f"sqlite:///{folder / 'runs.db'}", CANCEL_LOG=str(folder / "log")
    )


def dispatch(folder: Path, env: dict[str, str], code: str) -> None:
    proc = python(f"import cancel_jobs\n{code}", cwd=folder, env=env)
    assert proc.returncode == 0, proc.stderr


def worker(folder: Path, env: dict[str, str]) -> object:
    return start_worker("--module", "cancel_jobs", "--poll", "0.05", cwd=folder, env=env)


def status(db: Path, run_id: str) -> str | None:
    found = rows(db, "run_id = ?", run_id)
    return found[0]["status"] if found else None


def log(folder: Path) -> list[list[object]]:
    return [json.loads(line) for line in lines(folder / "log")]


def test_a_driven_run_is_cancelled_from_another_process_and_survives_a_kill_in_finally(
    folder: Path, env: dict[str, str]
) -> None:
    db = folder / "runs.db"
    dispatch(folder, env, "cancel_jobs.busy.dispatch(run_id='b')")
    first = worker(folder, env)
    wait_until(lambda: ["busy"] in log(folder), "the run busy", proc=first)
    asked = resumable_cmd("runs", "cancel", "b", env=env, cwd=folder)
    assert asked.returncode == 0, asked.stderr
    assert "being cancelled" in asked.stdout
    # The worker delivers it within its watch interval, and dies in the finally block.
    wait_until(lambda: first.poll() is not None, "the worker killed in the finally block")
    stop(first)
    assert status(db, "b") == "running"
    assert log(folder) == [["busy"], ["cancelled"], ["cleanup"]]
    second = worker(folder, env)
    wait_until(lambda: status(db, "b") == "cancelled", "the run cancelled", proc=second)
    stop(second)
    # The step from the first cleanup await ran again (at least once before the
    # next checkpoint); the cancellation was not raised a second time.
    assert log(folder) == [["busy"], ["cancelled"], ["cleanup"], ["cleanup"], ["cleanup 2"]]
    again = resumable_cmd("runs", "cancel", "b", env=env, cwd=folder)
    assert again.returncode == 1 and "has ended (cancelled)" in again.stderr
    retried = resumable_cmd("runs", "retry", "b", env=env, cwd=folder)
    assert retried.returncode != 0


def test_a_run_sleeping_while_no_worker_runs_is_cancelled_by_the_next_worker(
    folder: Path, env: dict[str, str]
) -> None:
    db = folder / "runs.db"
    dispatch(folder, env, "cancel_jobs.nap.dispatch(run_id='n')")
    first = worker(folder, env)
    wait_until(lambda: status(db, "n") == "waiting", "the run sleeping", proc=first)
    stop(first, kill=True)
    asked = resumable_cmd("runs", "cancel", "n", env=env, cwd=folder)
    assert asked.returncode == 0, asked.stderr
    second = worker(folder, env)
    wait_until(lambda: status(db, "n") == "cancelled", "the run cancelled", proc=second)
    stop(second)
    assert log(folder) == [["nap"], ["cleanup"]]
    child = resumable_cmd("runs", "cancel", "n/1.0", env=env, cwd=folder)
    assert child.returncode == 1


def test_a_timeout_survives_a_killed_worker(folder: Path, env: dict[str, str]) -> None:
    db = folder / "runs.db"
    dispatch(folder, env, "cancel_jobs.limited.dispatch(run_id='t')")
    first = worker(folder, env)
    wait_until(lambda: status(db, "t") == "waiting", "the run sleeping", proc=first)
    started = time.time()
    stop(first, kill=True)
    (row,) = rows(db, "run_id = 't'")
    assert row["wake_at"] < started + 2  # due at its deadline, not in an hour
    second = worker(folder, env)
    wait_until(lambda: status(db, "t") == "failed", "the run timed out", proc=second)
    stop(second)
    assert time.time() - row["created_at"] >= 1.5
    (row,) = rows(db, "run_id = 't'")
    assert "TimeoutError" in row["reason"] and row["attempts"] == 0
    assert log(folder) == [["limited"]]
