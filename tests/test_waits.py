"""Durable waits in one process, on each store (memory, SQLite, PostgreSQL)
and a clock that does not sleep (a week passes at once): `resumable.sleep`,
`sleep_until`, `wait_event` and `Runtime.send_event`. (Wake times are the
runtime's clock on every store; PostgreSQL's leases expire by the database's
own `now()`, which a fake clock leaves alone: nothing here waits for one.)

    timers       the wake time is stored before the run sleeps; the run is a
                 waiting row (not a task) until due; a step run again waits
                 only for what is left; a parent awaiting a sleeping child
                 unloads with it
    events       kept when sent before the wait; send order; dedup keys;
                 delivered once per wait, bound at the next checkpoint; a
                 timeout is TimeoutError at the await, never retried, and
                 decided once (a later event does not undo it)
    errors       bad arguments, unknown and finished runs, native mode

Real processes killed with SIGKILL: tests/test_waits_crash.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import resumable
from resumable import Runtime
from tests.compiled import compile_and_import
from tests.stores import KINDS, LASTING, store_url

MODULE = "waits_cases"
SOURCE = """
import resumable

LOG = []


async def note(what):
    LOG.append(what)
    return what


@resumable.function
async def napper(seconds):
    await note("before")
    await resumable.sleep(seconds)
    await note("after")
    return "rested"


@resumable.function
async def until(when):
    await resumable.sleep_until(when)
    return await note("woke")


@resumable.function
async def parent(seconds):
    first = await note("parent")
    return first, await napper(seconds)


@resumable.function
async def nested(seconds):
    # the sleep is inside a helper coroutine: the run cannot unload
    async def helper():
        await resumable.sleep(seconds)
        return "helped"

    return await note(await helper())


@resumable.function
async def approval(order):
    await note(("charge", order))
    try:
        who = await resumable.wait_event("approved", timeout=3 * 86400)
    except TimeoutError as e:
        await note(("refund", order))
        return "refunded", str(e)
    await note(("ship", order, who))
    return "approved", who


@resumable.function
async def two_waits():
    a = await resumable.wait_event("item")
    b = await resumable.wait_event("item")
    return a, b


@resumable.function(retry=resumable.Retry(max_attempts=5, initial_delay=1))
async def timeout_not_retried():
    await note("start")
    return await resumable.wait_event("never", timeout=10)


@resumable.function
async def child_waits():
    return "child", await resumable.wait_event("go")


@resumable.function
async def parent_of_waiter():
    return await child_waits()


KILL = {"at": None}  # "take": in the step that took an event; "note": after its checkpoint


class Killed(BaseException):
    pass


def maybe_die(where):
    if KILL["at"] == where:
        KILL["at"] = None
        raise Killed(where)


async def noted(value):
    maybe_die("note")
    return value


@resumable.function
async def collector(n):
    got = []
    for i in range(n):
        got.append(await resumable.wait_event("e"))
        maybe_die("take")
        await noted(got[-1])
    return got
"""


class Clock:
    """Never sleeps: moves time on, and runs `during` at each sleep (to send
    an event while the run waits, or to look at the store)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now
        self.slept = 0.0
        self.naps = 0
        self.during: Callable[[], None] = lambda: None

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.naps += 1
        self.slept += seconds
        self.during()
        self.now += seconds
        await asyncio.sleep(0)

    async def wait_until(self, until: float | None, due: Callable[[], Any], poll: float) -> None:
        """Wait as the runtime's own loop does, in `poll` steps, but jump
        to `until` once nothing happened in a step (`during` runs at each)."""
        while True:
            self.during()
            if await due():
                return
            if until is not None and self.now >= until:
                return
            step = poll if until is None else min(poll, until - self.now)
            await self.sleep(step)
            if until is not None and not await due():
                await self.sleep(max(0.0, until - self.now))
                return


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("waits")
    module = compile_and_import(folder / f"{MODULE}.py", MODULE, textwrap.dedent(SOURCE))
    yield module
    sys.modules.pop(MODULE, None)


@pytest.fixture
def m(cases: ModuleType) -> ModuleType:
    cases.LOG.clear()
    return cases


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path)


@pytest.fixture(params=LASTING)
def lasting_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path)


@pytest.fixture
def rt(url: str, clock: Clock) -> Iterator[Runtime]:
    with Runtime(url, clock=clock) as runtime:
        yield runtime


