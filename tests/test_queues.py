"""Queues and flow control: a queue's concurrency holds across worker
processes (SQLite, and PostgreSQL when RESUMABLE_TEST_POSTGRES is set), its
rate limit holds, higher priorities start first, a waiting run holds no
slot, dedup keys refuse a second unended run, bad arguments are named, and
a store of schema version 4 is migrated."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import resumable
from resumable import DuplicateRun, Queue, Runtime
from resumable.store.migrations import SCHEMA_VERSION
from resumable.worker import work
from tests.compiled import compile_and_import
from tests.procs import clean_env, compile_module, python, start_worker
from tests.stores import KINDS, store_url
from tests.test_schedules import QUEUES_UNDONE

JOBS = """
import asyncio
import os
import time

import resumable


def note(log, what):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{what} {time.time():.6f} {os.getpid()}\\n".encode())
    finally:
        os.close(fd)


async def pause(seconds):
    await asyncio.sleep(seconds)


@resumable.function(queue=resumable.Queue("pair", concurrency=2))
async def paired(tag, log, hold):
    note(log, f"start {tag}")
    await pause(hold)
    note(log, f"end {tag}")
    return tag


@resumable.function
async def job(tag, log, hold):
    note(log, f"start {tag}")
    await pause(hold)
    note(log, f"end {tag}")
    return tag


@resumable.function
async def sleeper(tag, log, seconds):
    note(log, f"start {tag}")
    await resumable.sleep(seconds)
    note(log, f"end {tag}")
    return tag


@resumable.function
async def fails(tag):
    await pause(0)
    raise ValueError(tag)
