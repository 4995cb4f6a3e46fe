"""Dispatched child runs: under a worker, a child run whose function has a
queue goes through it. Any worker claims it within the queue's limits while
its parent waits for it as a row; its end makes the parent due. Outside a
worker (`rt.run`), children are driven inline as always. On memory, SQLite
and PostgreSQL (when RESUMABLE_TEST_POSTGRES is set), and with real worker
processes, one of them SIGKILLed while it drives the parent's children."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import resumable
from resumable import Runtime
from resumable.worker import work
from tests.compiled import compile_and_import
from tests.procs import clean_env, compile_module, python, start_worker, stop, wait_until
from tests.stores import KINDS, store_url
from tests.test_queues import events, max_overlap

JOBS = """
import asyncio
import os
import time

import resumable

LANE = resumable.Queue("lane", concurrency=2)


def note(log, what):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{what} {time.time():.6f} {os.getpid()}\\n".encode())
    finally:
        os.close(fd)


async def pause(seconds):
    await asyncio.sleep(seconds)


@resumable.function(queue=LANE)
async def part(i, log, hold):
    note(log, f"start {i}")
    await pause(hold)
    note(log, f"end {i}")
    if i < 0:
        raise ValueError(f"part {i} failed")
    return i * i


@resumable.function(queue=LANE)
async def gated(log):
    note(log, "start gated")
    payload = await resumable.wait_event("go")
    note(log, "end gated")
    return payload


@resumable.function
async def spread(n, log, hold):
    return await resumable.gather(*[part(i, log, hold) for i in range(n)])


@resumable.function
async def first(log):
    return await resumable.race(part(1, log, 0.05), gated(log))


@resumable.function
async def direct(log):
    value = await gated(log)
    return ("got", value)


@resumable.function
async def survives(log):
    try:
        await part(-1, log, 0.0)
    except ValueError as e:
        return f"caught: {e}"


ONE = resumable.Queue("one", concurrency=1)


@resumable.function(queue=ONE)
async def leaf(i):
    await pause(0.01)
    return i


@resumable.function(queue=ONE)
async def tree_plain(n):
    return await asyncio.gather(*[leaf(i) for i in range(n)])


@resumable.function(queue=ONE)
async def tree_fan(n):
    return await resumable.gather(*[leaf(i) for i in range(n)])


@resumable.function
async def plain_gather(log):
    return await asyncio.gather(part(2, log, 0.05), part(3, log, 0.05))
