"""Cancellation and timeouts in one process, on each store (memory, SQLite,
PostgreSQL):
`Runtime.cancel`, `@resumable.function(timeout=...)`, status "cancelled".

    live         a run being driven gets RunCancelled at its await, its
                 finally blocks (and their awaits) run, its children too
    at rest      a sleeping, event-waiting, blocked or pending run is
                 cancelled without running its code beyond finally blocks
    delivered    a cancel raised at await k and committed is never raised
                 again (a resume after it goes on in the finally block)
    timeouts     from the first start, waits included, never retried,
                 TimeoutError for callers, a restart does not reset it
    refusals     children, ended runs, unknown runs; retry of a cancelled run

Real processes killed with SIGKILL: tests/test_cancel_crash.py.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import resumable
from resumable import RunCancelled, Runtime
from resumable.retry import SystemClock
from tests.compiled import compile_and_import
from tests.stores import KINDS, LASTING, store_url

MODULE = "cancel_cases"
SOURCE = """
import asyncio

import resumable

LOG = []
GATE = {}


async def note(what):
    LOG.append(what)
    return what


async def hold(name):
    # a plain step that waits in the process until the test opens it
    GATE[name] = asyncio.Event()
    await GATE[name].wait()
    return name


@resumable.function
async def child(n):
    try:
        await note(("child", n))
        await hold("child")
        await note("child never")
    finally:
        await note(("child cleanup", n))


@resumable.function
async def parent():
    try:
        await note("parent")
        await child(1)
        return "done"
    except asyncio.CancelledError as e:
        await note(("parent saw", type(e).__name__))
        raise
    finally:
        await note("parent cleanup")


@resumable.function
async def sleeper():
    try:
        await note("start")
        await resumable.sleep(7 * 86400)
        await note("woke")
    finally:
        await note("cleanup")
        await note("cleanup 2")


@resumable.function
async def waiter():
    try:
        return await resumable.wait_event("go")
    finally:
        await note("cleanup")


@resumable.function
async def swallows():
    try:
        await hold("swallows")
    except asyncio.CancelledError:
        await note("swallowed")
    return "went on"


@resumable.function
async def refund(who):
    await asyncio.sleep(1.3)  # longer than the runtime's look for cancel requests
    await note(("refunded", who))
    return "refunded"


@resumable.function
async def inner():
    try:
        await resumable.sleep(3600)
    finally:
        await note("inner finally")
        await refund("inner")


@resumable.function
async def outer():
    return await inner()


@resumable.function(timeout=0.5)
async def slow():
    try:
        await note("slow")
        await hold("slow")
    finally:
        await note("slow cleanup")


@resumable.function(timeout=0.5, retry=resumable.Retry(max_attempts=5, initial_delay=0))
async def slow_raises():
    try:
        await hold("slow_raises")
    except asyncio.CancelledError:
        await note("converted")
        raise ValueError("after the timeout")


@resumable.function(timeout=3600)
async def long_sleeper():
    await note("start")
    await resumable.sleep(7 * 86400)
    return "woke"


@resumable.function
async def calls_slow():
    try:
        return await slow()
    except TimeoutError as e:
        return "caller saw " + type(e).__name__
"""


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("cancel")
    module = compile_and_import(folder / f"{MODULE}.py", MODULE, textwrap.dedent(SOURCE))
    yield module
    sys.modules.pop(MODULE, None)


@pytest.fixture
def m(cases: ModuleType) -> ModuleType:
    cases.LOG.clear()
    cases.GATE.clear()
    return cases


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path)


@pytest.fixture(params=LASTING)
def lasting_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path)


@pytest.fixture
def rt(url: str) -> Iterator[Runtime]:
    with Runtime(url) as runtime:
        yield runtime


class Later(SystemClock):
    """The system's clock, `offset` seconds on."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return super().time() + self.offset


async def until_held(m: ModuleType, name: str) -> None:
    for _ in range(1000):
        if name in m.GATE:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{name} never started holding")


def park(rt: Runtime, fn: Any, run_id: str) -> None:
    """Drive the dispatched run `run_id` until it waits as a row, then stop
    waiting for it here (the run stays a waiting row, driven by nobody)."""

    async def main() -> None:
        task = asyncio.ensure_future(rt.call(fn, run_id=run_id))
        for _ in range(400):
            if rt.status(run_id) == "waiting":
                break
            await asyncio.sleep(0.005)
        task.cancel()

    asyncio.run(main())
    assert rt.status(run_id) == "waiting"


