"""resumable.gather, race and any in one process, on each store (memory,
SQLite, PostgreSQL),
each checked against the same coroutine run natively under asyncio (the
oracle), and across a crash (a BaseException that stops the process's
driving, as SIGKILL would; real SIGKILL: tests/test_fanout_crash.py).

    semantics    results in argument order; the first failure raised and the
                 others cancelled (their finally blocks run); race's first
                 outcome; any's first success, or an ExceptionGroup
    ids          children numbered in argument order when the fan-out starts
    crashes      completed children never run again; a committed winner is
                 the winner after a resume, even if another would now finish
                 first; a plain winner's result is stored and not recomputed;
                 a loser cut off in its finally block finishes it
    errors       no awaitables, a non-awaitable
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import resumable
from resumable import Runtime
from tests.compiled import compile_and_import
from tests.stores import KINDS, LASTING, store_url

MODULE = "fanout_cases"
SOURCE = """
import asyncio

import resumable

LOG = []
DELAY = {}  # name -> seconds (set by the tests)
DIE = {"at": None}


class Died(BaseException):
    pass


async def note(what):
    LOG.append(what)
    if DIE["at"] == what:
        DIE["at"] = None
        raise Died(what)
    return what


@resumable.function
async def work(name, fail=False):
    try:
        await note(("start", name))
        await asyncio.sleep(DELAY.get(name, 0.01))
        if fail:
            raise ValueError(f"{name} failed")
        await note(("end", name))
        return name.upper()
    finally:
        await note(("finally", name))


counter = {"plain": 0}


async def plain(name):
    counter["plain"] += 1
    await asyncio.sleep(DELAY.get(name, 0.01))
    return f"plain {name}"


@resumable.function
async def fan():
    got = await resumable.gather(work("a"), work("b"), plain("p"))
    await note(("gathered", got))
    return got


@resumable.function
async def fan_fails():
    try:
        await resumable.gather(work("a"), work("bad", fail=True), work("c"))
    except ValueError as e:
        await note(("caught", str(e)))
        return str(e)


@resumable.function
async def fan_keeps():
    got = await resumable.gather(work("a"), work("bad", fail=True), return_exceptions=True)
    return [type(x).__name__ if isinstance(x, Exception) else x for x in got]


@resumable.function
async def racer():
    won = await resumable.race(work("slow"), work("fast"))
    await note(("won", won))
    return won


@resumable.function
async def race_plain():
    won = await resumable.race(plain("p"), work("slow"))
    await note(("won", won))
    return won


@resumable.function
async def race_error():
    try:
        return await resumable.race(work("bad", fail=True), work("slow"))
    except ValueError as e:
        return "race raised " + str(e)


@resumable.function
async def anyone():
    return await resumable.any(work("bad", fail=True), work("fast"), work("slow"))


@resumable.function
async def all_fail():
    try:
        await resumable.any(work("bad", fail=True), work("worse", fail=True))
    except ExceptionGroup as group:
        return [str(e) for e in group.exceptions]


async def later(name, arg):
    await asyncio.sleep(DELAY[name + " helper"])
    return await work(arg)


@resumable.function
async def helpers():
    # asyncio.gather of plain helpers: which child starts first depends on time
    return await asyncio.gather(later("x", "a"), later("y", DELAY.get("y arg", "b")))


@resumable.function
async def napper(name, seconds):
    await note(("nap", name))
    await resumable.sleep(seconds)
    return name


@resumable.function
async def waiter(name):
    return await resumable.wait_event(name)


@resumable.function
async def sleepy_tree():
    return await resumable.gather(napper("a", 0.3), napper("b", 0.6), waiter("go"))


class Opaque:
    pass


FIXED = {"yet": False}


@resumable.function
async def maker():
    await asyncio.sleep(0.01)
    return "fixed" if FIXED["yet"] else Opaque()  # cannot be stored until fixed


@resumable.function
async def fine(n):
    await asyncio.sleep(0.05)
    return n


@resumable.function
async def fan_blocks():
    return await resumable.gather(fine(1), maker(), fine(2))


@resumable.function
async def numbered():
    await note("first")
    return await resumable.gather(work("slow"), work("a"), plain("p"), work("b"))
