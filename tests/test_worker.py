"""Dispatch and the worker; `resumable runs list|show|retry`.

`fn.dispatch(...)` enqueues on the default runtime (`resumable.configure`,
else $RESUMABLE_STORE, else [tool.resumable] in ./pyproject.toml) and returns at once; `resumable worker` subprocesses
(`python -m resumable`, or the console script) drive the runs. The user's
module is tests/crash_programs/worker_jobs.py, copied into a temporary folder
and compiled there once per test module; each test has its own SQLite file.
"""

from __future__ import annotations

import json
import os
import re
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

import resumable
from resumable import Runtime
from resumable.cli import main
from tests.compiled import compile_and_import

PROGRAMS = Path(__file__).resolve().parent / "crash_programs"
SCRIPT = Path(sys.executable).parent / "resumable"
TIMEOUT = 60


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("worker_jobs")
    source = (PROGRAMS / "worker_jobs.py").read_text()
    yield compile_and_import(folder / "worker_jobs.py", "worker_jobs", source)
    sys.modules.pop("worker_jobs", None)


@dataclass
class Env:
    folder: Path
    url: str
    log: Path
    env: dict[str, str]
    rt: Runtime
    module: Path  # the user's module file

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def tags(self) -> list[str]:
        return [line.rsplit(" ", 1)[0] for line in self.lines()]


@pytest.fixture
def ctx(jobs: ModuleType, tmp_path: Path) -> Iterator[Env]:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    log = tmp_path / "jobs.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESUMABLE_")}
    env["JOBS_LOG"] = str(log)
    resumable.configure(store=url)
    rt = Runtime(url)
    assert jobs.__file__ is not None
    yield Env(tmp_path, url, log, env, rt, Path(jobs.__file__))
    rt.close()
    resumable.configure()


