"""Decorated functions awaited anywhere within a step are child runs of the
current run: in a plain helper coroutine the step awaits, and in the tasks
it creates (asyncio.create_task, asyncio.gather, a TaskGroup). Their ids are
`<parent>/<step>.<i>`, numbered in the order the step starts them, so a
crash inside the helper resumes it without running a completed child again.

A task that outlives its step is an error: one that calls a decorated
function after its step ended, or that still drives a child when the run
reaches its next await, blocks the run with NondeterminismError naming it,
and no child run is left being driven.

The functions are compiled into a temporary folder once per module; side
effects append to the file named by $HELPER_LOG (fsync'd), so a test sees
what ran and how often, across processes. The oracle is the original
coroutine under asyncio. On each store (memory, SQLite, PostgreSQL); the
tests with other processes on those that outlive a process (SQLite,
PostgreSQL).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from resumable import Runtime
from tests.compiled import import_file
from tests.procs import (
    clean_env,
    compile_module,
    lines,
    python,
    start_worker,
    stop,
    wait_until,
)
from tests.stores import KINDS, LASTING, store_url

MODULE = "helper_children_cases"

SOURCE = '''
"""Functions for tests/test_helper_children.py."""

from __future__ import annotations

import asyncio
import os
import signal

import resumable

ONCE = resumable.Retry(max_attempts=1)


def record(tag: str) -> None:
    with open(os.environ["HELPER_LOG"], "a", encoding="utf-8") as f:
        f.write(tag + "\\n")
        f.flush()
        os.fsync(f.fileno())


@resumable.function(retry=ONCE)
async def add(tag: str, x: int) -> int:
    record(f"add {tag}")
    return x + 1


@resumable.function(retry=ONCE)
async def crash_once(tag: str, x: int) -> int:
    """SIGKILLs its process the first time it runs (when $HELPER_CRASH names
    a file that does not exist yet)."""
    marker = os.environ.get("HELPER_CRASH")
    if marker and not os.path.exists(marker):
        with open(marker, "w"):
            pass
        os.kill(os.getpid(), signal.SIGKILL)
    record(f"crash_once {tag}")
    return x * 10


async def helper(tag: str, x: int) -> int:
    a = await add(tag + "-a", x)
    b = await crash_once(tag + "-b", a)
    return a + b


async def nested(tag: str, x: int) -> int:
    return await helper(tag, x) + 1


@resumable.function(retry=ONCE)
async def through_helper(x: int) -> list[int]:
    first = await add("direct", x)
    total = await nested("h", first)
    return [first, total]


async def in_tasks(tag: str, x: int) -> list[int]:
    t = asyncio.create_task(add(tag + "-task", x))
    g = await asyncio.gather(add(tag + "-g1", x), add(tag + "-g2", x + 1))
    async with asyncio.TaskGroup() as tg:
        u = tg.create_task(add(tag + "-tg", x + 2))
    return [await t, *g, u.result()]


@resumable.function(retry=ONCE)
async def through_tasks(x: int) -> list[int]:
    got = await in_tasks("t", x)
    return got


# -- tasks that outlive their step ---------------------------------------------------

TASKS: list[asyncio.Task[int]] = []


@resumable.function(retry=ONCE)
async def slow(tag: str) -> str:
    record(f"slow {tag} start")
    await asyncio.sleep(0.4)
    record(f"slow {tag} end")
    return tag


async def call_later(tag: str, delay: float) -> str:
    await asyncio.sleep(delay)
    return await slow(tag)


@resumable.function(retry=ONCE)
async def calls_after_its_step(tag: str) -> str:
    TASKS.append(asyncio.create_task(call_later(tag, 0.05)))
    await asyncio.sleep(0.3)  # step 1: the task calls `slow` meanwhile
    record(f"{tag} step 1")
    await asyncio.sleep(0)  # the run is blocked here
    record(f"{tag} went on")
    return "done"


async def start_and_leave(tag: str) -> None:
    TASKS.append(asyncio.create_task(slow(tag)))
    await asyncio.sleep(0.1)  # the task starts the child, which is now in flight


@resumable.function(retry=ONCE)
async def still_driving_at_next_await(tag: str) -> str:
    await start_and_leave(tag)
    await asyncio.sleep(0.01)
    record(f"{tag} went on")
    return "done"


@resumable.function(retry=ONCE)
async def leaves_a_task_behind(tag: str) -> str:
    TASKS.append(asyncio.create_task(call_later(tag, 0.2)))
    return "done"
'''


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("helper_children")
    compile_module(folder, MODULE, SOURCE)
    return folder


@pytest.fixture(scope="module")
def cases(folder: Path) -> Iterator[ModuleType]:
    yield import_file(folder / f"{MODULE}.py", MODULE)
    sys.modules.pop(MODULE, None)


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "effects.log"
    monkeypatch.setenv("HELPER_LOG", str(path))
    monkeypatch.delenv("HELPER_CRASH", raising=False)
    return path


def native(fn: Any, *args: Any, log: Path) -> Any:
    """The original coroutine's result (its side effects are not kept)."""
    before = log.read_text() if log.exists() else ""
    try:
        return asyncio.run(fn.__wrapped__(*args))
    finally:
        log.write_text(before)


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path, "state.db")


@pytest.fixture(params=LASTING)
def lasting_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path, "state.db")


def statuses(url: str) -> dict[str, str]:
    """{run id: status} of every run in the store at `url`."""
    with Runtime(url) as rt:
        return {r.run_id: r.status for r in rt.store.list_runs()}


def children(rt: Runtime, parent: str) -> dict[str, str]:
    """{child id: function} of a run's children."""
    return {r.run_id: r.function.split(":")[1] for r in rt.store.list_runs(parent=parent)}