"""


@pytest.fixture(scope="module")
def m(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("dispatched_jobs")
    yield compile_and_import(folder / "dispatched_jobs.py", "dispatched_jobs", JOBS)
    sys.modules.pop("dispatched_jobs", None)


@pytest.fixture(params=KINDS)
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(
        store_url(request, request.param, tmp_path), retry=resumable.Retry(max_attempts=1)
    )
    yield runtime
    runtime.close()


def children_of(rt: Runtime, run_id: str) -> list[resumable.store.RunRecord]:
    found = [rt.store.get(c.run_id) for c in rt.store.list_runs(parent=run_id)]
    return [c for c in found if c is not None]


def drain(rt: Runtime, concurrency: int = 8) -> None:
    asyncio.run(work(rt, concurrency=concurrency, drain=True, poll=0.05, log=lambda _: None))


def test_a_fan_out_of_queued_children_goes_through_the_queue(
    m: ModuleType, rt: Runtime, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    rt.dispatch(m.spread, 6, str(log), 0.05, run_id="fan")
    drain(rt)
    assert rt.result("fan") == [i * i for i in range(6)]
    assert max_overlap(log) == 2  # the queue's limit, though the worker had 8 slots
    children = children_of(rt, "fan")
    assert len(children) == 6
    assert {(c.status, c.queue) for c in children} == {("completed", "lane")}


def test_a_parent_waits_as_a_row_until_its_dispatched_child_ends(
    m: ModuleType, rt: Runtime, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    rt.dispatch(m.direct, str(log), run_id="d")
    drain(rt)  # the child waits for its event, so does the parent: drain ends
    (child,) = children_of(rt, "d")
    assert (child.status, child.queue) == ("waiting", "lane")
    parent = rt.store.get("d")
    assert parent is not None and parent.status == "waiting"
    assert parent.wake_at is None, "due only when its child has ended"
    assert f"waiting for child run {child.run_id} (queue 'lane'" in (parent.reason or "")
    rt.send_event(child.run_id, "go", {"ok": 1})
    drain(rt)
    assert rt.result("d") == ("got", {"ok": 1})
    assert [what for what, _, _ in events(log)] == ["start", "end"]


def test_a_dispatched_childs_failure_is_raised_at_the_parents_await(
    m: ModuleType, rt: Runtime, tmp_path: Path
) -> None:
    rt.dispatch(m.survives, str(tmp_path / "log"), run_id="s")
    drain(rt)
    assert rt.result("s") == "caught: part -1 failed"
    (child,) = children_of(rt, "s")
    assert child.status == "failed"


def test_a_race_of_dispatched_children_cancels_the_loser(
    m: ModuleType, rt: Runtime, tmp_path: Path
) -> None:
    rt.dispatch(m.first, str(tmp_path / "log"), run_id="r")
    drain(rt)
    assert rt.result("r") == 1
    statuses = {c.function.rsplit(":", 1)[1]: c.status for c in children_of(rt, "r")}
    assert statuses == {"part": "completed", "gated": "cancelled"}


def test_children_awaited_by_asyncio_gather_are_driven_inline(
    m: ModuleType, rt: Runtime, tmp_path: Path
) -> None:
    """The parent could only wait for them in its process, holding its slot:
    they are driven inline instead (their queue is not theirs then)."""
    rt.dispatch(m.plain_gather, str(tmp_path / "log"), run_id="g")
    drain(rt)
    assert rt.result("g") == [4, 9]
    assert {c.queue for c in children_of(rt, "g")} == {None}


def test_a_parent_in_its_childrens_full_queue_does_not_deadlock(m: ModuleType, rt: Runtime) -> None:
    """A parent holding its queue's only slot: under asyncio.gather its
    children are driven inline; under resumable.gather it waits as a row,
    holding no slot, while they take theirs one by one."""
    rt.dispatch(m.tree_plain, 3, run_id="plain")
    rt.dispatch(m.tree_fan, 3, run_id="fan")
    asyncio.run(
        asyncio.wait_for(work(rt, concurrency=4, drain=True, poll=0.05, log=lambda _: None), 60)
    )
    assert (rt.result("plain"), rt.result("fan")) == ([0, 1, 2], [0, 1, 2])
    assert {c.queue for c in children_of(rt, "fan")} == {"one"}


def test_outside_a_worker_children_of_a_queue_are_driven_inline(
    m: ModuleType, rt: Runtime, tmp_path: Path
) -> None:
    assert rt.run(m.spread, 3, str(tmp_path / "log"), 0.0, run_id="inline") == [0, 1, 4]
    assert {c.queue for c in children_of(rt, "inline")} == {None}


def test_cancelling_the_parent_cancels_its_dispatched_child(
    m: ModuleType, rt: Runtime, tmp_path: Path
) -> None:
    rt.dispatch(m.direct, str(tmp_path / "log"), run_id="c")
    drain(rt)
    rt.cancel("c")
    drain(rt)
    assert rt.status("c") == "cancelled"
    assert [c.status for c in children_of(rt, "c")] == ["cancelled"]


# -- the schema ----------------------------------------------------------------------

#: The queue index of version 5, which left child runs out.
V5_INDEX = (
    "CREATE INDEX runs_by_queue ON runs (queue, status, priority, created_at) "
    "WHERE queue IS NOT NULL AND parent IS NULL"
)


def test_a_version_5_sqlite_store_gets_the_queue_index_of_version_6(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    Runtime(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX runs_by_queue")
        conn.execute(V5_INDEX)
        conn.execute("UPDATE resumable_meta SET value = '5' WHERE key = 'schema_version'")
    conn.close()
    Runtime(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    try:
        (sql,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'runs_by_queue'"
        ).fetchone()
        (version,) = conn.execute(
            "SELECT value FROM resumable_meta WHERE key = 'schema_version'"
        ).fetchone()
    finally:
        conn.close()
    assert version == "6" and "parent" not in sql


def test_a_version_5_postgres_store_gets_the_queue_index_of_version_6(postgres_url: str) -> None:
    from tests.test_postgres import psql

    Runtime(postgres_url).close()
    psql(postgres_url, "DROP INDEX runs_by_queue")
    psql(postgres_url, V5_INDEX)
    psql(postgres_url, "UPDATE resumable_meta SET value = '5' WHERE key = 'schema_version'")
    Runtime(postgres_url).close()
    (definition,) = psql(
        postgres_url,
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'runs_by_queue' "
        "AND schemaname = current_schema()",
    )
    assert psql(postgres_url, "SELECT value FROM resumable_meta") == [("6",)]
    assert "parent" not in str(definition[0])


# -- real worker processes ------------------------------------------------------------


def _killed_midway(tmp_path: Path, url: str) -> None:
    """The worker that drives the parent and its first children is SIGKILLed
    while they run; two others finish the children and the parent."""
    compile_module(tmp_path, "dispatched_jobs", JOBS)
    log = tmp_path / "effects.log"
    env = clean_env(RESUMABLE_STORE=url)
    made = python(
        f"import resumable, dispatched_jobs\nrt = resumable.Runtime()\n"
        f"rt.dispatch(dispatched_jobs.spread, 8, {str(log)!r}, 0.4, run_id='fan')\nrt.close()",
        cwd=tmp_path,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    args = ("--module", "dispatched_jobs", "--poll", "0.05", "--concurrency", "8")
    first = start_worker(*args, cwd=tmp_path, env=env)
    others = []
    try:
        wait_until(lambda: _started(log) >= 2, "two children started", timeout=60, proc=first)
        first.send_signal(signal.SIGKILL)
        first.communicate()
        others = [start_worker(*args, cwd=tmp_path, env=env) for _ in range(2)]
        with Runtime(url) as rt:
            wait_until(lambda: rt.status("fan") == "completed", "the fan-out completed", timeout=90)
            assert rt.result("fan") == [i * i for i in range(8)]
    finally:
        outputs = [stop(w) for w in others]
    pids = {int(pid) for _, _, pid in (line.split()[1:] for line in log.read_text().splitlines())}
    assert first.pid in pids and len(pids) >= 2, outputs
    assert max_overlap(log) <= 2 + 2, events(log)  # the killed worker's two, then the limit
    ended = [tag for what, tag, _ in events(log) if what == "end"]
    assert sorted(ended, key=int) == [str(i) for i in range(8)]  # each child ended once


def _started(log: Path) -> int:
    return sum(1 for what, _, _ in events(log) if what == "start") if log.exists() else 0


def test_a_killed_worker_leaves_its_dispatched_children_to_others_sqlite(tmp_path: Path) -> None:
    _killed_midway(tmp_path, f"sqlite:///{tmp_path / 'state.db'}")


def test_a_killed_worker_leaves_its_dispatched_children_to_others_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    _killed_midway(tmp_path, postgres_url)