"""


@pytest.fixture(scope="module")
def m(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("queue_jobs")
    yield compile_and_import(folder / "queue_jobs.py", "queue_jobs", JOBS)
    sys.modules.pop("queue_jobs", None)


def events(log: Path) -> list[tuple[str, str, float]]:
    """(start|end, tag, time) in time order."""
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        what, tag, at, _pid = line.split()
        out.append((what, tag, float(at)))
    return sorted(out, key=lambda e: e[2])


def max_overlap(log: Path) -> int:
    now = most = 0
    for what, _, _ in events(log):
        now += 1 if what == "start" else -1
        most = max(most, now)
    return most


def starts(log: Path) -> list[str]:
    return [tag for what, tag, _ in events(log) if what == "start"]


def drain(rt: Runtime, concurrency: int = 8) -> None:
    asyncio.run(work(rt, concurrency=concurrency, drain=True, poll=0.05, log=lambda _: None))


@pytest.fixture(params=KINDS)
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(
        store_url(request, request.param, tmp_path), retry=resumable.Retry(max_attempts=1)
    )
    yield runtime
    runtime.close()


# -- concurrency across worker processes -------------------------------------------


def _three_workers(tmp_path: Path, url: str) -> None:
    compile_module(tmp_path, "jobs", JOBS)
    log = tmp_path / "effects.log"
    env = clean_env(RESUMABLE_STORE=url)
    made = python(
        f"""
        import resumable, jobs
        rt = resumable.Runtime()
        for i in range(10):
            rt.dispatch(jobs.paired, f"p{{i}}", {str(log)!r}, 0.15, run_id=f"p{{i}}")
        rt.close()
        """,
        cwd=tmp_path,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    workers = [
        start_worker(
            "--module",
            "jobs",
            "--drain",
            "--poll",
            "0.05",
            "--concurrency",
            "4",
            cwd=tmp_path,
            env=env,
        )
        for _ in range(3)
    ]
    outputs = []
    for w in workers:
        out, err = w.communicate(timeout=60)
        outputs.append(out + err)
        assert w.returncode == 0, err
    assert sorted(starts(log)) == sorted(f"p{i}" for i in range(10)), outputs
    assert max_overlap(log) <= 2, events(log)
    with Runtime(url) as rt:
        assert {rt.status(f"p{i}") for i in range(10)} == {"completed"}


def test_concurrency_holds_across_three_sqlite_worker_processes(tmp_path: Path) -> None:
    _three_workers(tmp_path, f"sqlite:///{tmp_path / 'state.db'}")


def test_concurrency_holds_across_three_postgres_worker_processes(
    tmp_path: Path, postgres_url: str
) -> None:
    _three_workers(tmp_path, postgres_url)


# -- in one process: limits, priorities, waits --------------------------------------


def test_concurrency_holds_in_one_worker_and_other_runs_go_on(
    m: ModuleType, rt: Runtime, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    q = Queue("one", concurrency=1)
    for i in range(4):
        rt.dispatch(m.job, f"q{i}", str(log), 0.05, queue=q)
    rt.dispatch(m.job, "free", str(log), 0.05)
    drain(rt)
    assert max_overlap(log) == 2  # one of the queue's and the unqueued run
    assert starts(log)[:2] in (["q0", "free"], ["free", "q0"])
    assert [t for t in starts(log) if t != "free"] == ["q0", "q1", "q2", "q3"]


def test_rate_limit_holds(m: ModuleType, rt: Runtime, tmp_path: Path) -> None:
    log = tmp_path / "log"
    q = Queue("rated", rate=(2, 0.5))
    for i in range(6):
        rt.dispatch(m.job, f"r{i}", str(log), 0.0, queue=q)
    drain(rt)
    times = [at for what, _, at in events(log) if what == "start"]
    assert len(times) == 6
    for first, third in zip(times, times[2:], strict=False):
        assert third - first >= 0.5 - 0.1, times  # at most 2 starts in any 0.5 s
    assert times[-1] - times[0] >= 1.0 - 0.1


def test_higher_priority_starts_first_then_oldest(
    m: ModuleType, rt: Runtime, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    q = Queue("ordered", concurrency=1, priority=1)
    rt.dispatch(m.job, "low", str(log), 0.0, queue=q, priority=-5)
    rt.dispatch(m.job, "default1", str(log), 0.0, queue=q)
    rt.dispatch(m.job, "high", str(log), 0.0, queue=q, priority=10)
    rt.dispatch(m.job, "default2", str(log), 0.0, queue=q)
    assert rt.get(rt.dispatch(m.job, "x", str(log), 0.0, queue=q, priority=3)).priority == 3
    drain(rt, concurrency=1)
    assert starts(log) == ["high", "x", "default1", "default2", "low"]


def test_a_waiting_run_holds_no_slot_and_takes_one_again_when_it_wakes(
    m: ModuleType, rt: Runtime, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    q = Queue("waits", concurrency=1)
    rt.dispatch(m.sleeper, "sleeper", str(log), 0.3, queue=q)
    rt.dispatch(m.job, "a", str(log), 0.0, queue=q)
    rt.dispatch(m.job, "b", str(log), 0.0, queue=q)
    drain(rt)
    order = [f"{what} {tag}" for what, tag, _ in events(log)]
    assert order == ["start sleeper", "start a", "end a", "start b", "end b", "end sleeper"]


def test_the_functions_queue_is_used_and_a_dispatch_queue_replaces_it(
    m: ModuleType, rt: Runtime, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    assert m.paired.queue == Queue("pair", concurrency=2)
    assert rt.get(rt.dispatch(m.paired, "a", str(log), 0.0)).queue == "pair"
    other = rt.dispatch(m.paired, "b", str(log), 0.0, queue=Queue("elsewhere"))
    assert rt.get(other).queue == "elsewhere"
    assert rt.get(rt.dispatch(m.job, "c", str(log), 0.0)).queue is None
    drain(rt)
    assert sorted(starts(log)) == ["a", "b", "c"]


# -- dedup keys -----------------------------------------------------------------------


def test_a_dedup_key_refuses_a_second_run_until_the_first_has_ended(
    m: ModuleType, rt: Runtime, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    first = rt.dispatch(m.job, "a", str(log), 0.0, dedup_key="welcome:ann")
    with pytest.raises(DuplicateRun) as e:
        rt.dispatch(m.job, "b", str(log), 0.0, dedup_key="welcome:ann", queue=Queue("x"))
    assert e.value.run_id == first and first in str(e.value)
    assert isinstance(e.value, resumable.ResumableError) and isinstance(e.value, ValueError)
    assert len(rt.store.list_runs()) == 1
    other = rt.dispatch(m.job, "c", str(log), 0.0, dedup_key="welcome:bob")  # another key
    assert rt.dispatch(m.job, "a", str(log), 0.0, run_id=first, dedup_key="welcome:ann") == first
    drain(rt)
    assert rt.status(first) == rt.status(other) == "completed"
    again = rt.dispatch(m.job, "d", str(log), 0.0, dedup_key="welcome:ann")  # free again
    assert again != first

    # A failed or cancelled run frees its key; a blocked one holds it.
    failed = rt.dispatch(m.fails, "f", dedup_key="k2")
    drain(rt)
    assert rt.status(failed) == "failed"
    taken = rt.dispatch(m.fails, "g", dedup_key="k2")
    with pytest.raises(DuplicateRun) as e:
        rt.retry(failed, wait=False)  # the key went to another run meanwhile
    assert e.value.run_id == taken
    rt.cancel(taken)
    drain(rt)
    assert rt.status(taken) == "cancelled"
    rt.dispatch(m.fails, "h", dedup_key="k2")


def test_fn_dispatch_takes_queue_priority_and_dedup_key(m: ModuleType, tmp_path: Path) -> None:
    resumable.configure(store=f"sqlite:///{tmp_path / 'default.db'}")
    try:
        run_id = m.paired.dispatch("a", "log", 0.0, priority=7, dedup_key="only-once")
        with pytest.raises(DuplicateRun):
            m.paired.dispatch("b", "log", 0.0, dedup_key="only-once")
        record = resumable.runtime.default_runtime().get(run_id)
        assert (record.queue, record.priority, record.dedup_key) == ("pair", 7, "only-once")
    finally:
        resumable.configure(store=None)


# -- bad arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: Queue("q", concurrency=0), ValueError, "concurrency must be at least 1"),
        (lambda: Queue("q", concurrency=2.5), TypeError, "concurrency=...) takes an int"),
        (lambda: Queue("q", rate=(-1, 60.0)), ValueError, "at least 1"),
        (lambda: Queue("q", rate=(10, -1.0)), ValueError, "positive number of seconds"),
        (lambda: Queue("q", rate=10), TypeError, "(starts, period_seconds)"),
        (lambda: Queue("q", priority="high"), TypeError, "a priority is an int"),
        (lambda: Queue("q", priority=True), TypeError, "a priority is an int"),
        (lambda: Queue(""), TypeError, "non-empty str"),
        (lambda: Queue("q", 3), TypeError, "positional"),
    ],
)
def test_bad_queue_arguments_are_named(make: object, error: type, words: str) -> None:
    with pytest.raises(error) as e:
        make()  # type: ignore[operator]
    assert words in str(e.value)


def test_bad_dispatch_arguments_are_named(m: ModuleType, tmp_path: Path) -> None:
    with Runtime("memory://") as rt:
        with pytest.raises(TypeError, match="a priority is an int"):
            rt.dispatch(m.paired, "a", "log", 0.0, priority=1.5)
        with pytest.raises(ValueError, match="has none"):
            rt.dispatch(m.job, "a", "log", 0.0, priority=1)
        with pytest.raises(TypeError, match=r"takes a resumable.Queue"):
            rt.dispatch(m.job, "a", "log", 0.0, queue="emails")
        with pytest.raises(TypeError, match="dedup_key"):
            rt.dispatch(m.job, "a", "log", 0.0, dedup_key=5)
        assert rt.store.list_runs() == []
    with pytest.raises(TypeError, match=r"queue=...\) takes a resumable.Queue"):
        resumable.function(queue="emails")(m.job.__wrapped__)


# -- the schema -----------------------------------------------------------------------


def test_a_version_4_store_is_migrated_and_its_runs_go_on(m: ModuleType, tmp_path: Path) -> None:
    assert SCHEMA_VERSION == 6
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    log = tmp_path / "log"
    with Runtime(url) as rt:
        rt.dispatch(m.job, "old", str(log), 0.0, run_id="old")
    with sqlite3.connect(path) as conn:
        for statement in QUEUES_UNDONE:
            conn.execute(statement)
        conn.execute("UPDATE resumable_meta SET value = '4' WHERE key = 'schema_version'")
    conn.close()
    with Runtime(url) as rt:
        conn = sqlite3.connect(path)
        version = conn.execute("SELECT value FROM resumable_meta WHERE key = 'schema_version'")
        assert version.fetchone()[0] == "6"
        conn.close()
        assert rt.get("old").queue is None
        rt.dispatch(m.job, "new", str(log), 0.0, queue=Queue("q", concurrency=1), dedup_key="k")
        drain(rt)
        assert sorted(starts(log)) == ["new", "old"]


def test_a_version_4_postgres_store_is_migrated(
    m: ModuleType, tmp_path: Path, postgres_url: str
) -> None:
    from tests.test_postgres import psql

    log = tmp_path / "log"
    with Runtime(postgres_url) as rt:
        rt.dispatch(m.job, "old", str(log), 0.0, run_id="old")
    for statement in (
        *(s for s in QUEUES_UNDONE if "INDEX" not in s),  # dropped with their columns
        "UPDATE resumable_meta SET value = '4' WHERE key = 'schema_version'",
    ):
        psql(postgres_url, statement)
    with Runtime(postgres_url) as rt:
        assert psql(postgres_url, "SELECT value FROM resumable_meta") == [("6",)]
        rt.dispatch(m.job, "new", str(log), 0.0, queue=Queue("q", concurrency=1), dedup_key="k")
        with pytest.raises(DuplicateRun):
            rt.dispatch(m.job, "again", str(log), 0.0, dedup_key="k")
        drain(rt)
        assert sorted(starts(log)) == ["new", "old"]