def outcome(rt: Runtime, run_id: str) -> BaseException:
    try:
        rt.result(run_id)
    except BaseException as e:
        return e
    raise AssertionError(f"{run_id} did not raise")


# ------------------------------------------------------------------ a live run


def test_a_live_run_and_its_child_get_cancelled_at_their_awaits(m: ModuleType, rt: Runtime) -> None:
    async def main() -> BaseException:
        task = asyncio.ensure_future(rt.call(m.parent, run_id="p"))
        await until_held(m, "child")
        assert rt.cancel("p") is True
        assert rt.cancel("p") is False  # asked already
        with pytest.raises(RunCancelled) as caught:
            await task
        return caught.value

    error = asyncio.run(main())
    assert error.run_id == "p"  # the caller can tell it from its own cancellation
    assert m.LOG == [
        "parent",
        ("child", 1),
        ("child cleanup", 1),
        ("parent saw", "RunCancelled"),
        "parent cleanup",
    ]
    assert rt.status("p") == rt.status("p/2.0") == "cancelled"
    stored = outcome(rt, "p")
    assert isinstance(stored, RunCancelled) and isinstance(stored, asyncio.CancelledError)
    assert stored.run_id == "p"
    child = outcome(rt, "p/2.0")
    assert isinstance(child, RunCancelled) and child.run_id == "p/2.0"
    # The finally blocks' awaits were checkpoints like any other.
    assert rt.get("p").seq == 4


def test_a_run_that_catches_its_cancellation_goes_on(m: ModuleType, rt: Runtime) -> None:
    async def main() -> Any:
        task = asyncio.ensure_future(rt.call(m.swallows, run_id="s"))
        await until_held(m, "swallows")
        rt.cancel("s")
        return await task

    assert asyncio.run(main()) == "went on"
    assert m.LOG == ["swallowed"]
    assert rt.status("s") == "completed"


# -------------------------------------------------------------- runs at rest


def test_a_sleeping_run_is_cancelled_at_its_sleep(m: ModuleType, rt: Runtime) -> None:
    rt.dispatch(m.sleeper, run_id="z")

    async def main() -> None:
        task = asyncio.ensure_future(rt.call(m.sleeper, run_id="z"))
        for _ in range(400):
            if rt.status("z") == "waiting":
                break
            await asyncio.sleep(0.005)
        assert rt.status("z") == "waiting"
        assert rt.cancel("z")
        with pytest.raises(RunCancelled):
            await asyncio.wait_for(task, 10)

    asyncio.run(main())
    assert m.LOG == ["start", "cleanup", "cleanup 2"]
    assert rt.status("z") == "cancelled"
    cancel = rt.store.operation("z", "cancel")
    assert cancel is not None and cancel.outcome == "delivered"


def test_a_run_waiting_for_an_event_as_a_row_is_cancelled_by_the_next_driver(
    m: ModuleType, rt: Runtime
) -> None:
    """Parked as a row (nobody waits for it here): cancel makes it due, and
    whoever drives it next delivers the cancellation; no event is taken."""
    rt.dispatch(m.waiter, run_id="w")
    rt.dispatch(m.sleeper, run_id="other")

    park(rt, m.waiter, "w")
    assert rt.status("w") == "waiting"
    assert rt.get("w").wake_at is None
    rt.cancel("w")
    assert rt.get("w").wake_at == 0
    assert rt.status("other") == "pending"  # another run is not touched
    with pytest.raises(RunCancelled):
        rt.run(m.waiter, run_id="w")
    assert m.LOG == ["cleanup"]
    with pytest.raises(ValueError, match="has ended"):
        rt.send_event("w", "go")


def test_a_child_run_in_a_cancelled_childs_finally_block_runs_to_its_end(
    m: ModuleType, rt: Runtime
) -> None:
    """outer waits (as a row) on inner's sleep; cancelled, inner's finally
    block awaits refund, a new child run that takes longer than the watch
    interval: it is not cancelled (it started after the request)."""
    rt.dispatch(m.outer, run_id="o")
    park(rt, m.outer, "o")
    rt.cancel("o")
    with pytest.raises(RunCancelled):
        rt.run(m.outer, run_id="o")
    assert m.LOG == ["inner finally", ("refunded", "inner")]
    assert rt.status("o/1.0") == "cancelled"
    assert rt.status("o/1.0/3.0") == "completed"


def test_a_pending_run_is_cancelled_without_running_any_code(m: ModuleType, rt: Runtime) -> None:
    rt.dispatch(m.parent, run_id="q")
    assert rt.cancel("q")
    with pytest.raises(RunCancelled, match="before it started"):
        rt.run(m.parent, run_id="q")
    assert m.LOG == []
    assert rt.status("q") == "cancelled"