def runs(rt: Runtime, *fields: str) -> list[tuple[Any, ...]]:
    """`fields` of every run in the store, by run id."""
    found = [rt.store.get(s.run_id) for s in rt.store.list_runs()]
    return sorted(tuple(getattr(r, f) for f in ("run_id", *fields)) for r in found if r)


# ----------------------------------------------------------------------- timers


def test_a_week_long_sleep_is_a_waiting_row_with_its_wake_time(
    m: ModuleType, rt: Runtime, clock: Clock
) -> None:
    week = 7 * 86400
    start = clock.now
    seen: list[tuple[Any, ...]] = []
    clock.during = lambda: seen.extend(
        (r.status, r.wake_at, r.reason) for r in [rt.store.get("n")] if r
    )
    assert rt.run(m.napper, week, run_id="n") == "rested"
    assert m.LOG == ["before", "after"]  # the step before the sleep ran once
    assert seen and seen[0][:2] == ("waiting", start + week)
    assert "sleeping until" in seen[0][2]
    timer = rt.store.operation("n", "timer:2.0")
    assert timer is not None and timer.wake_at == start + week
    assert clock.now >= start + week


def test_a_sleep_run_again_waits_only_for_what_is_left(
    m: ModuleType, lasting_url: str, clock: Clock
) -> None:
    """The process dies an hour into a day's sleep; the next one sleeps 23 h."""

    class Died(BaseException):
        pass

    def die() -> None:
        clock.now += 3600  # an hour passes, then the process dies
        raise Died

    clock.during = die
    start = clock.now
    with Runtime(lasting_url, clock=clock) as first, pytest.raises(Died):
        first.run(m.napper, 86400, run_id="n")
    clock.during = lambda: None
    clock.slept = 0.0
    with Runtime(lasting_url, clock=clock) as second:
        assert second.run(m.napper, 86400, run_id="n") == "rested"
    assert clock.now == pytest.approx(start + 86400, abs=1.0)
    assert clock.slept == pytest.approx(86400 - 3600)
    assert m.LOG == ["before", "after"]


def test_sleep_until_an_aware_datetime(m: ModuleType, rt: Runtime, clock: Clock) -> None:
    when = dt.datetime.fromtimestamp(clock.now + 5000, dt.UTC)
    assert rt.run(m.until, when, run_id="u") == "woke"
    assert clock.now >= when.timestamp()
    past = dt.datetime.fromtimestamp(clock.now - 10, dt.UTC)
    naps = clock.naps
    assert rt.run(m.until, past, run_id="u2") == "woke"
    assert clock.naps == naps  # already due: no wait at all


def test_a_parent_awaiting_a_sleeping_child_unloads_with_it(
    m: ModuleType, rt: Runtime, clock: Clock
) -> None:
    seen: list[list[tuple[Any, ...]]] = []
    clock.during = lambda: seen.append(runs(rt, "status", "wake_at"))
    start = clock.now
    assert rt.run(m.parent, 600, run_id="p") == ("parent", "rested")
    assert seen[0] == [("p", "waiting", start + 600), ("p/2.0", "waiting", start + 600)]
    assert m.LOG == ["parent", "before", "after"]


def test_a_sleep_in_a_helper_coroutine_waits_in_the_process(
    m: ModuleType, rt: Runtime, clock: Clock
) -> None:
    seen: list[tuple[Any, ...]] = []
    clock.during = lambda: seen.extend(runs(rt, "status"))
    assert rt.run(m.nested, 50, run_id="h") == "helped"
    assert seen == [("h", "running")]
    assert rt.store.operation("h", "timer:1.0") is not None


# ----------------------------------------------------------------------- events


def test_an_event_sent_before_the_wait_is_kept(m: ModuleType, rt: Runtime) -> None:
    rt.dispatch(m.approval, "o1", run_id="a")
    assert rt.send_event("a", "approved", {"by": "ann"}) is True
    assert rt.run(m.approval, "o1", run_id="a") == ("approved", {"by": "ann"})
    assert m.LOG == [("charge", "o1"), ("ship", "o1", {"by": "ann"})]
    assert [e.taken_by for e in rt.store.events("a")] == ["event:2.0"]


