"""Faults from user code and from the store, with real worker processes.

- A KeyboardInterrupt, SystemExit or GeneratorExit raised by a step (in the
  function's own code, in a plain coroutine it awaits, in a task it creates)
  blocks that run only: the worker goes on with the others and exits 0.
- Under `rt.run` in the user's own process the same exception reaches the
  caller, and the run stays resumable from its last checkpoint.
- A worker stopped by SIGTERM or SIGINT while a step waits inside
  `try/finally` writes nothing more: the `finally` is not run then, but by
  the next worker, from the last checkpoint.
- A store that refuses a write (a reason it cannot hold, a full disk, a
  read-only file) never makes a worker spin: store errors back off with
  growing delays and one log line each; runs go on when space comes back;
  `--drain` on a read-only store gives up with a clear message.

The user's module is tests/crash_programs/fault_jobs.py, copied into a
temporary folder and compiled there once per test module; each test has its
own SQLite file. Side effects are counted in a log file ($JOBS_LOG).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import resumable
from resumable import Runtime
from tests.compiled import compile_and_import

PROGRAMS = Path(__file__).resolve().parent / "crash_programs"
PROGRAM = PROGRAMS / "fault_program.py"
TIMEOUT = 30
KINDS = ("KeyboardInterrupt", "SystemExit", "GeneratorExit")


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("fault_jobs")
    source = (PROGRAMS / "fault_jobs.py").read_text()
    yield compile_and_import(folder / "fault_jobs.py", "fault_jobs", source)
    sys.modules.pop("fault_jobs", None)


@dataclass
class Env:
    folder: Path
    db: Path
    url: str
    log: Path
    env: dict[str, str]
    module: Path  # the user's module file

    def tags(self) -> list[str]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [line.rsplit(" ", 1)[0] for line in lines]

    def count(self, tag: str) -> int:
        return self.tags().count(tag)

    def row(self, run_id: str) -> dict[str, Any]:
        """The stored row of a run, read with sqlite3 itself."""
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            conn.row_factory = sqlite3.Row
            found = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        finally:
            conn.close()
        assert found is not None, run_id
        return dict(found)

    def worker_command(self, *flags: str) -> list[str]:
        return [
            *(sys.executable, "-m", "resumable", "worker", "--store", self.url),
            *("--module", str(self.module), "--poll", "0.05", *flags),
        ]


def make_env(jobs: ModuleType, folder: Path, db: Path) -> Env:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESUMABLE_", "FAULT_"))}
    log = folder / "jobs.log"
    env["JOBS_LOG"] = str(log)
    assert jobs.__file__ is not None
    return Env(folder, db, f"sqlite:///{db}", log, env, Path(jobs.__file__))


@pytest.fixture
def ctx(jobs: ModuleType, tmp_path: Path) -> Iterator[Env]:
    os.environ["JOBS_LOG"] = str(tmp_path / "jobs.log")  # for steps run in this process
    env = make_env(jobs, tmp_path, tmp_path / "state.db")
    resumable.configure(store=env.url)
    yield env
    resumable.configure()
    os.environ.pop("JOBS_LOG", None)


@dataclass
class Ended:
    returncode: int | None  # None: it was still running at the deadline (then killed)
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.out[-3000:]}\n--- stderr\n{self.err[-3000:]}"


def finish(proc: subprocess.Popen[str], timeout: float) -> Ended:
    """Wait for `proc` at most `timeout` s; kill it if it is still running."""
    try:
        out, err = proc.communicate(timeout=timeout)
        return Ended(proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return Ended(None, out, err)


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="backslashreplace",  # raw bytes that are not UTF-8 show, and fail the test
    )


def run_worker(
    ctx: Env,
    *flags: str,
    timeout: float = TIMEOUT,
    env: dict[str, str] | None = None,
    give_up: Callable[[], bool] | None = None,
) -> Ended:
    """`resumable worker ... FLAGS` until it exits; killed at `timeout`, or as
    soon as `give_up()` (a sign it spins: returncode None)."""
    proc = start(ctx.worker_command(*flags), env or ctx.env)
    if give_up is not None:
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline and not give_up():
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
            ended = finish(proc, timeout)
            return Ended(None, ended.out, ended.err)
    return finish(proc, timeout)


def wait_until(
    condition: Callable[[], bool],
    what: str,
    proc: subprocess.Popen[str] | LineReader | None = None,
    timeout: float = TIMEOUT,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if isinstance(proc, LineReader) and proc.proc.poll() is not None:
            raise AssertionError(f"the process exited before {what}: {proc.rest(5)}")
        if isinstance(proc, subprocess.Popen) and proc.poll() is not None:
            raise AssertionError(f"the process exited before {what}: {finish(proc, 5)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class LineReader:
    """The stdout lines of a running process, read as they come (a thread)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.stderr: str | None = None
        self.proc = proc
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def matching(self, pattern: str) -> list[str]:
        return [line for line in self.lines if re.search(pattern, line)]

    def rest(self, timeout: float) -> Ended:
        """Wait for the process to exit (killed at `timeout`: returncode None)."""
        killed = False
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            killed = True
        self.close()
        assert self.stderr is not None
        code = None if killed else self.proc.returncode
        return Ended(code, "\n".join(self.lines), self.stderr)

    def close(self) -> None:
        """Kill the process if it still runs; close its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.thread.join(5)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        if self.stderr is None:
            self.stderr = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()


UNAVAILABLE = r"store unavailable: .*trying again in ([\d.]+) s"


def delays(lines: list[str]) -> list[float]:
    return [float(m.group(1)) for line in lines if (m := re.search(UNAVAILABLE, line))]


# ---------------------------------------------- BaseException raised by a step


def test_base_exceptions_raised_by_steps_block_only_their_runs(jobs: ModuleType, ctx: Env) -> None:
    """Nine runs whose step raises KeyboardInterrupt, SystemExit or
    GeneratorExit (in the function's code after an await, in a plain
    coroutine it awaits, in a task it creates and awaits), between healthy
    runs: the worker blocks the nine, each bad step ran once, completes the
    others, and exits 0. (Before, the first one killed the worker and left
    the run `running`, for every later worker to die on again.)"""
    where = {"code": jobs.abort_in_code, "helper": jobs.abort_in_helper, "task": jobs.abort_in_task}
    good = [jobs.double.dispatch(0)]
    bad: dict[tuple[str, str], str] = {}
    for kind in KINDS:
        for place, fn in where.items():
            bad[place, kind] = fn.dispatch(kind)
        good.append(jobs.double.dispatch(len(good)))

    def spinning() -> bool:
        return any(ctx.count(f"{p} {k} raise") > 1 for p, k in bad)

    ended = run_worker(ctx, "--drain", "--concurrency", "3", give_up=spinning)
    assert ended.returncode == 0, ended
    for (place, kind), run in bad.items():
        row = ctx.row(run)
        assert row["status"] == "blocked", (place, kind, row["status"], str(ended))
        assert kind in (row["reason"] or ""), row["reason"]
        # Each bad step ran once, the step before it too.
        assert ctx.count(f"{place} {kind} before") == 1, (place, kind)
        assert ctx.count(f"{place} {kind} raise") == 1, (place, kind)
        assert re.search(rf"run {run}: blocked: .*{kind}", ended.out), ended.out
    for x, run in enumerate(good):
        row = ctx.row(run)
        assert row["status"] == "completed", (x, row["status"])
        assert ctx.count(f"double {x}") == 1
    with Runtime(ctx.url) as rt:
        assert [rt.result(run) for run in good] == [2 * x for x in range(len(good))]
        for run in bad.values():
            with pytest.raises(resumable.ResumableError) as caught:
                rt.result(run)
            assert type(caught.value).__name__ == "StepAborted"
    assert "Traceback" not in ended.err, ended.err
    # A blocked run is left alone: the next worker drives nothing again.
    before = ctx.tags()
    again = run_worker(ctx, "--drain")
    assert again.returncode == 0, again
    assert ctx.tags() == before


@pytest.mark.parametrize("kind", KINDS)
def test_under_rt_run_the_base_exception_reaches_the_caller_and_the_run_resumes(
    jobs: ModuleType, ctx: Env, kind: str
) -> None:
    """rt.run in the user's own process: the step's KeyboardInterrupt /
    SystemExit / GeneratorExit leaves the program as it would without
    resumable, the run stays `running` at its last checkpoint, and after
    the fix the next rt.run resumes it there: no earlier step runs again."""
    command = [sys.executable, str(PROGRAM), "run", str(ctx.module), ctx.url, "flow", "f-1"]
    first = finish(start([*command, json.dumps([kind])], ctx.env), TIMEOUT)
    if kind == "KeyboardInterrupt":
        # Python exits an uncaught KeyboardInterrupt by SIGINT, as the shell expects.
        assert first.returncode == -signal.SIGINT, first
    else:
        assert first.returncode == 1, first
    assert f"{kind}: {kind} raised by flow" in first.err or (
        kind == "SystemExit" and f"{kind} raised by flow" in first.err
    ), first
    assert '"result"' not in first.out
    row = ctx.row("f-1")
    assert row["status"] == "running", row["status"]  # resumable, not blocked nor failed
    assert row["seq"] == 3  # the checkpoint of the await before the raise
    assert ctx.tags() == ["flow 0", "flow 1", "flow raise"]

    fixed = finish(start([*command, json.dumps([kind])], {**ctx.env, "FAULT_FIXED": "1"}), TIMEOUT)
    assert fixed.returncode == 0, fixed
    assert json.loads(fixed.out.strip().splitlines()[-1]) == {"result": 6}
    assert ctx.tags() == ["flow 0", "flow 1", "flow raise", "flow 2"]
    assert ctx.row("f-1")["status"] == "completed"


# ---------------------------------------------- stopping a worker inside try/finally


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_worker_writes_no_checkpoint_from_a_finally(
    jobs: ModuleType, ctx: Env, sig: signal.Signals
) -> None:
    """The worker is stopped while the step waits inside try/finally whose
    finally awaits: it exits, its finally does not run and writes no
    checkpoint (seq unchanged), and the next worker resumes the run from its
    last checkpoint, where the finally runs once. (Before, the cancellation
    ran the finally, which committed a checkpoint from a stopping worker.)"""
    run = jobs.guarded.dispatch("g")
    other = jobs.guarded.dispatch("h")
    proc = start(ctx.worker_command("--concurrency", "2"), {**ctx.env, "FAULT_PAUSE": "60"})
    try:
        wait_until(
            lambda: (
                ctx.count("g started") == 1
                and ctx.count("h started") == 1
                and ctx.row(run)["seq"] == 3
                and ctx.row(other)["seq"] == 3
            ),
            "both runs to wait inside their try",
            proc,
        )
        proc.send_signal(sig)
        ended = finish(proc, 15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert ended.returncode == 0, ended
    for r in (run, other):
        row = ctx.row(r)
        assert row["status"] == "running", row["status"]
        assert row["seq"] == 3, "a stopping worker committed a checkpoint"
    assert ctx.count("g finally") == ctx.count("h finally") == 0, ctx.tags()

    again = run_worker(ctx, "--drain", "--concurrency", "2", env={**ctx.env, "FAULT_PAUSE": "0"})
    assert again.returncode == 0, again
    with Runtime(ctx.url) as rt:
        assert rt.result(run) == "g done"
        assert rt.result(other) == "h done"
    for name in "gh":
        assert [ctx.count(f"{name} {what}") for what in ("before", "started", "finally")] == [
            1,
            1,
            1,
        ], ctx.tags()


# ---------------------------------------------- a reason the store cannot hold


def test_a_lone_surrogate_in_a_reason_fails_the_run_once(jobs: ModuleType, ctx: Env) -> None:
    """ValueError("bad \\udc80 message") with Retry(max_attempts=1): the run
    fails after one attempt, its reason is stored escaped, `runs list` and
    `runs show` print it, and the worker exits. (Before, the reason column
    refused the text and the step ran again and again.)"""
    run = jobs.surrogate.dispatch(1)
    ended = run_worker(ctx, "--drain", timeout=20, give_up=lambda: ctx.count("surrogate 1") > 3)
    assert ended.returncode == 0, ended
    assert ctx.count("surrogate 1") == 1
    assert f"run {run}: failed: ValueError: bad \\udc80 message" in ended.out, ended
    row = ctx.row(run)
    assert row["status"] == "failed"
    assert row["reason"] == "ValueError: bad \\udc80 message"
    with Runtime(ctx.url) as rt, pytest.raises(ValueError) as caught:
        rt.result(run)
    assert str(caught.value) == "bad \udc80 message"  # the stored exception is exact
    for command in (["list"], ["show", run]):
        shown = finish(
            start(
                [sys.executable, "-m", "resumable", "runs", *command, "--store", ctx.url], ctx.env
            ),
            TIMEOUT,
        )
        assert shown.returncode == 0, shown
        assert "bad \\udc80 message" in shown.out, shown


# ---------------------------------------------- a full store (PRAGMA max_page_count)


SIZE = 300_000  # characters a bulky run holds across an await: far more than the headroom


def test_a_full_store_backs_off_and_runs_go_on_when_space_comes_back(
    jobs: ModuleType, ctx: Env
) -> None:
    """The worker's connection may grow the database by 4 pages only: the
    checkpoint holding a large local cannot be written. The worker logs
    `store unavailable` with growing delays (0.5, 1, 2 s) and tries the step
    again only that often; after the limit is lifted, every run completes.
    (Before, the step ran again in a tight loop.)"""
    runs = [jobs.bulky.dispatch(name, SIZE) for name in ("a", "b")]
    proc = start(
        [sys.executable, str(PROGRAM), "worker", str(ctx.module), ctx.url, "--headroom", "4"],
        ctx.env,
    )
    reader = LineReader(proc)
    began = time.monotonic()
    try:
        wait_until(
            lambda: len(reader.matching(UNAVAILABLE)) >= 3 or ctx.count("a fill") > 20,
            "three store-unavailable lines",
            reader,
            timeout=15,
        )
        fills = ctx.count("a fill") + ctx.count("b fill")
        seen = reader.matching(UNAVAILABLE)
        elapsed = time.monotonic() - began
        # Tried at 0, 0.5 and 1.5 s (three failures), not in a loop.
        assert fills <= 4, f"{fills} attempts in {elapsed:.1f} s: {reader.lines[-5:]}"
        assert elapsed >= 1.4
        assert delays(seen)[:3] == [0.5, 1.0, 2.0], seen
        assert "the disk is full, or the database reached its size limit" in seen[0]
        assert all(ctx.row(r)["status"] in ("pending", "running") for r in runs)
        proc.send_signal(signal.SIGUSR1)  # space comes back
        ended = reader.rest(TIMEOUT)
    finally:
        reader.close()
    assert ended.returncode == 0, ended
    assert "lifted" in ended.out
    with Runtime(ctx.url) as rt:
        assert [rt.result(r) for r in runs] == [SIZE, SIZE]
    assert ctx.count("a use") == ctx.count("b use") == 1
    # Each attempt that could not be written was one failure line; one more
    # attempt per run went through.
    assert ctx.count("a fill") + ctx.count("b fill") == len(delays(reader.lines)) + 2


def set_max_pages(rt: Runtime, headroom: int | None) -> None:
    """Limit (or lift, None) how far the runtime's connection may grow the
    database, on the store's own thread."""
    store: Any = rt.store

    def limit() -> None:
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        top = 1_000_000_000 if headroom is None else pages + headroom
        store.conn.execute(f"PRAGMA max_page_count={top}")

    store._executor.submit(limit).result()


