"""Ownership of runs by the database file's identity, and fenced writes.

A run is driven by one owner at a time, whatever path a process reaches the
database by, and an owner that dies loses its runs at once. Behind that,
every write of a driver carries the owner generation of its claim: a driver
that lost its run (frozen while another took it over) writes nothing more,
stops, and says so.

The user's module is tests/crash_programs/owned_jobs.py (each step appends
`<pid> <tag> <idempotency key>` to an fsync'd log), copied into a temporary
folder and compiled there once per test module. `resumable worker`
subprocesses and tests/crash_programs/owner.py (one `rt.run` in its own
process) drive it; real SQLite files, SIGKILL, SIGSTOP and SIGCONT.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
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

from resumable import Runtime
from tests.compiled import compile_and_import
from tests.stores import KINDS, store_url

PROGRAMS = Path(__file__).resolve().parent / "crash_programs"
OWNER = PROGRAMS / "owner.py"
TIMEOUT = 60
RUNS, STEPS = 120, 10


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("owned_jobs")
    source = (PROGRAMS / "owned_jobs.py").read_text()
    yield compile_and_import(folder / "owned_jobs.py", "owned_jobs", source)
    sys.modules.pop("owned_jobs", None)


@dataclass
class Env:
    db: Path
    log: Path
    env: dict[str, str]
    module: Path  # the user's module file (compiled beside it)

    def url(self, path: Path | None = None) -> str:
        return f"sqlite:///{path or self.db}"

    def entries(self) -> list[tuple[int, str, str]]:
        """The log: (pid, tag, idempotency key) of each side effect, in order."""
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            pid, rest = line.split(" ", 1)
            tag, key = rest.rsplit(" ", 1)
            out.append((int(pid), tag, key))
        return out


@pytest.fixture
def ctx(jobs: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    log = tmp_path / "jobs.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESUMABLE_")}
    env["JOBS_LOG"] = str(log)
    monkeypatch.setenv("JOBS_LOG", str(log))
    assert jobs.__file__ is not None
    return Env(tmp_path / "state.db", log, env, Path(jobs.__file__))


_started: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _reap() -> Iterator[None]:
    """Kill what a failed test left running (and thaw it first)."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.communicate()