"""


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("fanout")
    module = compile_and_import(folder / f"{MODULE}.py", MODULE, textwrap.dedent(SOURCE))
    yield module
    sys.modules.pop(MODULE, None)


@pytest.fixture
def m(cases: ModuleType) -> ModuleType:
    cases.LOG.clear()
    cases.DELAY.clear()
    cases.DELAY.update(slow=0.3, fast=0.01, a=0.05, b=0.01, p=0.02, bad=0.02, worse=0.03)
    cases.DIE["at"] = None
    cases.counter["plain"] = 0
    return cases


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path)


@pytest.fixture(params=LASTING)
def lasting_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path)


@pytest.fixture
def rt(url: str) -> Iterator[Runtime]:
    with Runtime(url, retry=resumable.Retry(max_attempts=1)) as runtime:
        yield runtime


def native(m: ModuleType, fn: Any) -> tuple[Any, list[Any]]:
    m.LOG.clear()
    result = asyncio.run(fn.__wrapped__())
    log = list(m.LOG)
    m.LOG.clear()
    return result, log


def statuses(rt: Runtime, run_id: str) -> dict[str, str]:
    return {r.run_id: r.status for r in rt.store.list_runs() if r.run_id.startswith(run_id + "/")}


CASES = ["fan", "fan_fails", "fan_keeps", "racer", "race_plain", "race_error", "anyone", "all_fail"]


@pytest.mark.parametrize("name", CASES)
def test_compiled_matches_native(m: ModuleType, rt: Runtime, name: str) -> None:
    # Ten times the fixture's delays: which child wins, and which losers have
    # started when it does, must not depend on how long starting a child run
    # takes (a few round trips on PostgreSQL, on a loaded machine).
    m.DELAY.update({k: v * 10 for k, v in m.DELAY.items() if isinstance(v, float)})
    fn = getattr(m, name)
    expected, native_log = native(m, fn)
    assert rt.run(fn, run_id=name) == expected
    # The same steps ran (concurrent children may interleave differently).
    assert sorted(map(repr, m.LOG)) == sorted(map(repr, native_log))


def test_a_gather_failure_cancels_the_others_durably(m: ModuleType, rt: Runtime) -> None:
    assert rt.run(m.fan_fails, run_id="g") == "bad failed"
    # c finished before bad failed; a was still going, and was cancelled.
    assert statuses(rt, "g") == {"g/1.0": "cancelled", "g/1.1": "failed", "g/1.2": "completed"}
    assert ("finally", "a") in m.LOG and ("end", "a") not in m.LOG
    ops = rt.store.operation("g", "fanout:1.0")
    assert ops is not None and ops.outcome == '{"i":1,"ok":false}'
    cancel = rt.store.operation("g/1.0", "cancel")
    assert cancel is not None and cancel.outcome == "delivered"


def test_race_losers_are_cancelled_through_their_finally(m: ModuleType, rt: Runtime) -> None:
    assert rt.run(m.racer, run_id="r") == "FAST"
    assert statuses(rt, "r") == {"r/1.0": "cancelled", "r/1.1": "completed"}
    assert m.LOG.index(("finally", "slow")) < m.LOG.index(("won", "FAST"))


def test_children_are_numbered_in_argument_order(m: ModuleType, rt: Runtime) -> None:
    assert rt.run(m.numbered, run_id="n") == ["SLOW", "A", "plain p", "B"]
    assert statuses(rt, "n") == dict.fromkeys(["n/2.0", "n/2.1", "n/2.2"], "completed")
    assert [rt.result(f"n/2.{i}") for i in range(3)] == ["SLOW", "A", "B"]


def test_a_tree_whose_children_all_wait_is_a_waiting_row(m: ModuleType, lasting_url: str) -> None:
    """Every child of the gather waits (two sleeps, an event): the run
    unloads as a row, due when its first child is; an event sent to a
    child wakes it. (Watched by another Runtime, from another thread, as
    another process would: so not on memory://, one Runtime's own.)"""
    seen: list[list[tuple[Any, ...]]] = []

    def watch() -> None:
        with Runtime(lasting_url) as watcher:
            for _ in range(200):
                time.sleep(0.02)
                found = watcher.store.list_runs()
                seen.append(sorted((r.run_id, r.status, r.wake_at) for r in found))
                rows = seen[-1]
                if len(rows) == 4 and rows[2][1] == "completed" and rows[0][1] == "waiting":
                    break  # b woke and ended: the parent waits for the event alone
            watcher.send_event("t/1.2", "go", "now")

    with Runtime(lasting_url) as rt:
        rt.dispatch(m.sleepy_tree, run_id="t")
        watcher = threading.Thread(target=watch)
        watcher.start()
        assert rt.run(m.sleepy_tree, run_id="t") == ["a", "b", "now"]
        watcher.join()
    # Each step before a sleep ran once (in either order: the children start concurrently).
    assert sorted(m.LOG) == [("nap", "a"), ("nap", "b")]
    unloaded = [rows for rows in seen if len(rows) == 4 and all(r[1] == "waiting" for r in rows)]
    assert unloaded, seen
    (root, a, b, go) = unloaded[0]
    assert root[2] == a[2] < b[2] and go[2] is None  # due with its first child
    assert [r[0] for r in (root, a, b, go)] == ["t", "t/1.0", "t/1.1", "t/1.2"]
    after_b = [rows for rows in seen if rows[2][1] == "completed"]
    assert after_b and after_b[-1][0][1:] == ("waiting", None)  # only the event is left


def test_a_blocked_child_decides_nothing_and_a_retry_gathers_all(
    m: ModuleType, rt: Runtime
) -> None:
    """A child that blocks (its result cannot be stored) blocks the run; the
    gather commits no decision, so once fixed a retry gathers every result."""
    m.FIXED["yet"] = False
    with pytest.raises(resumable.SerializationError):
        rt.run(m.fan_blocks, run_id="k")
    assert rt.status("k") == "blocked"
    assert rt.store.operation("k", "fanout:1.0") is None
    m.FIXED["yet"] = True
    assert rt.retry("k") == [1, "fixed", 2]


# --------------------------------------------------------------------- crashes


def test_a_crash_in_a_gather_does_not_run_completed_children_again(
    m: ModuleType, lasting_url: str
) -> None:
    m.DIE["at"] = ("finally", "a")  # b has completed; a dies in its finally block
    with Runtime(lasting_url) as first, pytest.raises(m.Died):
        first.run(m.fan, run_id="f")
    assert ("end", "b") in m.LOG
    m.LOG.clear()
    with Runtime(lasting_url) as second:
        assert second.run(m.fan, run_id="f") == ["A", "B", "plain p"]
    assert ("start", "b") not in m.LOG and ("end", "b") not in m.LOG
    assert m.LOG[:1] == [("finally", "a")]  # a resumed at its last checkpoint


def test_a_committed_winner_stays_the_winner_after_a_crash(m: ModuleType, lasting_url: str) -> None:
    """fast won and was committed; the process dies in slow's finally block.
    Resumed where slow would now win, the race still returns fast's result,
    and slow finishes its finally block, cancelled."""
    m.DIE["at"] = ("finally", "slow")
    with Runtime(lasting_url) as first, pytest.raises(m.Died):
        first.run(m.racer, run_id="r")
    m.DELAY.update(slow=0.0, fast=0.5)
    m.LOG.clear()
    with Runtime(lasting_url) as second:
        assert second.run(m.racer, run_id="r") == "FAST"
        assert statuses(second, "r") == {"r/1.0": "cancelled", "r/1.1": "completed"}
    assert m.LOG == [("finally", "slow"), ("won", "FAST")]


def test_a_plain_winner_is_stored_and_not_computed_again(m: ModuleType, lasting_url: str) -> None:
    m.DIE["at"] = ("finally", "slow")
    with Runtime(lasting_url) as first, pytest.raises(m.Died):
        first.run(m.race_plain, run_id="p")
    assert m.counter["plain"] == 1
    with Runtime(lasting_url) as second:
        assert second.run(m.race_plain, run_id="p") == "plain p"
    assert m.counter["plain"] == 1


def test_children_started_in_another_order_are_matched_by_function_and_arguments(
    m: ModuleType, lasting_url: str
) -> None:
    """asyncio.gather of helpers that call children after an await: the
    process dies in b's child; run again, b's helper starts first and gets a's number, yet
    each call finds its own child (a's completed one is not run again)."""
    m.DELAY.update({"x helper": 0.0, "y helper": 0.03, "b": 0.2})
    m.DIE["at"] = ("finally", "b")
    with Runtime(lasting_url) as first:
        with pytest.raises(m.Died):
            first.run(m.helpers, run_id="h")
        assert first.result("h/1.0") == "A"
    m.DELAY.update({"x helper": 0.05, "y helper": 0.0})
    m.LOG.clear()
    with Runtime(lasting_url) as second:
        assert second.run(m.helpers, run_id="h") == ["A", "B"]
    assert m.LOG == [("finally", "b")]  # a: its stored result; b: from its checkpoint


def test_a_child_started_with_other_arguments_blocks_the_run(
    m: ModuleType, lasting_url: str
) -> None:
    m.DELAY.update({"x helper": 0.0, "y helper": 0.03, "b": 0.2})
    m.DIE["at"] = ("finally", "b")
    with Runtime(lasting_url) as first, pytest.raises(m.Died):
        first.run(m.helpers, run_id="h")
    m.DELAY["y arg"] = "c"  # the step, run again, calls work("c") instead of work("b")
    with Runtime(lasting_url) as second:
        with pytest.raises(resumable.NondeterminismError, match="other arguments"):
            second.run(m.helpers, run_id="h")
        assert second.status("h") == "blocked"


# ---------------------------------------------------------------------- errors


def test_bad_fanouts_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="at least one awaitable"):
        resumable.race()
    with pytest.raises(ValueError, match="at least one awaitable"):
        resumable.any()
    with pytest.raises(TypeError, match="argument 1 is not awaitable"):
        resumable.gather(asyncio.sleep(0), print)
    assert asyncio.run(_empty_gather()) == []


async def _empty_gather() -> Any:
    return await resumable.gather()