def test_dispatch_and_run_on_a_full_store_raise_store_error(jobs: ModuleType, ctx: Env) -> None:
    """In the user's process: `fn.dispatch`, `rt.dispatch` and `rt.run` on a
    store that cannot grow raise resumable.StoreError (StoreUnavailable),
    never a raw sqlite3 error; the run that could not checkpoint stays
    resumable and completes once there is space."""
    big = "x" * SIZE
    with Runtime(ctx.url) as rt:
        jobs.double.dispatch(1)  # the default runtime opens the store
        from resumable.runtime import default_runtime

        for runtime in (rt, default_runtime()):
            set_max_pages(runtime, 2)
        with pytest.raises(resumable.StoreError) as caught:
            jobs.bulky.dispatch(big, 1)
        assert not isinstance(caught.value, sqlite3.Error)
        assert "full" in str(caught.value)
        with pytest.raises(resumable.StoreError):
            rt.dispatch(jobs.bulky, big, 1, run_id="too-big")
        with pytest.raises(resumable.StoreError) as caught:
            rt.run(jobs.bulky, "c", SIZE, run_id="in-process")
        assert "full" in str(caught.value)
        assert ctx.count("c fill") == 1
        assert rt.status("in-process") == "running"
        set_max_pages(rt, None)
        assert rt.run(jobs.bulky, "c", SIZE, run_id="in-process") == SIZE
        assert [ctx.count("c fill"), ctx.count("c use")] == [2, 1]


