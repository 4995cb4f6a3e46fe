"""Fan-out across real processes killed with SIGKILL:

- examples/fanout.py killed in the middle of its gather: the children that
  completed never run again, and the report completes;
- a worker killed inside a race loser's finally block, after the winner was
  committed: the next worker finishes the loser's finally block (cancelled)
  and the race returns the same winner, though the loser would now win.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.procs import (
    clean_env,
    compile_module,
    lines,
    python,
    rows,
    start_worker,
    stop,
    wait_until,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fanout.py"

JOBS = '''
"""Functions for tests/test_fanout_crash.py: each step appends to $FANOUT_LOG."""

import asyncio
import json
import os
import signal

import resumable


async def note(*what):
    with open(os.environ["FANOUT_LOG"], "a") as f:
        f.write(json.dumps(what) + "\\n")
    return what


def delay(name):
    # after the first process died, the old loser is the fastest
    died = os.path.exists(os.environ["FANOUT_LOG"] + ".died")
    return {"fast": 0.01, "slow": 0.5}[name] if not died else {"fast": 2.0, "slow": 0.0}[name]


@resumable.function
async def provider(name):
    try:
        await note("start", name)
        await asyncio.sleep(delay(name))
        return name
    finally:
        await note("finally", name)
        flag = os.environ["FANOUT_LOG"] + ".died"
        if name == "slow" and not os.path.exists(flag):
            open(flag, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)


@resumable.function
async def pick():
    won = await resumable.race(provider("slow"), provider("fast"))
    await note("won", won)
    return won
'''


def test_the_fanout_example_resumes_without_refetching(tmp_path: Path) -> None:
    env = clean_env()

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(EXAMPLE), "report-1", *extra],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    first = run("--crash")
    assert first.returncode == -9, first.stderr  # SIGKILLed
    assert "fetched us" in first.stdout and "fetched eu" in first.stdout
    assert "fetched asia" not in first.stdout
    second = run()
    assert second.returncode == 0, second.stderr
    assert "us" not in second.stdout.replace("total sales", "")  # us and eu: stored results
    assert " eu" not in second.stdout
    assert "fetched asia" in second.stdout
    assert second.stdout.splitlines()[-1] == "report-1: 3 regions, total sales 800"
    statuses = {r["run_id"]: r["status"] for r in rows(tmp_path / ".resumable" / "state.db")}
    assert statuses["report-1"] == "completed"
    assert [statuses[f"report-1/1.{i}/2.1"] for i in range(3)] == ["cancelled"] * 3


def test_a_worker_killed_in_a_race_losers_finally_keeps_the_winner(tmp_path: Path) -> None:
    compile_module(tmp_path, "fan_jobs", JOBS)
    db = tmp_path / "runs.db"
    env = clean_env(RESUMABLE_STORE=f"sqlite:///{db}", FANOUT_LOG=str(tmp_path / "log"))
    made = python("import fan_jobs\nfan_jobs.pick.dispatch(run_id='r')", cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    args = ("--module", "fan_jobs", "--poll", "0.05")
    first = start_worker(*args, cwd=tmp_path, env=env)
    wait_until(lambda: first.poll() is not None, "the worker killed in the loser's finally")
    stop(first)
    second = start_worker(*args, cwd=tmp_path, env=env)
    status = lambda: {r["run_id"]: r["status"] for r in rows(db)}  # noqa: E731
    wait_until(lambda: status().get("r") == "completed", "the race completed", proc=second)
    stop(second)
    log = [json.loads(line) for line in lines(tmp_path / "log")]
    assert log == [
        ["start", "slow"],
        ["start", "fast"],
        ["finally", "fast"],
        ["finally", "slow"],  # killed here, after the winner was committed
        ["finally", "slow"],  # the loser's finally block, run again from its checkpoint
        ["won", "fast"],
    ]
    assert status() == {"r": "completed", "r/1.0": "cancelled", "r/1.1": "completed"}