def _start(
    command: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _started.append(proc)
    return proc


def worker(
    ctx: Env, url: str, *flags: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "resumable", "worker", "--store", url]
    command += ["--module", str(ctx.module), "--drain", *flags]
    return _start(command, env or ctx.env, ctx.db.parent)


def owner(
    ctx: Env, url: str, run_id: str, *flags: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """owner.py driving run `run_id` of walk(run_id, 6) through `url`."""
    folder = str(ctx.module.parent)
    command = [sys.executable, str(OWNER), folder, url, run_id, run_id, "6", *flags]
    return _start(command, env or ctx.env)


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.communicate()


def report(out: str) -> dict[str, Any]:
    """The JSON line owner.py ends with."""
    found: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return found


def wait_for(what: str, ready: Any, *procs: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not ready():
        for proc in procs:
            assert proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def row(db: Path, run_id: str) -> dict[str, Any]:
    """The stored row of a run, every column."""
    conn = sqlite3.connect(db)
    try:
        conn.row_factory = sqlite3.Row
        found = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        assert found is not None, run_id
        return dict(found)
    finally:
        conn.close()


def repeated(entries: list[tuple[int, str, str]]) -> dict[tuple[str, str], int]:
    """Side effects that happened more than once (tag and key), how often."""
    counts = collections.Counter((tag, key) for _, tag, key in entries)
    return {effect: n for effect, n in counts.items() if n > 1}


# ------------------------------------------- two workers, every path to the file


@pytest.mark.parametrize("way", ["same path", "symlink", "hard link", "deleted side file"])
def test_two_workers_drive_every_step_once(jobs: ModuleType, ctx: Env, way: str) -> None:
    # Two workers drain the same store at once; nothing crashes, so every
    # step must run exactly once, however the second worker reaches the
    # file. Runs wait at their second step until both workers are up, so
    # that they compete for the runs.
    with Runtime(ctx.url()) as rt:
        ids = [rt.dispatch(jobs.walk, f"r{i}", STEPS, run_id=f"r{i}") for i in range(RUNS)]
    gate = ctx.db.with_name("go")
    env = {**ctx.env, "GATE": str(gate)}
    second = ctx.db
    if way == "symlink":
        second = ctx.db.with_name("link.db")
        second.symlink_to(ctx.db.name)
    first = worker(ctx, ctx.url(), "--concurrency", "4", env=env)
    if way in ("hard link", "deleted side file"):
        # once the first worker works: a second name for the file, or the
        # side file the lock once lived in deleted under it
        wait_for("the first worker to start", ctx.entries, first)
        if way == "hard link":
            second = ctx.db.with_name("link.db")
            os.link(ctx.db, second)
        else:
            ctx.db.with_name(ctx.db.name + ".locks").unlink(missing_ok=True)
    other = worker(ctx, ctx.url(second), "--concurrency", "4", env=env)
    assert other.stdout is not None
    other.stdout.readline()  # it is up (or has exited)
    gate.touch()
    out_first, err_first = finish(first)
    out_other, err_other = finish(other)
    assert first.returncode == 0, out_first + err_first
    if way == "hard link":
        second.unlink()  # one name again, to look at the runs below

    entries = ctx.entries()
    twice = repeated(entries)
    assert not twice, (
        f"{len(twice)} of {RUNS * STEPS} steps ran more than once: {sorted(twice)[:5]}"
    )
    assert sorted(tag for _, tag, _ in entries) == sorted(
        f"r{i} step {k}" for i in range(RUNS) for k in range(STEPS)
    )
    with Runtime(ctx.url()) as rt:
        assert {rt.status(run) for run in ids} == {"completed"}
        results = [rt.result(run) for run in ids]
    assert {total for total, _ in results} == {sum(range(STEPS))}
    if way == "hard link":
        # SQLite keeps its WAL beside the name a process opened, so two
        # names of one file would lose commits: the second name is refused,
        # and the first worker did all the work.
        assert other.returncode != 0, out_other
        assert "hard links" in err_other, err_other
        assert {pid for pid, _, _ in entries} == {first.pid}
    else:
        assert other.returncode == 0, out_other + err_other
        # both workers drove runs: they did compete for them
        assert {pid for _, pid in results} == {first.pid, other.pid}
    # each run was claimed once (a claim bumps its owner generation)
    assert {row(ctx.db, run)["generation"] for run in ids} == {1}


# ------------------------------------------- two Runtimes in one process


@pytest.mark.parametrize("way", ["same path", "symlink"])
def test_two_runtimes_in_one_process_drive_a_run_once(jobs: ModuleType, ctx: Env, way: str) -> None:
    second = ctx.db
    with Runtime(ctx.url()) as one:
        if way == "symlink":
            second = ctx.db.with_name("link.db")
            second.symlink_to(ctx.db)
        with Runtime(ctx.url(second)) as two:

            async def both() -> list[Any]:
                return await asyncio.gather(
                    *(rt.call(jobs.walk, "x", STEPS, run_id="x") for rt in (one, two, one, two))
                )

            results = asyncio.run(both())
            assert results == [[sum(range(STEPS)), os.getpid()]] * 4
            assert not repeated(ctx.entries())
            assert [tag for _, tag, _ in ctx.entries()] == [f"x step {k}" for k in range(STEPS)]

            # ownership excludes across the two objects, and is released
            assert one.store.lock("y")
            assert not two.store.lock("y")
            assert not one.store.lock("y")
            one.store.unlock("y")
            assert two.store.lock("y")
            assert not one.store.lock("y")
            two.store.unlock("y")
            # a store does not release what the other holds
            assert one.store.lock("z")
            two.store.unlock("z")
            assert not two.store.lock("z")
            one.store.unlock("z")


@pytest.mark.parametrize("way", ["same path", "symlink"])
@pytest.mark.parametrize("closing", ["the one that drove runs", "the one that did not"])
def test_closing_one_runtime_leaves_the_other_working_with_other_processes(
    jobs: ModuleType, ctx: Env, way: str, closing: str
) -> None:
    # SQLite's locks are POSIX locks, which a process loses on a file when
    # it closes any descriptor of it. Closing one store must not take them
    # from another store of the process: otherwise another process that
    # closes the database thinks itself its last user and deletes the WAL
    # under the store still open, and what that store writes next is seen
    # by no other process.
    second = ctx.db
    if way == "symlink":
        second = ctx.db.with_name("link.db")
        second.symlink_to(ctx.db.name)
    one = Runtime(ctx.url())
    two = Runtime(ctx.url(second))
    try:
        assert one.run(jobs.walk, "a", 2, run_id="a") == [1, os.getpid()]
        assert two.status("a") == "completed"
        closed, kept = (one, two) if closing == "the one that drove runs" else (two, one)
        closed.close()
        # another process opens the store and closes it
        proc = worker(ctx, ctx.url())
        out, err = finish(proc)
        assert proc.returncode == 0, out + err
        run_id = kept.dispatch(jobs.walk, "b", 2, run_id="b")
        # ... and other processes still see what the open store writes
        proc = worker(ctx, ctx.url())
        out, err = finish(proc)
        assert proc.returncode == 0, out + err
        assert [tag for pid, tag, _ in ctx.entries() if pid == proc.pid] == [
            "b step 0",
            "b step 1",
        ]
        assert kept.result(run_id) == [1, proc.pid]
    finally:
        one.close()
        two.close()


# ------------------------------------------- SIGKILL: taken over at once


@pytest.mark.parametrize("dead, taker", [("symlink", "real path"), ("real path", "symlink")])
def test_a_killed_owner_is_taken_over_at_once_through_another_path(
    ctx: Env, dead: str, taker: str
) -> None:
    link = ctx.db.with_name("link.db")
    paths = {"real path": ctx.db, "symlink": link}
    with Runtime(ctx.url()):
        link.symlink_to(ctx.db.name)
    victim = owner(ctx, ctx.url(paths[dead]), "k", "--kill-after", "3")
    finish(victim)
    assert victim.returncode == -signal.SIGKILL
    stored = row(ctx.db, "k")
    assert stored["status"] == "running"  # only the (dead) ownership knew otherwise
    assert stored["seq"] == 3

    started = time.monotonic()
    heir = owner(ctx, ctx.url(paths[taker]), "k", "--probe-lock")
    out, err = finish(heir)
    assert heir.returncode == 0, out + err
    found = report(out)
    assert found["locked"] is True  # taken without waiting for anything
    assert found["result"] == [sum(range(6)), heir.pid]
    assert time.monotonic() - started < 20

    # resumed from the last checkpoint: no step ran twice, none was skipped
    entries = ctx.entries()
    assert not repeated(entries)
    assert [tag for _, tag, _ in entries] == [f"k step {i}" for i in range(6)]
    pids = [pid for pid, _, _ in entries]
    assert pids == [victim.pid] * pids.count(victim.pid) + [heir.pid] * pids.count(heir.pid)
    assert pids.count(victim.pid) == 2  # checkpoint 3 stands before step 2
    # every claim bumped the owner generation
    assert (stored["generation"], row(ctx.db, "k")["generation"]) == (1, 2)


# ------------------------------------------- fencing: a frozen driver writes nothing


@pytest.mark.parametrize("frozen", ["rt.run", "worker"])
def test_a_driver_that_lost_its_run_writes_nothing_more(
    jobs: ModuleType, ctx: Env, frozen: str
) -> None:
    # Driver A is frozen (SIGSTOP) in the middle of step 3. Driver B, whose
    # ownership is broken on purpose (the test harness makes every `lock`
    # succeed), claims the run, resumes it from A's last checkpoint and
    # completes it. A, thawed, finishes its step: its next write must
    # change nothing, and A must stop driving the run and say so.
    paused = {**ctx.env, "PAUSE_AT": "3", "PAUSE": "1.5"}
    if frozen == "rt.run":
        a = owner(ctx, ctx.url(), "f", env=paused)
    else:
        with Runtime(ctx.url()) as rt:
            rt.dispatch(jobs.walk, "f", 6, run_id="f")
        a = worker(ctx, ctx.url(), "--concurrency", "1", env=paused)
    try:
        wait_for("A to reach step 3", lambda: "f step 3" in [t for _, t, _ in ctx.entries()], a)
        a.send_signal(signal.SIGSTOP)
        assert "f after pause 3" not in [t for _, t, _ in ctx.entries()], "A was frozen too late"
        held_by_a = row(ctx.db, "f")
        assert held_by_a["status"] == "running"

        b = owner(ctx, ctx.url(), "f", "--bypass-ownership")
        out_b, err_b = finish(b)
        assert b.returncode == 0, out_b + err_b
        result = report(out_b)["result"]
        assert result == [sum(range(6)), b.pid]
        done_by_b = row(ctx.db, "f")
        assert done_by_b["status"] == "completed"
        before_thaw = len(ctx.entries())
    finally:
        a.send_signal(signal.SIGCONT)
    out_a, err_a = finish(a)
    assert a.returncode == 0, out_a + err_a

    # A's step went on to its end (its own side effect), and A did nothing more
    after = ctx.entries()[before_thaw:]
    assert after == [(a.pid, "f after pause 3", after[0][2])], after
    # A's write changed nothing: the row is exactly as B left it
    assert row(ctx.db, "f") == done_by_b
    # A said why it stopped
    lost = "run 'f': its checkpoint was not written: another driver took the run over"
    if frozen == "rt.run":
        assert f"WARNING resumable: {lost}" in err_a, err_a
    else:
        assert lost in out_a, out_a
    if frozen == "rt.run":
        # rt.run in A returns the run's one outcome: B's result
        assert report(out_a)["result"] == result
    # only the step in flight when A froze ran twice (A's, and B's again)
    assert repeated(ctx.entries()) == {("f step 3", "f:4"): 2}
    # every claim bumped the owner generation: A's, then B's
    assert (held_by_a["generation"], done_by_b["generation"]) == (1, 2)


def test_a_process_forked_by_the_owner_does_not_keep_its_runs_after_it_died(
    ctx: Env,
) -> None:
    # The owner's step forks a child (as a multiprocessing pool would) that
    # outlives it. The child must not keep the owner's runs locked.
    victim = owner(ctx, ctx.url(), "c", "--kill-after", "3", env={**ctx.env, "FORK_AT": "0"})
    finish(victim)
    assert victim.returncode == -signal.SIGKILL
    forked = [int(tag.split()[-1]) for _, tag, _ in ctx.entries() if " forked " in tag]
    assert len(forked) == 1
    try:
        os.kill(forked[0], 0)  # alive
        heir = owner(ctx, ctx.url(), "c", "--probe-lock")
        try:
            out, err = heir.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            heir.kill()
            heir.communicate()
            pytest.fail("the run stayed owned while the dead owner's child lived")
    finally:
        os.kill(forked[0], signal.SIGKILL)
    assert heir.returncode == 0, out + err
    found = report(out)
    assert found["locked"] is True
    assert found["result"] == [sum(range(6)), heir.pid]


# ------------------------------------------- fenced writes, one by one


@pytest.mark.parametrize("kind", KINDS)
def test_a_write_under_an_earlier_claim_changes_nothing(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from resumable.store import RunRecord, open_store
    from resumable.store.base import checkpoint_write, finish_write, park_write

    store = open_store(store_url(request, kind, tmp_path, "s.db"))
    try:
        assert store.create(RunRecord(run_id="w", function="m:f", fingerprint="fp", args=b"{}"))
        assert store.lock("w")  # its ownership (on PostgreSQL a lease its writes need)
        first = store.claim("w", "a@host", "fp")
        assert first is not None
        assert store.apply(checkpoint_write(first, b"one", 1, 10, "fp"))
        second = store.claim("w", "b@host", "fp")  # a takeover
        assert second is not None
        assert (first.generation, second.generation) == (1, 2)
        taken = store.get("w")
        assert taken is not None and taken.generation == 2 and taken.owner == "b@host"

        stale = [
            checkpoint_write(first, b"two", 2, 20, "fp"),
            park_write(first, attempt=1, attempts=1, wake_at=1.0, reason="again"),
            finish_write(first, "completed", result=b"result"),
            finish_write(first, "failed", error=b"error", reason="broken"),
        ]
        for write in stale:
            assert store.apply(write) is False, write.kind
            assert asyncio.run(store.commit(write)) is False, write.kind
            assert store.get("w") == taken, write.kind

        assert store.apply(checkpoint_write(second, b"two", 2, 20, "fp"))
        assert asyncio.run(store.commit(finish_write(second, "completed", result=b"ok")))
        done = store.get("w")
        assert done is not None
        assert (done.status, done.seq, done.checkpoint, done.result) == (
            "completed",
            2,
            b"two",
            b"ok",
        )
        # once ended, not even the last lease writes
        assert store.apply(checkpoint_write(second, b"three", 3, 30, "fp")) is False
        assert store.get("w") == done
        # a claim of an ended run gives no lease, and bumps nothing
        assert store.claim("w", "c@host", "fp") is None
        assert store.get("w") == done
    finally:
        store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_write_checkpoint_is_apply_of_checkpoint_write(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A store's write_checkpoint (memory:// writes it without a Write) stores
    what apply(checkpoint_write(...)) stores, and is fenced the same way."""
    from resumable.store import RunRecord, open_store
    from resumable.store.base import checkpoint_write, finish_write, park_write

    store = open_store(store_url(request, kind, tmp_path, "s.db"))
    try:
        rows = {}
        for run_id, write in (
            ("by-write", lambda lease: store.apply(checkpoint_write(lease, b"cp", 3, 20, "fp2"))),
            ("in-place", lambda lease: store.write_checkpoint(lease, b"cp", 3, 20, "fp2")),
        ):
            assert store.create(
                RunRecord(run_id=run_id, function="m:f", fingerprint="x", args=b"{}")
            )
            assert store.lock(run_id)
            first = store.claim(run_id, "a@host", "fp")
            assert first is not None
            # an attempt count and a reason, which a checkpoint resets
            assert store.apply(
                park_write(first, attempt=2, attempts=2, wake_at=0.0, reason="again")
            )
            second = store.claim(run_id, "a@host", "fp")
            assert second is not None
            assert store.write_checkpoint(first, b"stale", 1, 10, "fp") is False  # fenced
            assert write(second)
            row = store.get(run_id)
            assert row is not None
            assert (row.checkpoint, row.seq, row.line, row.attempt, row.reason) == (
                b"cp",
                3,
                20,
                0,
                None,
            )
            rows[run_id] = {
                k: v
                for k, v in vars(row).items()
                if k not in ("run_id", "rowid", "created_at", "updated_at")
            }
            assert store.apply(finish_write(second, "completed", result=b"ok"))
            assert store.write_checkpoint(second, b"late", 4, 30, "fp") is False  # ended
        assert rows["by-write"] == rows["in-place"]
    finally:
        store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_first_write_stores_its_row_and_yields_to_a_row_made_meanwhile(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # A child run is stored with its first write (Run.unsaved), claimed as
    # generation 1. If its row was made meanwhile (another driver of the
    # same id), the write changes nothing: the driver has lost the run, and
    # takes it over through a claim, from what is stored.
    import dataclasses

    from resumable.store import Lease, RunRecord, open_store
    from resumable.store.base import checkpoint_write, finish_write

    store = open_store(store_url(request, kind, tmp_path, "s.db"))
    try:

        def unsaved(run_id: str) -> RunRecord:
            return RunRecord(
                run_id=run_id,
                function="m:f",
                fingerprint="fp",
                args=b"{}",
                status="running",
                owner="a@host",
                generation=1,
                parent="p",
            )

        lease = Lease("new", 1)
        for run_id in ("new", "made"):
            assert store.lock(run_id)
        first = dataclasses.replace(
            checkpoint_write(lease, b"one", 1, 10, "fp"), creates=unsaved("new")
        )
        assert asyncio.run(store.commit(first))
        stored = store.get("new")
        assert stored is not None
        assert (stored.status, stored.generation, stored.seq, stored.checkpoint) == (
            "running",
            1,
            1,
            b"one",
        )
        assert stored.parent == "p"

        # Made meanwhile, running at the same generation (another driver,
        # mid-run): still not this write's row.
        assert store.create(
            dataclasses.replace(unsaved("made"), owner="b@host", checkpoint=b"theirs", seq=3)
        )
        theirs = store.get("made")
        for write in (
            checkpoint_write(Lease("made", 1), b"mine", 1, 10, "fp"),
            finish_write(Lease("made", 1), "completed", result=b"mine"),
        ):
            assert (
                asyncio.run(store.commit(dataclasses.replace(write, creates=unsaved("made"))))
                is False
            )
            assert store.get("made") == theirs

        # Made by this driver's own first write, whose commit it did not see
        # end (its task was cancelled while the write was in flight): its
        # next write, which stores the row again, applies.
        again = dataclasses.replace(
            checkpoint_write(lease, b"two", 2, 20, "fp"), creates=unsaved("new")
        )
        assert asyncio.run(store.commit(again))
        stored = store.get("new")
        assert stored is not None and (stored.seq, stored.checkpoint) == (2, b"two")
    finally:
        store.close()