# ---------------------------------------------- a real full disk (tmpfs, as root)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted for the test (root only), always unmounted."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def fill(folder: Path, leave: int) -> Path:
    """A file that takes all the free space of `folder`'s file system but `leave` bytes."""
    filler = folder / "filler"
    st = os.statvfs(folder)
    size = st.f_bavail * st.f_frsize - leave
    with open(filler, "wb") as f:
        chunk = b"\0" * 65536
        while size > 0:
            size -= f.write(chunk[: min(size, len(chunk))])
    return filler


def test_a_full_disk_backs_off_and_work_resumes_when_space_is_freed(
    jobs: ModuleType, tmp_path: Path, small_disk: Path
) -> None:
    """The store on a 2 MB tmpfs, filled up but for 96 KB: the worker opens
    it, but cannot write a checkpoint holding 150 KB. It backs off with
    growing delays; once the filler is deleted the runs complete (what the
    failed writes left in the WAL does not keep the freed space), and
    `--drain` exits."""
    db = small_disk / "state.db"
    ctx = make_env(jobs, tmp_path, db)
    with Runtime(ctx.url) as rt:
        runs = [rt.dispatch(jobs.bulky, name, 150_000) for name in ("a", "b")]
    filler = fill(small_disk, 96 * 1024)
    proc = start(ctx.worker_command("--drain", "--concurrency", "1"), ctx.env)
    reader = LineReader(proc)
    try:
        wait_until(
            lambda: len(reader.matching(UNAVAILABLE)) >= 2 or ctx.count("a fill") > 20,
            "two store-unavailable lines",
            reader,
            timeout=15,
        )
        fills = ctx.count("a fill") + ctx.count("b fill")
        assert fills <= 3, f"{fills} attempts: {reader.lines[-5:]}"
        assert delays(reader.matching(UNAVAILABLE))[:2] == [0.5, 1.0], reader.lines
        filler.unlink()  # space comes back
        ended = reader.rest(TIMEOUT)
    finally:
        reader.close()
    assert ended.returncode == 0, ended
    assert [ctx.row(r)["status"] for r in runs] == ["completed", "completed"], ended
    assert ctx.count("a use") == ctx.count("b use") == 1
    assert ctx.count("a fill") + ctx.count("b fill") <= len(delays(reader.lines)) + 2