def cli(
    *args: str, env: dict[str, str], cwd: Path | None = None, script: bool = False
) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT)] if script else [sys.executable, "-m", "resumable"]
    return subprocess.run(
        [*command, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def runs(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`resumable runs ARGS` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    status = main(["runs", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def drain(ctx: Env, *flags: str) -> subprocess.CompletedProcess[str]:
    proc = cli(
        "worker", "--store", ctx.url, "--module", str(ctx.module), "--drain", *flags, env=ctx.env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def summary(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout.strip().splitlines()[-1]


def source_line(path: Path, snippet: str) -> int:
    hits = [i for i, text in enumerate(path.read_text().splitlines(), 1) if snippet in text]
    assert len(hits) == 1, (snippet, hits)
    return hits[0]


# ------------------------------------------------------------------ dispatch


def test_dispatch_returns_a_pending_run_at_once_and_a_worker_runs_it(
    jobs: ModuleType, ctx: Env
) -> None:
    ids = [jobs.double.dispatch(x) for x in (1, 2, 3)]
    assert len(set(ids)) == 3
    assert [ctx.rt.status(i) for i in ids] == ["pending"] * 3
    assert ctx.rt.get(ids[0]).function == "worker_jobs:double"
    assert ctx.lines() == []  # nothing ran yet
    with pytest.raises(ValueError, match="has not finished"):
        ctx.rt.result(ids[0])
    # The console script, as a user would run it.
    proc = cli(
        "worker",
        "--store",
        ctx.url,
        "--module",
        str(ctx.module),
        "--drain",
        env=ctx.env,
        script=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert summary(proc) == (
        "resumable worker: 3 completed, 0 failed or blocked, 0 cancelled, 0 waiting, 0 left to resume"
    )
    assert [ctx.rt.result(i) for i in ids] == [2, 4, 6]
    assert sorted(ctx.tags()) == ["double 1", "double 2", "double 3"]
    # Dispatching the same call with an existing run id returns it and changes
    # nothing; another call (other arguments) under that id is refused.
    assert ctx.rt.dispatch(jobs.double, 1, run_id=ids[0]) == ids[0]
    with pytest.raises(resumable.RunConflict, match="other arguments"):
        ctx.rt.dispatch(jobs.double, 9, run_id=ids[0])
    assert ctx.rt.result(ids[0]) == 2


def test_dispatch_store_comes_from_configure_else_resumable_store(
    jobs: ModuleType, ctx: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_url = f"sqlite:///{ctx.folder / 'from-env.db'}"
    monkeypatch.setenv("RESUMABLE_STORE", env_url)
    resumable.configure()  # no store named: $RESUMABLE_STORE
    from_env = jobs.double.dispatch(5)
    resumable.configure(store=ctx.url)  # named: wins over the environment
    configured = jobs.double.dispatch(6)
    with Runtime(env_url) as rt_env:
        assert rt_env.status(from_env) == "pending"
        with pytest.raises(KeyError):
            rt_env.status(configured)
        assert ctx.rt.status(configured) == "pending"
        with pytest.raises(KeyError):
            ctx.rt.status(from_env)
        # A worker with no --store takes $RESUMABLE_STORE; the module by its
        # dotted name, found from the working directory.
        proc = cli(
            "worker",
            "--module",
            "worker_jobs",
            "--drain",
            env={**ctx.env, "RESUMABLE_STORE": env_url},
            cwd=ctx.module.parent,
        )
        assert proc.returncode == 0, proc.stderr
        assert rt_env.result(from_env) == 10
    assert ctx.rt.status(configured) == "pending"  # another store: untouched
    assert ctx.tags() == ["double 5"]


def test_worker_modules_from_resumable_modules_or_from_the_runs_source(
    jobs: ModuleType, ctx: Env
) -> None:
    run = jobs.double.dispatch(7)
    # A worker that did not import the run's module leaves it for another.
    other = ctx.folder / "other_module.py"
    other.write_text("VALUE = 1\n")
    proc = drain_with(ctx, "--module", str(other))
    assert "worker_jobs:double is not imported here; skipped" in proc.stdout
    assert ctx.rt.status(run) == "pending"
    # $RESUMABLE_MODULES (comma-separated) configures the modules.
    proc = cli(
        "worker",
        "--store",
        ctx.url,
        "--drain",
        env={**ctx.env, "RESUMABLE_MODULES": f"{other},{ctx.module}"},
    )
    assert proc.returncode == 0, proc.stderr
    assert ctx.rt.result(run) == 14
    # No module anywhere: each run's module is imported from the source file
    # it was started from, when that file is in the project (under the
    # worker's working directory), as `--store URL --drain`.
    run = jobs.double.dispatch(8)
    project = ctx.module.parent
    proc = cli("worker", "--store", ctx.url, "--drain", env=ctx.env, cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "imported worker_jobs from worker_jobs.py" in proc.stdout
    assert ctx.rt.result(run) == 16
    # A run whose source file is gone is left for a worker that has its module.
    gone = jobs.double.dispatch(9)
    with sqlite3.connect(ctx.folder / "state.db") as db:
        moved = str(ctx.folder / "moved" / "worker_jobs.py")
        db.execute("UPDATE runs SET source = ? WHERE run_id = ?", (moved, gone))
    proc = cli("worker", "--store", ctx.url, "--drain", env=ctx.env, cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "worker_jobs:double is not imported here; skipped" in proc.stdout
    assert ctx.rt.status(gone) == "pending"


def test_a_module_that_cannot_be_found_is_named(ctx: Env) -> None:
    proc = cli("worker", "--store", ctx.url, "--module", "no_such_jobs", "--drain", env=ctx.env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("resumable worker: cannot import 'no_such_jobs'")
    assert "Traceback" not in proc.stderr
    # A module that exists but imports something missing shows its own traceback.
    broken = ctx.folder / "broken_jobs.py"
    broken.write_text("import no_such_dependency\n")
    proc = cli("worker", "--store", ctx.url, "--module", str(broken), "--drain", env=ctx.env)
    assert proc.returncode == 1
    assert "No module named 'no_such_dependency'" in proc.stderr
    assert 'broken_jobs.py", line 1' in proc.stderr


def test_store_and_modules_from_pyproject_toml(
    jobs: ModuleType, ctx: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = ctx.folder / "project"
    project.mkdir()
    db = ctx.folder / "from-pyproject.db"
    (project / "pyproject.toml").write_text(
        f'[tool.resumable]\nstore = "sqlite:///{db}"\nmodules = ["{ctx.module}"]\n'
    )
    monkeypatch.chdir(project)
    resumable.configure()  # nothing named, no $RESUMABLE_STORE: pyproject.toml
    run = jobs.double.dispatch(4)
    with Runtime(f"sqlite:///{db}") as rt:
        assert rt.status(run) == "pending"
        proc = cli("worker", "--drain", env=ctx.env, cwd=project)
        assert proc.returncode == 0, proc.stderr
        assert f"sqlite:///{db}" in proc.stdout.splitlines()[0]
        assert rt.result(run) == 8
    # The environment wins over the file.
    proc = cli("runs", "list", env={**ctx.env, "RESUMABLE_STORE": ctx.url}, cwd=project)
    assert proc.returncode == 0 and run not in proc.stdout
    # A malformed table is named.
    (project / "pyproject.toml").write_text('[tool.resumable]\nmodules = "worker_jobs"\n')
    proc = cli("worker", "--drain", env=ctx.env, cwd=project)
    assert proc.returncode == 1
    assert "[tool.resumable] modules must be a list" in proc.stderr


def drain_with(ctx: Env, *args: str) -> subprocess.CompletedProcess[str]:
    proc = cli("worker", "--store", ctx.url, "--drain", *args, env=ctx.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


# ------------------------------------------------------------------ the worker


def test_twenty_runs_progress_concurrently_in_one_worker(jobs: ModuleType, ctx: Env) -> None:
    # Each run waits until all 20 have reached the same await: driven one
    # after the other they would time out there and fail.
    ids = [jobs.gate.dispatch(i, 20) for i in range(20)]
    proc = drain(ctx, "--concurrency", "20")
    results = [ctx.rt.result(run) for run in ids]
    assert [r[0] for r in results] == list(range(20))
    assert sorted(r[1] for r in results) == list(range(1, 21))  # each arrived once
    assert len({r[2] for r in results}) == 1  # all in one process
    assert (
        summary(proc)
        == "resumable worker: 20 completed, 0 failed or blocked, 0 cancelled, 0 waiting, 0 left to resume"
    )


def test_drain_exits_when_only_failed_or_blocked_runs_are_left(jobs: ModuleType, ctx: Env) -> None:
    good = jobs.double.dispatch(1)
    bad = jobs.broken.dispatch(2)
    stuck = jobs.unstorable.dispatch(3)
    proc = drain(ctx)
    assert (
        summary(proc)
        == "resumable worker: 1 completed, 2 failed or blocked, 0 cancelled, 0 waiting, 0 left to resume"
    )
    assert ctx.rt.status(good) == "completed"
    assert ctx.rt.status(bad) == "failed"
    assert ctx.rt.status(stuck) == "blocked"
    assert "SerializationError" in (ctx.rt.get(stuck).reason or "")
    with pytest.raises(ValueError, match="broken 2"):
        ctx.rt.result(bad)
    before = ctx.lines()
    # Nothing runnable is left: the next worker exits at once, touching nothing.
    proc = drain(ctx)
    assert (
        summary(proc)
        == "resumable worker: 0 completed, 0 failed or blocked, 0 cancelled, 0 waiting, 0 left to resume"
    )
    assert ctx.lines() == before
    assert [ctx.rt.status(r) for r in (good, bad, stuck)] == ["completed", "failed", "blocked"]


def test_sigterm_stops_the_worker_and_leaves_runs_resumable(jobs: ModuleType, ctx: Env) -> None:
    n = 16
    ids = [jobs.steps.dispatch(f"s{i}", n, 0.08) for i in range(3)]
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "resumable", "worker", "--store", ctx.url),
            *("--module", str(ctx.module), "--concurrency", "3"),
        ],
        env=ctx.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not all(sum(tag.startswith(f"s{i} ") for tag in ctx.tags()) >= 2 for i in range(3)):
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.01)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=15)
    finally:
        if worker.returncode is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, err
    assert out.strip().splitlines()[-1] == (
        "resumable worker: 0 completed, 0 failed or blocked, 0 cancelled, 0 waiting, 3 left to resume"
    )
    stopped = ctx.tags()
    records = [ctx.rt.get(run) for run in ids]
    assert [r.status for r in records] == ["running"] * 3  # not failed: resumable
    assert all(1 <= r.seq < n for r in records)

    # `runs show` of a run that stands at an await: the await's source line
    # and the locals live there.
    shown = cli("runs", "show", ids[0], "--store", ctx.url, env=ctx.env)
    assert shown.returncode == 0, shown.stderr
    line = source_line(ctx.module, "total += await effect(")
    assert f"{ctx.module}:{line}: total += await effect(" in shown.stdout
    assert re.search(r"^status +running$", shown.stdout, re.M)
    assert re.search(r"^  name = 's0'$", shown.stdout, re.M)
    assert re.search(r"^  total = \d+$", shown.stdout, re.M)

    proc = drain(ctx, "--concurrency", "3")
    assert (
        summary(proc)
        == "resumable worker: 3 completed, 0 failed or blocked, 0 cancelled, 0 waiting, 0 left to resume"
    )
    assert [ctx.rt.result(run) for run in ids] == [sum(range(n))] * 3
    for i in range(3):
        mine = [tag for tag in ctx.tags() if tag.startswith(f"s{i} ")]
        before = [tag for tag in stopped if tag.startswith(f"s{i} ")]
        # Every step ran; checkpointed steps never again; at most the step in
        # flight at SIGTERM ran twice.
        assert sorted(set(mine)) == sorted(f"s{i} step {k}" for k in range(n))
        repeated = [tag for tag in set(mine) if mine.count(tag) > 1]
        assert repeated in ([], [before[-1]]), (mine, before)


# ------------------------------------------------------------------ resumable runs


def test_runs_list_show_retry(
    jobs: ModuleType, ctx: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    good = jobs.double.dispatch(4)
    order = jobs.order_flow.dispatch("o-1")
    drain(ctx)
    assert ctx.rt.status(order) == "failed"
    store = ("--store", ctx.url)

    code, out, err = runs(capsys, "list", *store)
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["RUN", "STATUS", "FUNCTION", "AGE"]
    by_id = {row.split()[0]: row.split() for row in rows}
    assert set(by_id) == {good, order}  # top-level runs only
    assert by_id[good][1:3] == ["completed", "worker_jobs:double"]
    assert by_id[order][1:3] == ["failed", "worker_jobs:order_flow"]
    assert re.fullmatch(r"\d+[smhd]", by_id[order][3])
    assert "ValueError: card declined for o-1" in out

    code, out, err = runs(capsys, "list", *store, "--json")
    assert code == 0, err
    listed = {r["run_id"]: r for r in json.loads(out)}
    assert set(listed) == {good, order}
    assert listed[order]["status"] == "failed"
    assert listed[order]["function"] == "worker_jobs:order_flow"
    assert 0 <= listed[order]["age_seconds"] < 600
    _, out, _ = runs(capsys, "list", *store, "--json", "--all")
    assert {r["run_id"] for r in json.loads(out)} == {
        good,
        order,
        f"{order}/1.0",
        f"{order}/2.0",
    }
    _, out, _ = runs(capsys, "list", *store, "--json", "--status", "failed")
    assert [r["run_id"] for r in json.loads(out)] == [order]

    line = source_line(ctx.module, "receipt = await pay(order, total)")
    code, text, err = runs(capsys, "show", order, *store)
    assert code == 0, err
    assert re.search(r"^status +failed \(ValueError: card declined for o-1\)$", text, re.M)
    assert re.search(r"^function +worker_jobs:order_flow", text, re.M)
    assert f"checkpoint #2, {ctx.module}:{line}: receipt = await pay(order, total)" in text
    local_lines = text.split("\nlocals\n")[1].split("\nerror")[0].splitlines()
    assert local_lines == ["  order = 'o-1'", "  total = 30"]  # live there; not `receipt`
    assert re.search(r"^error +ValueError\('card declined for o-1'\)$", text, re.M)
    assert re.search(rf"^  {re.escape(order)}/1\.0 +completed +worker_jobs:price$", text, re.M)
    assert re.search(rf"^  {re.escape(order)}/2\.0 +failed +worker_jobs:pay$", text, re.M)

    code, out, err = runs(capsys, "show", order, *store, "--json")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    assert doc["status"] == "failed"
    assert doc["function"] == "worker_jobs:order_flow"
    assert doc["at"] == f"{ctx.module}:{line}: receipt = await pay(order, total)"
    assert doc["line"] == line
    assert doc["locals"] == {"order": "o-1", "total": 30}
    assert doc["error"] == "ValueError('card declined for o-1')"
    assert doc["reason"] == "ValueError: card declined for o-1"
    assert [(c["run_id"], c["status"]) for c in doc["children"]] == [
        (f"{order}/1.0", "completed"),
        (f"{order}/2.0", "failed"),
    ]

    # After the fix: retry makes it pending (with its failed child), and a
    # worker finishes it from its last checkpoint: the price is not asked
    # again, the failed payment step is tried again.
    (ctx.folder / "payments-fixed").touch()
    code, out, err = runs(capsys, "retry", order, *store)
    assert code == 0, err
    assert f"run {order} is pending again" in out
    assert ctx.rt.status(order) == "pending"
    assert ctx.rt.status(f"{order}/2.0") == "pending"
    drain(ctx)
    assert ctx.rt.result(order) == "o-1: paid 30"
    assert ctx.tags().count("price o-1") == 1
    assert ctx.tags().count("pay o-1") == 2

    # Only failed or blocked runs can be retried.
    code, out, err = runs(capsys, "retry", order, *store)
    assert code == 1
    assert f"run {order!r} is completed" in err


@pytest.mark.parametrize("command", [["show"], ["show", "--json"], ["retry"]])
def test_runs_of_an_unknown_id_fail_naming_it(
    ctx: Env, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    code, out, err = runs(capsys, command[0], "no-such-run", *command[1:], "--store", ctx.url)
    assert code == 1
    assert out == ""
    assert "no run 'no-such-run'" in err


def test_runs_commands_in_a_subprocess(jobs: ModuleType, ctx: Env) -> None:
    # The same commands as the installed script runs them, store from the environment.
    run = jobs.double.dispatch(8)
    env = {**ctx.env, "RESUMABLE_STORE": ctx.url}
    listing = cli("runs", "list", "--json", env=env, script=True)
    assert listing.returncode == 0, listing.stderr
    assert [(r["run_id"], r["status"]) for r in json.loads(listing.stdout)] == [(run, "pending")]
    shown = cli("runs", "show", run, env=env, script=True)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^at +not started$", shown.stdout, re.M)
    missing = cli("runs", "retry", "nope", env=env, script=True)
    assert missing.returncode == 1
    assert "no run 'nope'" in missing.stderr


HALF = """
import os

import resumable


@resumable.function
async def uses_helper(x):
    return helper(x)


if os.environ.get("BREAK_IMPORT"):
    raise RuntimeError("config missing: set SHOP_DB")


def helper(x):
    return x * 2
"""


def test_a_module_that_fails_to_import_drives_none_of_its_functions(tmp_path: Path) -> None:
    """Its decorated functions defined before the failure were registered:
    the worker still never drives them (the rest of the module is missing),
    and the run waits, pending, for a worker that imports it."""
    from tests.procs import clean_env, compile_module, python, start_worker, stop

    compile_module(tmp_path, "halfmod", HALF)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    made = python(
        "import resumable, halfmod\nrt = resumable.Runtime()\n"
        "rt.dispatch(halfmod.uses_helper, 21, run_id='half')",
        cwd=tmp_path,
        env=clean_env(RESUMABLE_STORE=url),
    )
    assert made.returncode == 0, made.stderr
    worker = start_worker(
        "--poll", "0.05", cwd=tmp_path, env=clean_env(RESUMABLE_STORE=url, BREAK_IMPORT="1")
    )
    time.sleep(2.0)  # many polls
    out, err = stop(worker)
    assert "importing halfmod" in out + err and "failed" in out + err
    assert "driving" not in out + err
    with Runtime(url) as rt:
        assert rt.status("half") == "pending"
    fine = start_worker(
        "--drain", "--poll", "0.05", cwd=tmp_path, env=clean_env(RESUMABLE_STORE=url)
    )
    stop_out = fine.communicate(timeout=60)
    assert fine.returncode == 0, stop_out
    with Runtime(url) as rt:
        assert rt.result("half") == 42
