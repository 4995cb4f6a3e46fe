"""Crashes with real processes: SIGKILL at and between checkpoints, restart.

The functions of tests/crash_programs/crashprog.py (loops, try/except/finally,
nested child runs, side effects in children with no await, closures held
across awaits) are compiled once
into a temporary folder. tests/crash_programs/runner.py runs one of them on a
SQLite file in a subprocess (sys.executable); every side effect appends an
fsync'd line `<tag> <idempotency key>` to a log, the key naming the step
(run id and checkpoint number) that made it.

(a) SIGKILL right before and right after checkpoint k is committed, restart:
    the result equals the uninterrupted run (and the native coroutine), the
    store ends as after an uninterrupted run, and the log is the
    uninterrupted log with only the step in flight repeated (after a kill
    right after a commit, nothing repeats). By default a few crash points per
    function; every checkpoint with --slow.
(b) SIGKILL from outside at random instants (seeded), restarting until the
    run completes: each kill repeats at most the step in flight.
(c) A corrupted or truncated checkpoint row: CheckpointError naming the run,
    the run blocked at its last good checkpoint, no side effect; once the row
    is repaired, `rt.retry` finishes it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from resumable.cli import main as cli_main
from tests.compiled import compile_and_import

PROGRAMS = Path(__file__).resolve().parent / "crash_programs"
RUNNER = PROGRAMS / "runner.py"
RUN_ID = "run-1"
TIMEOUT = 60

#: Arguments of each function under test.
ARGS: dict[str, list[Any]] = {
    "loop_sum": [5],
    "guarded": [3],
    "family": [2],
    "checkout": ["acct", [100, 250, 40]],
    "tally": [3],
    "session": [3],
}


# ------------------------------------------------------------------ helpers


@dataclass
class Program:
    folder: Path
    module: ModuleType
    baselines: dict[str, Baseline]


@dataclass
class Baseline:
    """An uninterrupted durable run, checked against the native coroutine."""

    result: str
    lines: list[str]
    checkpoints: list[tuple[str, int]]  # (run id, seq) of each commit, in order
    store: list[tuple[Any, ...]]
    elapsed: float


def read_log(path: Path) -> list[str]:
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "a torn log line"
    return text.splitlines()


def step_of(line: str) -> tuple[str, int]:
    """(run id, checkpoint) of the step that logged `line`."""
    key = line.rsplit(" ", 1)[1]
    run_id, _, seq = key.rpartition(":")
    return run_id, int(seq.split(".")[0])


def tail_of_step(lines: list[str], step: tuple[str, int]) -> int:
    """How many lines at the end of `lines` the step `step` logged."""
    n = 0
    while n < len(lines) and step_of(lines[-1 - n]) == step:
        n += 1
    return n


def runner_command(
    program: Program, db: Path, fn: str, *flags: str, run_id: str = RUN_ID
) -> list[str]:
    return [
        sys.executable,
        str(RUNNER),
        str(program.folder),
        str(db),
        fn,
        json.dumps(ARGS[fn]),
        run_id,
        *flags,
    ]


def runner_env(log: Path, delay: float = 0.0) -> dict[str, str]:
    env = dict(os.environ, CRASH_LOG=str(log))
    if delay:
        env["CRASH_STEP_DELAY"] = str(delay)
    return env


def run_runner(
    program: Program, db: Path, log: Path, fn: str, *flags: str
) -> tuple[int, dict[str, Any]]:
    """Run the runner to its end: (exit code, its JSON report or {})."""
    proc = subprocess.run(
        runner_command(program, db, fn, *flags),
        env=runner_env(log),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    lines = proc.stdout.splitlines()
    assert lines[:1] == ["ready"], proc.stdout + proc.stderr
    report = json.loads(lines[1]) if len(lines) > 1 else {}
    if proc.returncode not in (0, 3, -signal.SIGKILL):
        pytest.fail(f"runner exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode, report


def store_rows(db: Path) -> list[tuple[Any, ...]]:
    """What an uninterrupted and a crashed-and-resumed run must both end with."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT run_id, function, parent, status, seq, attempt, result, error FROM runs "
            "ORDER BY run_id"
        ).fetchall()
    conn.close()
    return rows