# ---------------------------------------------- an immutable database file (as root)


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    """chattr +i on files (root only); always chattr -i afterwards."""
    if os.geteuid() != 0:
        pytest.skip("chattr +i needs root")
    made: list[Path] = []

    def make(path: Path) -> None:
        done = subprocess.run(
            ["chattr", "+i", str(path)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            pytest.skip(f"chattr +i does not work here: {done.stderr.strip()}")
        made.append(path)

    try:
        yield make
    finally:
        for path in made:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)


def test_an_immutable_database_ends_a_draining_worker_and_backs_off_otherwise(
    jobs: ModuleType, ctx: Env, immutable: Callable[[Path], None]
) -> None:
    """chattr +i on the database: `worker --drain` gives up in a few seconds
    with a message that says the store cannot be written; without --drain
    the worker backs off (a few attempts over seconds, growing delays) until
    SIGTERM. No step runs on a store that cannot record it (a run is claimed
    by a write before its step starts). After chattr -i, the runs complete,
    each step once."""
    runs = [jobs.double.dispatch(x) for x in range(2)]
    resumable.configure()  # close the default runtime: nothing of this process holds the file
    immutable(ctx.db)

    started = time.monotonic()
    drained = run_worker(ctx, "--drain", timeout=15, give_up=lambda: ctx.count("double 0") > 3)
    assert drained.returncode not in (0, None), drained
    assert time.monotonic() - started < 10
    message = drained.out + drained.err
    assert re.search(r"cannot be written .*read-only", message), drained
    assert "Traceback" not in drained.err, drained
    assert ctx.tags() == []

    proc = start(ctx.worker_command(), ctx.env)
    reader = LineReader(proc)
    try:
        wait_until(
            lambda: len(reader.matching(UNAVAILABLE)) >= 3,
            "three store-unavailable lines",
            reader,
            timeout=15,
        )
        assert delays(reader.matching(UNAVAILABLE))[:3] == [0.5, 1.0, 2.0], reader.lines
        proc.send_signal(signal.SIGTERM)
        ended = reader.rest(15)
    finally:
        reader.close()
    assert ended.returncode == 0, ended
    assert ctx.tags() == []
    assert [ctx.row(r)["status"] for r in runs] == ["pending", "pending"]

    subprocess.run(["chattr", "-i", str(ctx.db)], check=True)
    again = run_worker(ctx, "--drain")
    assert again.returncode == 0, again
    with Runtime(ctx.url) as rt:
        assert [rt.result(r) for r in runs] == [0, 2]
    assert sorted(ctx.tags()) == ["double 0", "double 1"]