def test_an_event_sent_while_the_run_waits_wakes_it(
    m: ModuleType, rt: Runtime, clock: Clock
) -> None:
    def send() -> None:
        record = rt.store.get("a")
        if record is not None and record.status == "waiting" and not rt.store.events("a"):
            rt.send_event("a", "approved", "bob")

    clock.during = send
    start = clock.now
    assert rt.run(m.approval, "o2", run_id="a") == ("approved", "bob")
    assert clock.now - start < 10  # woken at once, not at the deadline


def test_events_of_one_name_arrive_in_send_order_once_each(m: ModuleType, rt: Runtime) -> None:
    rt.dispatch(m.two_waits, run_id="t")
    for item in ("first", "second", "third"):
        rt.send_event("t", "item", item)
    assert rt.run(m.two_waits, run_id="t") == ("first", "second")
    taken = [(e.payload != b"", e.taken_by) for e in rt.store.events("t")]
    assert [t for _, t in taken] == ["event:1.0", "event:2.0", None]


def test_a_dedup_key_makes_a_resend_harmless(m: ModuleType, rt: Runtime) -> None:
    rt.dispatch(m.two_waits, run_id="t")
    assert rt.send_event("t", "item", 1, dedup_key="k1") is True
    assert rt.send_event("t", "item", 99, dedup_key="k1") is False
    assert rt.send_event("t", "item", 2, dedup_key="k2") is True
    assert rt.run(m.two_waits, run_id="t") == (1, 2)
    # Once the run has ended, a resend (a sender retrying after a lost
    # answer) is still a resend; a new event is refused.
    assert rt.send_event("t", "item", 99, dedup_key="k2") is False
    with pytest.raises(ValueError, match="it has ended"):
        rt.send_event("t", "item", 3, dedup_key="k3")


def test_a_timeout_is_timeout_error_at_the_await(m: ModuleType, rt: Runtime, clock: Clock) -> None:
    start = clock.now
    result = rt.run(m.approval, "o3", run_id="a")
    assert result[0] == "refunded" and "'approved'" in result[1]
    assert clock.now >= start + 3 * 86400
    assert m.LOG == [("charge", "o3"), ("refund", "o3")]


def test_a_timeout_is_never_retried(m: ModuleType, rt: Runtime) -> None:
    with pytest.raises(TimeoutError):
        rt.run(m.timeout_not_retried, run_id="r")
    record = rt.get("r")
    assert record.status == "failed" and record.attempts == 0
    assert m.LOG == ["start"]


def test_a_timeout_is_decided_once(m: ModuleType, lasting_url: str, clock: Clock) -> None:
    """The process dies after the timeout, in the refund; an event sent
    before it restarts does not turn the run into an approval."""

    class Died(BaseException):
        pass

    def die_at_refund(what: Any) -> None:
        if isinstance(what, tuple) and what[0] == "refund" and m.LOG.count(what) == 1:
            raise Died

    original = m.note

    async def note(what: Any) -> Any:
        m.LOG.append(what)
        die_at_refund(what)
        return what

    m.note = note
    try:
        with Runtime(lasting_url, clock=clock) as first, pytest.raises(Died):
            first.run(m.approval, "o4", run_id="a")
        with Runtime(lasting_url, clock=clock) as second:
            second.send_event("a", "approved", "late")
            assert second.run(m.approval, "o4", run_id="a")[0] == "refunded"
    finally:
        m.note = original
    assert m.LOG.count(("refund", "o4")) == 2  # the refund step ran again, at least once
    assert ("ship", "o4", "late") not in m.LOG


def test_an_event_for_a_child_wakes_its_parent(m: ModuleType, rt: Runtime, clock: Clock) -> None:
    seen: list[Any] = []

    def send() -> None:
        if not seen:
            seen.extend(runs(rt, "status", "wake_at"))
            rt.send_event("w/1.0", "go", 7)

    clock.during = send
    assert rt.run(m.parent_of_waiter, run_id="w") == ("child", 7)
    assert seen == [("w", "waiting", None), ("w/1.0", "waiting", None)]


