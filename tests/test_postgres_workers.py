"""Real worker processes on PostgreSQL: two workers share dispatched runs,
each step once; a worker frozen past its lease loses its run to another
and, resumed, commits nothing for it."""

from __future__ import annotations

import collections
import os
import signal
import time
from pathlib import Path
from typing import Any

from resumable.store import open_store
from tests.procs import clean_env, compile_module, python, start_worker, stop, wait_until

JOBS = """
import asyncio
import os

import resumable


async def effect(label):
    fd = os.open(os.environ["EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{label} {os.getpid()}\\n".encode())
    finally:
        os.close(fd)
    await asyncio.sleep(float(os.environ.get("PAUSE", "0")))
    return label


def mark(label):
    fd = os.open(os.environ["EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{label} {os.getpid()}\\n".encode())
    finally:
        os.close(fd)


@resumable.function
async def after(i):
    await asyncio.sleep(float(os.environ.get("PAUSE", "0")))
    mark(f"{i}:after")  # the rest of the step: code after its await
    return i


@resumable.function
async def job(i):
    a = await effect(f"{i}:a")
    b = await effect(f"{i}:b")
    c = await effect(f"{i}:c")
    return [a, b, c]
"""


def effects(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [(w[0], int(w[1])) for w in (line.split() for line in path.read_text().splitlines())]


def test_two_workers_drive_fifty_runs_each_step_once(tmp_path: Path, postgres_url: str) -> None:
    compile_module(tmp_path, "jobs", JOBS)
    log = tmp_path / "effects.log"
    env = clean_env(RESUMABLE_STORE=postgres_url, EFFECTS=str(log), PAUSE="0.01")
    made = python(
        "import resumable, jobs\nrt = resumable.Runtime()\n"
        "for i in range(50): rt.dispatch(jobs.job, i, run_id=f'r{i}')\nrt.close()",
        cwd=tmp_path,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    workers = [
        start_worker("--module", "jobs", "--drain", "--poll", "0.05", cwd=tmp_path, env=env)
        for _ in range(2)
    ]
    outputs = [stop_when_done(w) for w in workers]
    counts = collections.Counter(label for label, _ in effects(log))
    assert counts == {f"{i}:{s}": 1 for i in range(50) for s in "abc"}, outputs
    store = open_store(postgres_url)
    try:
        assert {r.status for r in store.list_runs()} == {"completed"}
        assert len(store.list_runs()) == 50
    finally:
        store.close()


def stop_when_done(proc: object) -> str:
    import subprocess

    assert isinstance(proc, subprocess.Popen)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return str(out) + str(err)


def _frozen_past_its_lease(
    tmp_path: Path, postgres_url: str, job: str, started: Any
) -> tuple[int, int, str, str]:
    """Dispatch `jobs.<job>(0)` as run `r` to a worker; once `started(log,
    pid)` holds, freeze it (SIGSTOP) past its 1 s lease, let a draining heir
    finish the run, then let the frozen one go on for a while. (frozen pid,
    heir pid, the frozen one's output)."""
    compile_module(tmp_path, "jobs", JOBS)
    log = tmp_path / "effects.log"
    url = postgres_url.replace("lease=3&heartbeat=0.5", "lease=1&heartbeat=0.2")
    env = clean_env(RESUMABLE_STORE=url, EFFECTS=str(log), PAUSE="1.5")
    made = python(
        f"import resumable, jobs\nrt = resumable.Runtime()\nrt.dispatch(jobs.{job}, 0, run_id='r')",
        cwd=tmp_path,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    frozen = start_worker("--module", "jobs", "--poll", "0.05", cwd=tmp_path, env=env)
    try:
        wait_until(lambda: started(log, frozen.pid), "the step started", proc=frozen)
        os.kill(frozen.pid, signal.SIGSTOP)
        time.sleep(2.0)  # past its lease, by the database's clock
        heir = start_worker("--module", "jobs", "--drain", "--poll", "0.05", cwd=tmp_path, env=env)
        stop_when_done(heir)
        os.kill(frozen.pid, signal.SIGCONT)
        time.sleep(2.5)  # its await ends
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
        out, err = stop(frozen)
    store = open_store(url)
    try:
        record = store.get("r")
        assert record is not None and record.status == "completed"
        assert record.owner is not None and record.owner.startswith(f"{heir.pid}@")
    finally:
        store.close()
    return frozen.pid, heir.pid, out, err


def test_a_worker_frozen_past_its_lease_commits_nothing_after_a_takeover(
    tmp_path: Path, postgres_url: str
) -> None:
    log = tmp_path / "effects.log"
    frozen, heir, out, err = _frozen_past_its_lease(
        tmp_path, postgres_url, "job", lambda log, pid: ("0:b", pid) in effects(log)
    )
    done = effects(log)
    # The heir re-ran step b (in flight at the takeover) and ran c; the frozen
    # worker never ran c: its checkpoint after b changed nothing.
    assert ("0:c", frozen) not in done, done
    assert [label for label, pid in done if pid == heir] == ["0:b", "0:c"]
    # It stops at the end of that await, its lease not renewed in time (or,
    # had it not noticed, at its next write, fenced out).
    assert "the code after its await was not run here" in out + err


def test_a_worker_frozen_past_its_lease_does_not_run_the_code_after_its_await(
    tmp_path: Path, postgres_url: str
) -> None:
    """Frozen during an await, past its lease: let go, the worker does not
    run the code after that await (its lease was not renewed in time, by its
    own clock), though the await itself completes; the heir ran it once."""
    log = tmp_path / "effects.log"
    store = open_store(postgres_url)

    def in_its_await(log: Path, pid: int) -> bool:
        record = store.get("r")
        if record is None or record.status != "running" or record.owner is None:
            return False
        if not record.owner.startswith(f"{pid}@"):
            return False
        time.sleep(0.3)  # well inside its 1.5 s await
        return True

    try:
        _, heir, out, err = _frozen_past_its_lease(tmp_path, postgres_url, "after", in_its_await)
    finally:
        store.close()
    assert effects(log) == [("0:after", heir)], (effects(log), out, err)
    assert "the code after its await was not run here" in out + err


def test_an_idle_worker_is_woken_by_notify_not_by_its_poll(
    tmp_path: Path, postgres_url: str
) -> None:
    """The worker's fallback poll is 2 s on PostgreSQL: a run dispatched to
    an idle worker is driven at once, through LISTEN/NOTIFY (with the poll
    alone, six runs dispatched at random times would wait 1 s or more at
    least once, but for one time in 64)."""
    compile_module(tmp_path, "jobs", JOBS)
    env = clean_env(RESUMABLE_STORE=postgres_url, EFFECTS=str(tmp_path / "effects.log"))
    worker = start_worker("--module", "jobs", cwd=tmp_path, env=env)
    try:
        time.sleep(1.0)  # the worker is up and idle, past its first look
        proc = python(
            """
            import random, time, resumable, jobs
            rt = resumable.Runtime()
            for i in range(6):
                time.sleep(random.uniform(0.1, 0.6))
                rt.dispatch(jobs.job, i, run_id=f"n{i}")
                sent = time.monotonic()
                while rt.status(f"n{i}") != "completed":
                    time.sleep(0.005)
                print(round(time.monotonic() - sent, 3))
            """,
            cwd=tmp_path,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
        delays = [float(line) for line in proc.stdout.split()]
        assert len(delays) == 6 and max(delays) < 1.0, delays
    finally:
        stop(worker)
