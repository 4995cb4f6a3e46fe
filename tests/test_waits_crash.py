"""Durable waits across real processes (worker subprocesses, a real SQLite
file, SIGKILL):

- a sleep of about 2 s survives a worker killed while the run sleeps: the
  next worker wakes it when due (not before, and within its poll interval),
  and the step before the sleep never runs again;
- a run waiting for an event is a row, not a task: a worker with one slot
  completes other runs behind 40 sleeping ones;
- an event sent (with `resumable runs send-event`) while no worker runs is
  received by the next one;
- a worker killed after a wait took an event but before its next checkpoint
  committed: the step runs again and receives the same event, and the next
  event goes to the next wait, so each event is delivered once per wait.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
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
"""Functions for tests/test_waits_crash.py: each step appends a line to $WAITS_LOG."""

import json
import os
import signal
import time

import resumable


async def note(*what):
    with open(os.environ["WAITS_LOG"], "a") as f:
        f.write(json.dumps([time.time(), *what]) + "\\n")
    return what


@resumable.function
async def nap(seconds):
    await note("before")
    await resumable.sleep(seconds)
    await note("after")
    return "rested"


@resumable.function
async def quick(i):
    return await note("quick", i)


@resumable.function
async def approval(order):
    await note("charge", order)
    try:
        who = await resumable.wait_event("approved", timeout=3 * 86400)
    except TimeoutError:
        await note("refund", order)
        return "refunded"
    await note("ship", order, who)
    return who


def die_once(what):
    """Note `what`; SIGKILL this process the first time (a flag file)."""
    flag = os.environ["WAITS_LOG"] + ".died"
    with open(os.environ["WAITS_LOG"], "a") as f:
        f.write(json.dumps([time.time(), *what]) + "\\n")
    if not os.path.exists(flag):
        open(flag, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)


@resumable.function
async def collect():
    first = await resumable.wait_event("item")
    die_once(["got", first])  # killed in the same step: before the take is committed
    second = await resumable.wait_event("item")
    await note("got", second)
    return [first, second]
'''


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    compile_module(tmp_path, "wait_jobs", JOBS)
    return tmp_path


@pytest.fixture
def env(folder: Path) -> dict[str, str]:
    return clean_env(
        RESUMABLE_STORE=f"sqlite:///{folder / 'runs.db'}", WAITS_LOG=str(folder / "log")
    )


def dispatch(folder: Path, env: dict[str, str], code: str) -> None:
    proc = python(f"import wait_jobs\n{code}", cwd=folder, env=env)
    assert proc.returncode == 0, proc.stderr


def worker(folder: Path, env: dict[str, str], *extra: str) -> object:
    return start_worker("--module", "wait_jobs", "--poll", "0.05", *extra, cwd=folder, env=env)


def status(db: Path, run_id: str) -> str | None:
    found = rows(db, "run_id = ?", run_id)
    return found[0]["status"] if found else None


def log(folder: Path) -> list[list[object]]:
    return [json.loads(line) for line in lines(folder / "log")]


def test_a_sleep_survives_a_killed_worker(folder: Path, env: dict[str, str]) -> None:
    db = folder / "runs.db"
    dispatch(folder, env, "wait_jobs.nap.dispatch(2.0, run_id='n')")
    first = worker(folder, env)
    wait_until(lambda: status(db, "n") == "waiting", "the run sleeping", proc=first)
    wake_at = rows(db, "run_id = 'n'")[0]["wake_at"]
    stop(first, kill=True)  # SIGKILL while the run sleeps
    assert status(db, "n") == "waiting"
    second = worker(folder, env)
    try:
        wait_until(lambda: status(db, "n") == "completed", "the run completed", proc=second)
    finally:
        stop(second)
    steps = log(folder)
    assert [s[1] for s in steps] == ["before", "after"]  # the step before ran once
    woke = steps[1][0]
    assert isinstance(woke, float)
    assert wake_at - 0.01 <= woke < wake_at + 1.5  # not before, and promptly after


def test_a_waiting_run_holds_no_slot(folder: Path, env: dict[str, str]) -> None:
    db = folder / "runs.db"
    dispatch(folder, env, "for i in range(40): wait_jobs.approval.dispatch(i, run_id=f'a{i}')")
    proc = worker(folder, env, "--concurrency", "1")
    try:
        wait_until(
            lambda: all(status(db, f"a{i}") == "waiting" for i in range(40)),
            "40 runs waiting for an event",
            proc=proc,
        )
        dispatch(folder, env, "wait_jobs.quick.dispatch(7, run_id='q')")
        wait_until(lambda: status(db, "q") == "completed", "the quick run", proc=proc)
        waiting = rows(db, "status = 'waiting'")
        assert len(waiting) == 40 and all(r["wake_at"] > time.time() + 86400 for r in waiting)
    finally:
        stop(proc)


def test_an_event_sent_while_no_worker_runs(folder: Path, env: dict[str, str]) -> None:
    db = folder / "runs.db"
    dispatch(folder, env, "wait_jobs.approval.dispatch('o1', run_id='a')")
    first = worker(folder, env)
    wait_until(lambda: status(db, "a") == "waiting", "the run waiting", proc=first)
    stop(first, kill=True)
    sent = resumable_cmd(
        "runs", "send-event", "a", "approved", '{"by": "ann"}', env=env, cwd=folder
    )
    assert sent.returncode == 0, sent.stderr
    assert "event 'approved' sent to run a" in sent.stdout
    again = resumable_cmd(
        "runs", "send-event", "a", "approved", '"bob"', "--dedup-key", "k", env=env, cwd=folder
    )
    assert again.returncode == 0, again.stderr
    second = worker(folder, env)
    try:
        wait_until(lambda: status(db, "a") == "completed", "the run completed", proc=second)
    finally:
        stop(second)
    assert [s[1:] for s in log(folder)] == [["charge", "o1"], ["ship", "o1", {"by": "ann"}]]
    ended = resumable_cmd("runs", "send-event", "a", "approved", env=env, cwd=folder)
    assert ended.returncode == 1 and "it has ended (completed)" in ended.stderr
    bad = resumable_cmd("runs", "send-event", "a", "approved", "{nope", env=env, cwd=folder)
    assert bad.returncode == 2 and "not JSON" in bad.stderr


def test_each_event_is_delivered_once_per_wait_across_a_kill(
    folder: Path, env: dict[str, str]
) -> None:
    db = folder / "runs.db"
    dispatch(folder, env, "wait_jobs.collect.dispatch(run_id='c')")
    dispatch(
        folder,
        env,
        "import resumable\nrt = resumable.Runtime()\n"
        "rt.send_event('c', 'item', 'one')\nrt.send_event('c', 'item', 'two')",
    )
    first = worker(folder, env)
    first.wait(timeout=60)
    stop(first)  # collects its output
    assert first.returncode == -signal.SIGKILL  # killed in the step after the first take
    second = worker(folder, env)
    try:
        wait_until(lambda: status(db, "c") == "completed", "the run completed", proc=second)
    finally:
        stop(second)
    assert [s[1:] for s in log(folder)] == [["got", "one"], ["got", "one"], ["got", "two"]]
    conn = sqlite3.connect(db)
    try:
        taken = conn.execute("SELECT payload, taken_by FROM events ORDER BY event_id").fetchall()
    finally:
        conn.close()
    assert [t for _, t in taken] == ["event:1.0", "event:2.0"]


# --------------------------------------------------------------- examples/approval.py

EXAMPLE = Path(__file__).parent.parent / "examples" / "approval.py"


def test_the_approval_example_waits_survives_a_kill_and_ships(tmp_path: Path) -> None:
    env = clean_env()
    db = tmp_path / ".resumable" / "state.db"

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(EXAMPLE), "start", "order-7"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    first = start()
    wait_until(lambda: status(db, "order-7") == "waiting", "the order waiting", proc=first)
    out, _ = stop(first, kill=True)
    assert out.count("charging order-7") == 1
    second = start()
    time.sleep(0.5)
    approve = subprocess.run(
        [sys.executable, str(EXAMPLE), "approve", "order-7", "ann"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert approve.returncode == 0, approve.stderr
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "charging" not in out  # charged once, by the first process
    assert out.splitlines()[-1] == "order-7: shipped (approved by ann)"
    timed_out = subprocess.run(
        [sys.executable, str(EXAMPLE), "timeout", "order-8"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert timed_out.stdout.splitlines()[-1] == "order-8: refunded", timed_out.stderr