def test_a_waiting_run_without_timeout_is_never_due_by_time(
    m: ModuleType, rt: Runtime, clock: Clock
) -> None:
    rt.dispatch(m.two_waits, run_id="t")

    async def drive_once() -> Any:
        from resumable.lifecycle import drive_owned

        assert rt.store.lock("t")
        try:
            return await drive_owned(rt, m.two_waits, "t", contain=True)
        finally:
            rt.store.unlock("t")

    parked = asyncio.run(drive_once())
    assert parked.wake_at is None and "waiting for event 'item'" in parked.reason
    clock.now += 10 * 365 * 86400
    assert rt.store.runnable(clock.now, [rt.get("t").function]) == []
    assert asyncio.run(drive_once()) == parked  # looked at, not driven
    rt.send_event("t", "item", 1)
    assert [r.run_id for r in rt.store.runnable(clock.now, [rt.get("t").function])] == ["t"]


# ------------------------------------------------- exactly once, under kills


#: A run id of its own per example: the examples of one test share its store.
_examples = itertools.count()


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 4),
    actions=st.lists(st.sampled_from(["send", "drive", "kill-take", "kill-note"]), max_size=14),
)
def test_any_interleaving_of_sends_waits_and_kills_delivers_each_event_once(
    cases: ModuleType, lasting_url: str, n: int, actions: list[str]
) -> None:
    """Sends (by another Runtime, a sender), drives and drives killed (in
    the step that took an event, before its checkpoint; or after it), in any
    order, each drive by a fresh Runtime on the same store: the run receives
    0, 1, ... n-1, each once, in send order, and the events left over stay
    untaken. (A sender holds nothing of the run: one per example is enough,
    and opening a Runtime is most of an example's time on PostgreSQL.)"""
    from resumable.lifecycle import Finished, drive_owned

    url = lasting_url
    run_id = f"c{next(_examples)}"
    sent = 0

    def drive(kill: str | None) -> Any:
        cases.KILL["at"] = kill
        with Runtime(url, clock=Clock()) as rt:
            assert rt.store.lock(run_id)

            async def once() -> Any:
                return await drive_owned(rt, cases.collector, run_id, contain=False)

            try:
                return asyncio.run(once())
            except cases.Killed:
                return None
            finally:
                cases.KILL["at"] = None
                rt.store.unlock(run_id)

    with Runtime(url) as sender:
        sender.dispatch(cases.collector, n, run_id=run_id)
        outcome: Any = None
        for action in [*actions, *["send"] * n, "drive"]:
            if isinstance(outcome, Finished):
                break
            if action == "send":
                sender.send_event(run_id, "e", sent)
                sent += 1
            else:
                outcome = drive(None if action == "drive" else action.removeprefix("kill-"))
        while not isinstance(outcome, Finished):
            outcome = drive(None)
        assert outcome.value == list(range(n))
        takers = [e.taken_by for e in sender.store.events(run_id)]
    assert len(set(takers[:n])) == n and None not in takers[:n]
    assert takers[n:] == [None] * (sent - n)


# ----------------------------------------------------------------------- errors


def test_sending_to_an_unknown_or_finished_run_is_a_clear_error(m: ModuleType, rt: Runtime) -> None:
    with pytest.raises(LookupError, match="no such run"):
        rt.send_event("nope", "approved")
    rt.run(m.napper, 0, run_id="done")
    with pytest.raises(ValueError, match=r"it has ended \(completed\)"):
        rt.send_event("done", "approved")
    rt.dispatch(m.two_waits, run_id="t")
    with pytest.raises(TypeError, match="event name"):
        rt.send_event("t", "")
    with pytest.raises(resumable.SerializationError, match="cannot send event 'item'"):
        rt.send_event("t", "item", object())
    assert rt.store.events("t") == []


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: resumable.sleep(-1), ValueError),
        (lambda: resumable.sleep(float("nan")), ValueError),
        (lambda: resumable.sleep("5"), TypeError),
        (lambda: resumable.sleep_until(dt.datetime(2030, 1, 1)), TypeError),
        (lambda: resumable.wait_event(""), TypeError),
        (lambda: resumable.wait_event("x", timeout=-1), ValueError),
    ],
    ids=["negative", "nan", "text", "naive-datetime", "empty-name", "negative-timeout"],
)
def test_bad_arguments(call: Callable[[], Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        call()


def test_native_mode(m: ModuleType) -> None:
    assert asyncio.run(m.napper(0)) == "rested"
    with pytest.raises(RuntimeError, match="outside a durable run"):
        asyncio.run(m.two_waits())