def record_of(db: Path, run_id: str) -> dict[str, Any]:
    row = stored_row(db, run_id)
    assert row is not None, run_id
    return row


def stored_row(db: Path, run_id: str) -> dict[str, Any] | None:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    conn.close()
    return None if row is None else dict(row)


def native(program: Program, fn: str, log: Path) -> tuple[str, list[str]]:
    """The oracle: the original coroutine under asyncio (native mode)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRASH_LOG", str(log))
        mp.delenv("CRASH_STEP_DELAY", raising=False)
        result = asyncio.run(getattr(program.module, fn).__wrapped__(*ARGS[fn]))
    return repr(result), read_log(log)


def tags(lines: list[str]) -> list[str]:
    return [line.rsplit(" ", 1)[0] for line in lines]


def baseline(program: Program, fn: str, folder: Path) -> Baseline:
    """The uninterrupted durable run of `fn` (once per test module)."""
    if fn not in program.baselines:
        oracle, native_lines = native(program, fn, folder / f"{fn}.native.log")
        db, log = folder / f"{fn}.db", folder / f"{fn}.log"
        code, report = run_runner(program, db, log, fn)
        assert code == 0, report
        lines = read_log(log)
        assert report["result"] == oracle
        assert tags(lines) == tags(native_lines)
        assert len(set(lines)) == len(lines), "every step logs a distinct line"
        checkpoints = [(run_id, seq) for run_id, seq in report["checkpoints"]]
        assert len(checkpoints) >= 5
        rows = store_rows(db)
        assert all(row[3] == "completed" for row in rows)
        program.baselines[fn] = Baseline(oracle, lines, checkpoints, rows, report["elapsed"])
    return program.baselines[fn]


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Program]:
    folder = tmp_path_factory.mktemp("crash_program")
    source = (PROGRAMS / "crashprog.py").read_text()
    module = compile_and_import(folder / "crashprog.py", "crashprog", source)
    yield Program(folder, module, {})
    sys.modules.pop("crashprog", None)


@pytest.fixture(scope="module")
def baselines_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("crash_baselines")


# ------------------------------------------------- (a) kills at checkpoints


def crash_points(checkpoints: list[tuple[str, int]]) -> dict[str, int]:
    """The default crash points (1-based): the first checkpoint, the last, and
    one in the middle -- of the most deeply nested run, when there are child
    runs."""
    n = len(checkpoints)
    depth = max(run_id.count("/") for run_id, _ in checkpoints)
    deepest = [k for k in range(1, n + 1) if checkpoints[k - 1][0].count("/") == depth]
    middle = min(deepest, key=lambda k: abs(k - (n + 1) // 2))
    return {"first": 1, "middle": middle, "last": n}


def kill_at_checkpoint_and_resume(
    program: Program, base: Baseline, fn: str, k: int, when: str, folder: Path
) -> None:
    """SIGKILL right `when` ("before"/"after") checkpoint k commits, restart, check."""
    folder.mkdir(parents=True, exist_ok=True)
    db, log = folder / "state.db", folder / "effects.log"
    code, _ = run_runner(program, db, log, fn, "--kill", when, str(k))
    assert code == -signal.SIGKILL, f"the runner was not killed at checkpoint {k}"
    before_kill = read_log(log)
    assert before_kill == base.lines[: len(before_kill)]
    run_k, seq_k = base.checkpoints[k - 1]
    row = stored_row(db, run_k)
    if row is None:  # a child run is stored with its first write
        assert "/" in run_k and seq_k == 1 and when == "before", (run_k, seq_k, when)
    committed = 0 if row is None else row["seq"]
    if when == "after":
        assert committed == seq_k, "checkpoint k was committed before the kill"
        repeated = 0  # its step had not started: nothing to do again
    else:
        assert committed == seq_k - 1, "checkpoint k was not committed"
        # The step in flight (from checkpoint k-1 of that run) runs again,
        # every effect it made (a completed child's effects excepted).
        repeated = tail_of_step(before_kill, (run_k, seq_k - 1))
    assert record_of(db, RUN_ID)["status"] == "running"

    code, report = run_runner(program, db, log, fn)
    assert code == 0, report
    assert report["result"] == base.result
    after = read_log(log)
    assert after[len(before_kill) :] == base.lines[len(before_kill) - repeated :], (
        f"{fn}: killed {when} checkpoint {k} ({run_k} #{seq_k}); "
        f"expected {repeated} repeated line(s)"
    )
    assert store_rows(db) == base.store


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("point", ["first", "middle", "last"])
@pytest.mark.parametrize("fn", sorted(ARGS))
def test_kill_at_a_checkpoint_then_resume(
    program: Program, baselines_dir: Path, tmp_path: Path, fn: str, point: str, when: str
) -> None:
    base = baseline(program, fn, baselines_dir)
    k = crash_points(base.checkpoints)[point]
    kill_at_checkpoint_and_resume(program, base, fn, k, when, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("fn", sorted(ARGS))
def test_kill_at_every_checkpoint_then_resume(
    program: Program, baselines_dir: Path, tmp_path: Path, fn: str
) -> None:
    base = baseline(program, fn, baselines_dir)
    for k in range(1, len(base.checkpoints) + 1):
        for when in ("before", "after"):
            kill_at_checkpoint_and_resume(program, base, fn, k, when, tmp_path / f"{when}-{k}")


def test_crash_points_reach_children_and_grandchildren(
    program: Program, baselines_dir: Path
) -> None:
    # The default points of `family` include checkpoints of a child and of a
    # grandchild, not only of the top-level run.
    base = baseline(program, "family", baselines_dir)
    points = crash_points(base.checkpoints).values()
    depths = {base.checkpoints[k - 1][0].count("/") for k in points}
    assert depths >= {0, 2}, depths


def test_a_kill_in_a_step_repeats_only_that_step(
    program: Program, baselines_dir: Path, tmp_path: Path
) -> None:
    # Before checkpoint 3 of loop_sum, the step of checkpoint 2 ("square 1")
    # has logged: it is the step in flight, and runs once more; "square 0"
    # (checkpointed before) does not.
    base = baseline(program, "loop_sum", baselines_dir)
    kill_at_checkpoint_and_resume(program, base, "loop_sum", 3, "before", tmp_path)
    log = read_log(tmp_path / "effects.log")
    assert tags(log) == [
        "square 0",
        "square 1",
        "square 1",
        "odd 1",
        "square 2",
        "square 3",
        "odd 3",
        "square 4",
        "halve 30",
        "halve 15",
    ]


def test_a_completed_child_never_runs_again(
    program: Program, baselines_dir: Path, tmp_path: Path
) -> None:
    # Killed right before the parent's checkpoint that follows `charge`: the
    # child completed (and its completion was committed), so the resumed
    # parent takes its stored result; the card is charged once.
    base = baseline(program, "checkout", baselines_dir)
    k = base.checkpoints.index((RUN_ID, 2))
    kill_at_checkpoint_and_resume(program, base, "checkout", k + 1, "before", tmp_path)
    log = tags(read_log(tmp_path / "effects.log"))
    assert log.count("charge acct 100") == 1
    assert log == tags(base.lines)


@pytest.mark.parametrize(
    ("k", "when", "opened"),
    [
        (2, "before", 2),  # __aenter__'s step in flight: it runs again (at least once)
        (2, "after", 1),  # inside the block: __aenter__ committed, never again
        (3, "before", 1),
        (5, "before", 1),  # the last use in flight, __aexit__ not yet run
        (5, "after", 1),  # __aexit__'s checkpoint committed, __aexit__ not yet run
    ],
)
def test_a_kill_inside_an_async_with_exits_it_once(
    program: Program, baselines_dir: Path, tmp_path: Path, k: int, when: str, opened: int
) -> None:
    # Checkpoint 1 is the await of __aenter__, 2-4 the uses in the block, 5
    # the await of __aexit__. A kill never runs __aexit__; the resumed run
    # runs it exactly once, on the manager decoded from the checkpoint (its
    # token set by __aenter__ before the kill).
    base = baseline(program, "session", baselines_dir)
    assert tags(base.lines) == ["open db", "use 0", "use 1", "use 2", "close db 7 None"]
    assert len(base.checkpoints) == 5
    kill_at_checkpoint_and_resume(program, base, "session", k, when, tmp_path)
    log = tags(read_log(tmp_path / "effects.log"))
    assert log.count("open db") == opened
    assert log.count("close db 7 None") == 1
    assert log[-1] == "close db 7 None"


def test_rerun_after_sigkill_takes_over_at_once(
    program: Program, baselines_dir: Path, tmp_path: Path
) -> None:
    base = baseline(program, "family", baselines_dir)
    db, log = tmp_path / "state.db", tmp_path / "effects.log"
    code, _ = run_runner(program, db, log, "family", "--kill", "after", "7")
    assert code == -signal.SIGKILL
    dead = record_of(db, RUN_ID)
    assert dead["status"] == "running"  # the store still says so: only the lock knows
    dead_pid = int(dead["owner"].split("@")[0])
    with pytest.raises(ProcessLookupError):
        os.kill(dead_pid, 0)
    # The new process gets the run's ownership lock without waiting, and
    # finishes the run (a lock left behind by the dead owner would make it
    # wait forever, and the runner time out).
    code, report = run_runner(program, db, log, "family", "--probe-lock")
    assert code == 0, report
    assert report["locked"] is True
    assert report["result"] == base.result
    assert record_of(db, RUN_ID)["owner"].split("@")[0] == str(report["pid"])


# ------------------------------------------------- (b) kills at random instants


def random_kills(
    program: Program, base: Baseline, fn: str, folder: Path, seed: int, kills: int
) -> int:
    """Kill the runner at random instants (seeded) until it has been killed
    `kills` times, then let it finish; check that each kill repeated at most
    the step in flight. Returns how many kills landed before the run completed."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    db, log = folder / "state.db", folder / "effects.log"
    delay = 0.004  # every step sleeps a little, so kills land anywhere, commits included
    window = len(base.lines) * delay + len(base.checkpoints) * 0.004 + 0.02
    done: list[str] = []  # the log so far with repeats dropped: a prefix of the baseline
    seen = 0  # lines of the log read so far
    landed = 0
    for _attempt in range(kills + 5):
        proc = subprocess.Popen(
            runner_command(program, db, fn),
            env=runner_env(log, delay),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n"
            if landed < kills:
                time.sleep(rng.uniform(0, window))
                proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.communicate()
        lines = read_log(log)
        new, seen = lines[seen:], len(lines)
        # This process may first have done the step in flight at the previous
        # kill again: all the lines that step had logged, in order (or a
        # prefix of them, if it was killed again meanwhile). Nothing else may
        # repeat.
        if done:
            t = tail_of_step(done, step_of(done[-1]))
            tail = done[len(done) - t :]
            if new[:t] == tail:
                new = new[t:]
            elif new == tail[: len(new)]:
                new = []
        assert new == base.lines[len(done) : len(done) + len(new)], (
            f"{fn} seed {seed}: after {landed} kill(s), unexpected lines {new}"
        )
        done += new
        if proc.returncode == 0:
            report = json.loads(out.splitlines()[-1])
            assert report["result"] == base.result
            break
        assert proc.returncode == -signal.SIGKILL, err
        landed += 1
    else:
        pytest.fail(f"{fn} seed {seed}: not completed after {kills + 5} attempts")
    assert done == base.lines
    assert store_rows(db) == base.store
    return landed


@pytest.mark.parametrize("fn", ["family", "checkout"])
def test_kills_at_random_instants(
    program: Program, baselines_dir: Path, tmp_path: Path, fn: str
) -> None:
    base = baseline(program, fn, baselines_dir)
    landed = random_kills(program, base, fn, tmp_path, seed=sum(map(ord, fn)), kills=5)
    assert landed >= 1


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("fn", sorted(ARGS))
def test_kills_at_random_instants_sweep(
    program: Program, baselines_dir: Path, tmp_path: Path, fn: str, seed: int
) -> None:
    base = baseline(program, fn, baselines_dir)
    random_kills(program, base, fn, tmp_path, seed=seed, kills=10)


# ------------------------------------------------- (c) damaged checkpoint rows


def damage(blob: bytes, how: str) -> bytes:
    if how == "truncated":
        return blob[: len(blob) // 2]
    # Change one digit of a stored value: still valid JSON of the same shape,
    # so only the checksum can tell.
    at = blob.index(b'"locals"')
    for i in range(at, len(blob)):
        if blob[i : i + 1].isdigit():
            digit = blob[i] - ord("0")
            return blob[:i] + str((digit + 3) % 10).encode() + blob[i + 1 :]
    raise AssertionError(f"no digit in the locals of {blob!r}")


def set_checkpoint(db: Path, run_id: str, blob: bytes) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET checkpoint = ? WHERE run_id = ?", (blob, run_id))
    conn.close()


@pytest.mark.parametrize(
    ("fn", "k", "how"),
    [
        ("loop_sum", 5, "flipped"),
        ("loop_sum", 5, "truncated"),
        ("family", 7, "flipped"),  # family's checkpoint 7 is a grandchild's
    ],
)
def test_a_damaged_checkpoint_is_refused_and_reported(
    program: Program,
    baselines_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fn: str,
    k: int,
    how: str,
) -> None:
    base = baseline(program, fn, baselines_dir)
    db, log = tmp_path / "state.db", tmp_path / "effects.log"
    code, _ = run_runner(program, db, log, fn, "--kill", "after", str(k))
    assert code == -signal.SIGKILL
    damaged_run, seq = base.checkpoints[k - 1]
    good = record_of(db, damaged_run)["checkpoint"]
    assert json.loads(good)["seq"] == seq
    set_checkpoint(db, damaged_run, damage(good, how))
    logged = read_log(log)

    code, report = run_runner(program, db, log, fn)
    assert code == 3, report
    assert report["error"] == "CheckpointError"
    assert f"run {damaged_run!r}" in report["message"]
    assert "corrupt" in report["message"]
    assert read_log(log) == logged, "a side effect ran from a damaged checkpoint"
    damaged = record_of(db, damaged_run)
    assert damaged["status"] == "blocked"
    assert damaged["reason"].startswith("CheckpointError")
    assert damaged["seq"] == seq  # still at its last good checkpoint
    top = record_of(db, RUN_ID)
    assert top["status"] == "blocked"
    assert top["result"] is None
    # `resumable runs show` says what is wrong with the stored checkpoint.
    capsys.readouterr()
    assert cli_main(["runs", "show", damaged_run, "--store", f"sqlite:///{db}"]) == 0
    shown = capsys.readouterr().out
    assert f"checkpoint  #{seq}: checkpoint is corrupt" in shown
    assert "status    blocked (CheckpointError: " in shown

    # Once the row is repaired, a retry goes on from it: the same result, and
    # the log of an uninterrupted run (nothing repeated, nothing skipped).
    set_checkpoint(db, damaged_run, good)
    code, report = run_runner(program, db, log, fn, "--retry")
    assert code == 0, report
    assert report["result"] == base.result
    assert read_log(log) == base.lines
    assert store_rows(db) == base.store