def test_decorated_calls_in_a_helper_coroutine_are_child_runs(
    cases: ModuleType, url: str, log: Path
) -> None:
    with Runtime(url) as rt:
        got = rt.run(cases.through_helper, 1, run_id="h")
        assert got == native(cases.through_helper, 1, log=log) == [2, 34]
        # Step 1 awaits `add` itself; step 2 awaits `nested`, a plain
        # coroutine, which awaits `helper`, which awaits the two calls.
        assert children(rt, "h") == {"h/1.0": "add", "h/2.0": "add", "h/2.1": "crash_once"}
        assert all(rt.status(child) == "completed" for child in children(rt, "h"))
        assert rt.result("h/2.1") == 30
    assert lines(log) == ["add direct", "add h-a", "crash_once h-b"]


def test_decorated_calls_in_tasks_a_helper_creates_are_child_runs(
    cases: ModuleType, url: str, log: Path
) -> None:
    with Runtime(url) as rt:
        got = rt.run(cases.through_tasks, 5, run_id="t")
        assert got == native(cases.through_tasks, 5, log=log) == [6, 6, 7, 8]
        # Numbered in the order the tasks start: create_task, then gather's
        # two, then the TaskGroup's.
        assert children(rt, "t") == {f"t/1.{i}": "add" for i in range(4)}
        assert [rt.get(f"t/1.{i}").args_digest != "" for i in range(4)] == [True] * 4
        assert [rt.result(f"t/1.{i}") for i in range(4)] == [6, 6, 7, 8]
    assert sorted(lines(log)) == ["add t-g1", "add t-g2", "add t-task", "add t-tg"]


def test_a_child_completed_inside_a_helper_survives_a_crash(
    cases: ModuleType, folder: Path, tmp_path: Path, log: Path, lasting_url: str
) -> None:
    # The process is SIGKILLed inside the second child the helper awaits,
    # after the first one completed. Run again, the run resumes at the await
    # of the helper: the completed child returns its stored result.
    program = f"""
        import json, resumable, {MODULE} as m
        rt = resumable.Runtime({lasting_url!r})
        print(json.dumps(rt.run(m.through_helper, 1, run_id="crash")))
        """
    env = clean_env(HELPER_LOG=str(log), HELPER_CRASH=str(tmp_path / "crashed"))
    first = python(program, cwd=folder, env=env)
    assert first.returncode == -signal.SIGKILL, first.stdout + first.stderr
    assert lines(log) == ["add direct", "add h-a"]
    status = statuses(lasting_url)
    again = python(program, cwd=folder, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout) == native(cases.through_helper, 1, log=log)
    # Each completed child ran once; the one killed ran again, to its end.
    assert lines(log) == ["add direct", "add h-a", "crash_once h-b"]
    # At the kill, the helper's first child had completed, as a child run;
    # the one killed was stored at its start: a child the step does not
    # await itself is numbered in the order it starts, and matched by its
    # row if that order changes (docs/durability.md).
    assert status == {
        "crash": "running",
        "crash/1.0": "completed",
        "crash/2.0": "completed",
        "crash/2.1": "running",
    }


def test_a_task_that_outlives_its_step_blocks_the_run_and_drives_nothing(
    folder: Path, tmp_path: Path, log: Path, lasting_url: str
) -> None:
    # In a worker (a long-lived event loop, where a stray task would go on):
    # - a task created in step 0 calls `slow` while the run is in step 1;
    # - a task still drives the child `slow` when its step reaches the next await;
    # - a task left behind by a run that returned calls `slow` afterwards.
    env = clean_env(HELPER_LOG=str(log), RESUMABLE_STORE=lasting_url)
    dispatch = python(
        f"""
        import {MODULE} as m
        m.calls_after_its_step.dispatch("late", run_id="late")
        m.still_driving_at_next_await.dispatch("inflight", run_id="inflight")
        m.leaves_a_task_behind.dispatch("behind", run_id="behind")
        """,
        cwd=folder,
        env=env,
    )
    assert dispatch.returncode == 0, dispatch.stderr
    worker = start_worker(
        "--module", str(folder / f"{MODULE}.py"), "--concurrency", "4", cwd=tmp_path, env=env
    )
    try:
        with Runtime(lasting_url) as rt:

            def ended() -> bool:
                status = {r.run_id: r.status for r in rt.store.list_runs()}
                return all(status.get(r) in ("completed", "failed", "blocked") for r in TOP)

            wait_until(ended, "the three runs to end", proc=worker, timeout=30)
            # Give a stray task the time to drive `slow` to its end (0.4 s).
            time.sleep(0.8)
            found = {r.run_id: r for r in rt.store.list_runs()}
    finally:
        _, err = stop(worker)
    late, inflight, behind = (found[r] for r in TOP)
    assert late.status == "blocked", late.reason
    assert late.reason is not None and inflight.reason is not None
    assert "NondeterminismError" in late.reason
    assert "slow" in late.reason and "after that step had ended" in late.reason
    assert inflight.status == "blocked", inflight.reason
    assert "NondeterminismError" in inflight.reason
    assert "inflight/1.0" in inflight.reason
    assert behind.status == "completed"
    # Nothing went on past the error, and no child was driven to its end:
    # the late calls started no run at all.
    effects = lines(log)
    assert "late step 1" in effects
    assert "late went on" not in effects and "inflight went on" not in effects
    assert [e for e in effects if e.endswith(" end")] == [], effects
    assert "slow late start" not in effects and "slow behind start" not in effects
    assert set(found) - set(TOP) <= {"inflight/1.0"}, sorted(found)
    assert "inflight/1.0" not in found or found["inflight/1.0"].status != "completed"
    assert "Traceback" not in err, err


TOP = ("late", "inflight", "behind")