def test_a_blocked_run_is_cancelled_and_runs_its_finally(m: ModuleType, rt: Runtime) -> None:
    rt.dispatch(m.sleeper, run_id="b")

    park(rt, m.sleeper, "b")
    assert rt.store.block_damaged(rt.get("b").rowid, "an operator blocked it")
    assert rt.status("b") == "blocked"
    rt.cancel("b")
    assert rt.status("b") == "pending"
    with pytest.raises(RunCancelled):
        rt.run(m.sleeper, run_id="b")
    assert m.LOG == ["start", "cleanup", "cleanup 2"]


def test_a_delivered_cancellation_is_not_raised_again_after_a_crash(
    m: ModuleType, lasting_url: str
) -> None:
    """The process dies in the finally block, after the cancellation was
    committed with the checkpoint of the first cleanup await: the run resumes
    there and finishes its finally block, without a second CancelledError."""

    class Died(BaseException):
        pass

    calls = {"n": 0}

    def die_at_second_cleanup(info: resumable.CheckpointInfo) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the checkpoint of `note("cleanup 2")`, committed
            raise Died

    with Runtime(lasting_url) as first:
        first.dispatch(m.sleeper, run_id="d")

        park(first, m.sleeper, "d")
        first.cancel("d")
        first.on_checkpoint = die_at_second_cleanup
        with pytest.raises(Died):
            first.run(m.sleeper, run_id="d")
    assert m.LOG == ["start", "cleanup"]
    with Runtime(lasting_url) as second, pytest.raises(RunCancelled):
        second.run(m.sleeper, run_id="d")
    assert m.LOG == ["start", "cleanup", "cleanup 2"]


# -------------------------------------------------------------------- timeouts


def test_a_timeout_cancels_the_body_and_its_caller_sees_timeout_error(
    m: ModuleType, rt: Runtime
) -> None:
    with pytest.raises(TimeoutError, match=r"timeout of 0\.5 s"):
        rt.run(m.slow, run_id="t")
    assert m.LOG == ["slow", "slow cleanup"]
    assert rt.status("t") == "failed"
    assert rt.get("t").attempts == 0  # never retried
    assert rt.run(m.calls_slow, run_id="c") == "caller saw TimeoutError"


def test_an_exception_after_a_timeout_is_never_retried(m: ModuleType, rt: Runtime) -> None:
    with pytest.raises(ValueError, match="after the timeout"):
        rt.run(m.slow_raises, run_id="r")
    assert m.LOG == ["converted"]
    assert rt.get("r").attempts == 0


def test_a_timeout_counts_from_the_first_start_and_includes_waits(
    m: ModuleType, rt: Runtime
) -> None:
    rt.dispatch(m.long_sleeper, run_id="l")

    park(rt, m.long_sleeper, "l")
    operation = rt.store.operation("l", "deadline")
    assert operation is not None and operation.wake_at is not None
    deadline, record = operation.wake_at, rt.get("l")
    assert deadline == pytest.approx(record.created_at + 3600, abs=5)
    assert record.wake_at == deadline  # due at its deadline, not at the end of the week's sleep
    # A restart does not move the deadline; once past it (an hour and a bit
    # later), the run times out at its sleep.
    rt.clock = Later(3600 + 10)
    with pytest.raises(TimeoutError):
        rt.run(m.long_sleeper, run_id="l")
    assert m.LOG == ["start"]


def test_timeout_takes_positive_seconds() -> None:
    async def f() -> None:
        pass

    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive number of seconds"):
            resumable.function(timeout=bad)(f)
    with pytest.raises(TypeError, match="takes seconds"):
        resumable.function(timeout="5")(f)  # type: ignore[arg-type]


# -------------------------------------------------------------------- refusals


def test_what_cannot_be_cancelled_says_why(m: ModuleType, rt: Runtime) -> None:
    with pytest.raises(LookupError, match="no such run"):
        rt.cancel("nobody")
    assert rt.run(m.calls_slow, run_id="c") == "caller saw TimeoutError"
    with pytest.raises(ValueError, match="has ended"):
        rt.cancel("c")
    with pytest.raises(ValueError, match=r"child run of 'c'.*cancel the top-level run 'c'"):
        rt.cancel("c/1.0")
    rt.dispatch(m.parent, run_id="q")
    rt.cancel("q")
    with pytest.raises(RunCancelled):
        rt.run(m.parent, run_id="q")
    with pytest.raises(ValueError, match="cancelled run stays so"):
        rt.retry("q")
