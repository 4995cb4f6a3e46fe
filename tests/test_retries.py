"""Retries and failures of durable runs.

- `resumable.Retry`: its documented defaults, argument validation and the
  delays it asks for (`initial_delay * backoff**(n-1)`, at most `max_delay`,
  with jitter inside its bounds);
- a failing await is tried again from its checkpoint with that backoff, on an
  injected clock that never sleeps; the run is `waiting` (with `wake_at`)
  while it waits; when the attempts are used up the exception is raised at
  the await, where the function's own try/except sees it;
- what is never retried: `non_retryable` types and programming errors;
- a child run retries under its own policy and a failed child is never run
  again by its parent;
- an unhandled exception fails the run; `rt.run` and `rt.result` raise it
  again (same type and args), also from another Runtime or process, and its
  traceback text is kept;
- `rt.retry(run_id)` resumes a failed or blocked run from its last checkpoint.

The functions under test are written to a temporary folder, compiled and
imported once per module (`cases` fixture). The oracle is the original
coroutine under asyncio (`fn.__wrapped__`).
"""

from __future__ import annotations

import asyncio
import inspect
import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import resumable
from resumable import Retry, Runtime
from resumable.store import RunRecord
from tests.compiled import compile_and_import
from tests.stores import KINDS, store_url

MODULE = "retries_cases"

SOURCE = '''
"""Functions for tests/test_retries.py: every awaited call goes through `op`."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import resumable

#: What ran, in order (awaited calls and marks).
LOG: list[Any] = []
#: How many more times `op(name)` fails before it succeeds.
FAIL: dict[str, int] = {}
#: Exception type `op(name)` raises when it fails (default Flaky).
RAISES: dict[str, type[BaseException]] = {}
#: Set by a test to stand for a fix being deployed.
FIXED: dict[str, bool] = {"deploy": False}


class Flaky(Exception):
    """A transient failure (retryable)."""


class Fatal(Exception):
    """A failure listed in `non_retryable`."""


class Declined(Exception):
    def __init__(self, user: str, amount: int) -> None:
        super().__init__(f"card of {user} declined", amount)
        self.user = user
        self.amount = amount


class NotStorable:
    """No codec: a local holding one cannot be checkpointed."""

    def __init__(self, value: int) -> None:
        self.value = value


@dataclasses.dataclass
class Storable:
    value: int


#: What `blocks` holds across an await (a test deploys the fix: Storable).
HOLDER: dict[str, Any] = {"cls": NotStorable}


def mark(what: Any) -> Any:
    LOG.append(what)
    return what


async def op(name: str, value: Any = None) -> Any:
    """An awaited call that fails FAIL[name] more times (with args (name, left))."""
    LOG.append(name)
    await asyncio.sleep(0)
    left = FAIL.get(name, 0)
    if left:
        FAIL[name] = left - 1
        raise RAISES.get(name, Flaky)(name, left)
    return value


FOUR = resumable.Retry(max_attempts=4, initial_delay=1.0, backoff=2.0, max_delay=3.0, jitter=0.0)
ONCE = resumable.Retry(max_attempts=1)


@resumable.function(retry=FOUR)
async def steps(x: int) -> list[Any]:
    a = await op("first", x)
    mark("between")
    b = await op("second", mark(a + 1))
    mark("after")
    c = await op("third", b * 10)
    return [a, b, c]


@resumable.function(retry=FOUR)
async def raises_after_await(x: int) -> Any:
    got = await op("fine", x)
    mark("after")
    if got:
        raise Flaky("after the await", got)
    return got


@resumable.function(retry=FOUR)
async def guarded(x: int) -> Any:
    mark("start")
    try:
        got = await op("always", x)
    except Flaky as e:
        mark("caught")
        return ("caught", e.args)
    return ("ok", got)


@resumable.function(retry=resumable.Retry(max_attempts=5, jitter=0.0, non_retryable=(Fatal,)))
async def fatal_once(x: int) -> Any:
    try:
        return await op("fatal", x)
    except Fatal as e:
        return ("fatal", e.args)


@resumable.function
async def default_policy(kind: str) -> Any:
    """No policy of its own: the Runtime's, else Retry()."""
    try:
        return await op(kind, 1)
    except Exception as e:
        return (type(e).__name__, e.args)


@resumable.function(retry=resumable.Retry(max_attempts=2, initial_delay=5.0, jitter=0.0))
async def child(n: int) -> int:
    mark(("child body", n))
    got = await op("child-op", n)
    return got * 100


@resumable.function(retry=resumable.Retry(max_attempts=6, initial_delay=7.0, jitter=0.0))
async def parent_catches(n: int) -> Any:
    mark("parent start")
    try:
        got = await child(n)
    except Flaky as e:
        mark("parent caught")
        return ("caught", e.args)
    return ("ok", got)


@resumable.function(retry=resumable.Retry(max_attempts=6, initial_delay=7.0, jitter=0.0))
async def parent_fails(n: int) -> int:
    a = await op("parent-op", n)
    return await child(a)


@resumable.function(retry=ONCE)
async def unhandled(user: str, amount: int) -> str:
    await op("prepare", user)
    raise Declined(user, amount)


@resumable.function(retry=ONCE)
async def fails_at_await(x: int) -> int:
    await op("prepare", x)
    return await op("flaky-step", x)


async def deploy(name: str, value: int) -> int:
    LOG.append(name)
    await asyncio.sleep(0)
    if not FIXED["deploy"]:
        raise Flaky(f"{name} is broken until the fix is deployed")
    return value * 10


@resumable.function(retry=ONCE)
async def needs_fix(x: int) -> int:
    a = await op("prep", x)
    mark("between")
    b = await deploy("deploy", a)
    c = await op("finish", b + 1)
    return c


@resumable.function(retry=ONCE)
async def blocks(x: int) -> int:
    a = await op("prep", x)
    held = HOLDER["cls"](a)
    b = await op("next", held.value + 1)
    return held.value + b


@resumable.function(retry=ONCE)
async def parent_of_failing_child(n: int) -> int:
    a = await op("pre", n)
    return await child(a)
'''


class FakeClock:
    """A clock that never sleeps: `sleep` records the delay, looks at the
    store (what the run looks like while it waits) and moves time on."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.delays: list[float] = []
        self.waiting: list[list[RunRecord]] = []  # the waiting runs, at each sleep
        self.rt: Runtime | None = None

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.rt is not None:
            store = self.rt.store
            waiting = store.list_runs(statuses=("waiting",))
            self.waiting.append([r for r in (store.get(w.run_id) for w in waiting) if r])
        self.now += seconds


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("retries")
    module = compile_and_import(folder / f"{MODULE}.py", MODULE, textwrap.dedent(SOURCE))
    yield module
    sys.modules.pop(MODULE, None)


@pytest.fixture
def m(cases: ModuleType) -> ModuleType:
    """The case module with its logs cleared."""
    cases.LOG.clear()
    cases.FAIL.clear()
    cases.RAISES.clear()
    cases.FIXED["deploy"] = False
    cases.HOLDER["cls"] = cases.NotStorable
    return cases


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=KINDS)
def rt(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Runtime]:
    url = store_url(request, request.param, tmp_path)
    runtime = Runtime(url, clock=clock, seed=7)
    clock.rt = runtime
    yield runtime
    runtime.close()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def native(fn: resumable.Function, *args: Any) -> Any:
    """The oracle: the original coroutine under asyncio (exceptions returned)."""
    try:
        return asyncio.run(fn.__wrapped__(*args))
    except Exception as e:
        return e


# ----------------------------------------------------------------- Retry itself


def test_retry_defaults_are_the_documented_ones() -> None:
    r = Retry()
    assert (r.max_attempts, r.initial_delay, r.backoff, r.max_delay, r.jitter) == (
        3,
        1.0,
        2.0,
        60.0,
        0.1,
    )
    assert r.non_retryable == ()
    assert Retry(non_retryable=[KeyError]).non_retryable == (KeyError,)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": -2}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"initial_delay": -1}, "initial_delay"),
        ({"max_delay": -0.5}, "max_delay"),
        ({"backoff": 0.5}, "backoff"),
        ({"jitter": 1.5}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
    ],
)
def test_retry_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Retry(**kwargs)


def test_retry_rejects_non_exception_types_in_non_retryable() -> None:
    with pytest.raises(TypeError, match="non_retryable"):
        Retry(non_retryable=(ValueError, 42))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="non_retryable"):
        Retry(non_retryable=(int,))  # type: ignore[arg-type]


def test_decorator_takes_only_a_retry() -> None:
    async def f() -> None:
        pass

    with pytest.raises(TypeError, match=r"resumable\.Retry"):
        resumable.function(retry={"max_attempts": 3})(f)
    with pytest.raises(TypeError, match=r"resumable\.Retry"):
        Runtime("memory://", retry={"max_attempts": 3})  # type: ignore[arg-type]


def test_delays_grow_by_backoff_up_to_max_delay() -> None:
    policy = Retry(max_attempts=10, initial_delay=0.5, backoff=3.0, max_delay=10.0, jitter=0.0)
    rng = random.Random(0)
    assert [policy.delay(n, rng) for n in range(1, 6)] == [0.5, 1.5, 4.5, 10.0, 10.0]


def test_jitter_stays_within_its_bounds_and_varies() -> None:
    policy = Retry(initial_delay=2.0, backoff=2.0, max_delay=20.0, jitter=0.25)
    rng = random.Random(1)
    for n in range(1, 6):
        base = min(2.0 * 2.0 ** (n - 1), 20.0)
        got = [policy.delay(n, rng) for _ in range(200)]
        assert all(base * 0.75 <= d <= base * 1.25 for d in got)
        assert len(set(got)) > 100  # really random
        assert min(got) < base < max(got)


# ----------------------------------------------------------------- a flaky step


@pytest.mark.parametrize("failures", [0, 1, 3])
def test_flaky_step_is_retried_from_its_checkpoint(
    m: ModuleType, rt: Runtime, clock: FakeClock, failures: int
) -> None:
    m.FAIL["second"] = failures
    assert rt.run(m.steps, 4, run_id="s") == [4, 5, 50]
    # Each attempt evaluated the operand again (mark(a + 1) and op), nothing before
    # the checkpoint ran again ("first", "between").
    assert ["first", "between", *[5, "second"] * (failures + 1), "after", "third"] == m.LOG
    # 1, 2, then 4 capped at max_delay=3 (no jitter).
    assert clock.delays == [1.0, 2.0, 3.0][:failures]
    assert rt.status("s") == "completed"
    record = rt.get("s")
    assert (record.attempt, record.attempts, record.wake_at) == (0, failures, None)
    # The oracle (no failures natively).
    m.LOG.clear()
    assert native(m.steps, 4) == [4, 5, 50]


def test_run_waits_with_status_waiting_and_wake_at(
    m: ModuleType, rt: Runtime, clock: FakeClock
) -> None:
    m.FAIL["second"] = 2
    start = clock.now
    assert rt.run(m.steps, 1, run_id="w") == [1, 2, 20]
    assert [[r.run_id for r in seen] for seen in clock.waiting] == [["w"], ["w"]]
    first, second = clock.waiting[0][0], clock.waiting[1][0]
    assert (first.status, first.attempt, first.attempts) == ("waiting", 1, 1)
    assert first.wake_at == start + 1.0
    assert (second.status, second.attempt, second.attempts) == ("waiting", 2, 2)
    assert second.wake_at == start + 1.0 + 2.0
    assert first.reason is not None and "Flaky" in first.reason and "second" in first.reason
    # The run stands at the checkpoint of the failing await while it waits.
    assert first.seq == second.seq == 2


def test_jittered_delays_are_within_bounds_and_follow_the_seed(m: ModuleType) -> None:
    policy = Retry(max_attempts=5, initial_delay=1.0, backoff=2.0, max_delay=5.0, jitter=0.5)

    def delays(seed: int) -> list[float]:
        m.LOG.clear()
        m.FAIL["always"] = 4
        clock = FakeClock()
        with Runtime("memory://", clock=clock, seed=seed, retry=policy) as runtime:
            # `guarded` has its own policy; `default_policy` takes the runtime's.
            m.FAIL["Flaky"] = 4
            assert runtime.run(m.default_policy, "Flaky") == 1
        return clock.delays

    got = delays(3)
    assert len(got) == 4
    for n, d in enumerate(got, start=1):
        base = min(2.0 ** (n - 1), 5.0)
        assert base * 0.5 <= d <= base * 1.5
    assert got != [1.0, 2.0, 4.0, 5.0]  # jitter applied
    assert delays(3) == got  # the seed decides
    assert delays(4) != got


class Crash(BaseException):
    """Stands for the process dying (raised by the clock while a run waits)."""


class CrashingClock(FakeClock):
    """Dies in its first sleep."""

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if len(self.delays) == 1:
            raise Crash


def test_attempts_and_backoff_survive_a_crash_while_waiting(m: ModuleType, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "runs.db")
    m.FAIL["second"] = 3
    clock = CrashingClock()
    with Runtime(url, clock=clock) as runtime:
        clock.rt = runtime
        with pytest.raises(Crash):
            runtime.run(m.steps, 2, run_id="cw")
        record = runtime.get("cw")
        assert (record.status, record.attempt, record.seq) == ("waiting", 1, 2)
        assert record.wake_at == 1000.0 + 1.0
    # A new process (here: a new Runtime) resumes it: it waits until wake_at,
    # then goes on counting attempts (attempt 2 waits 2, attempt 3 waits 3).
    later_clock = FakeClock(now=1000.25)
    with Runtime(url, clock=later_clock) as later:
        assert later.run(m.steps, run_id="cw") == [2, 3, 30]
    assert later_clock.delays == [0.75, 2.0, 3.0]
    assert ["first", "between", *[3, "second"] * 4, "after", "third"] == m.LOG


def test_code_after_the_await_that_raises_is_retried_from_its_checkpoint(
    m: ModuleType, rt: Runtime, clock: FakeClock
) -> None:
    # Like `r = await client.get(url); r.raise_for_status()`: the exception
    # first raised after checkpoint 1 leaves the function, so the step is
    # tried again from checkpoint 1 (the await's operand runs again), four
    # attempts in all, sharing one counter.
    with pytest.raises(m.Flaky, match="after the await"):
        rt.run(m.raises_after_await, 5, run_id="after")
    assert m.LOG == ["fine", "after"] * 4
    assert len(clock.delays) == 3
    assert rt.status("after") == "failed"
    assert rt.get("after").attempts == 3


# ----------------------------------------------------------------- attempts used up


def test_exhausted_retries_raise_at_the_await_and_try_except_catches(
    m: ModuleType, rt: Runtime, clock: FakeClock
) -> None:
    m.FAIL["always"] = 10
    got = rt.run(m.guarded, 3, run_id="g")
    # The last attempt's exception (left=7 after 4 attempts).
    assert got == ("caught", ("always", 7))
    assert ["start", *["always"] * 4, "caught"] == m.LOG
    assert clock.delays == [1.0, 2.0, 3.0]
    assert rt.status("g") == "completed"
    # The oracle sees the same exception once.
    m.LOG.clear()
    m.FAIL["always"] = 7
    assert native(m.guarded, 3) == got
    assert m.LOG == ["start", "always", "caught"]


def test_non_retryable_types_are_raised_at_once(
    m: ModuleType, rt: Runtime, clock: FakeClock
) -> None:
    m.FAIL["fatal"] = 1
    m.RAISES["fatal"] = m.Fatal
    assert rt.run(m.fatal_once, 1, run_id="nr") == ("fatal", ("fatal", 1))
    assert m.LOG == ["fatal"]  # one attempt
    assert clock.delays == []
    assert rt.get("nr").attempts == 0


@pytest.mark.parametrize(
    "kind", [TypeError, NameError, UnboundLocalError, AttributeError, AssertionError, ImportError]
)
def test_programming_errors_are_not_retried(
    m: ModuleType, rt: Runtime, clock: FakeClock, kind: type[Exception]
) -> None:
    m.FAIL[kind.__name__] = 5
    m.RAISES[kind.__name__] = kind
    assert rt.run(m.default_policy, kind.__name__, run_id="pe") == (
        kind.__name__,
        (kind.__name__, 5),
    )
    assert [kind.__name__] == m.LOG
    assert clock.delays == []
    assert rt.get("pe").attempts == 0


def test_default_policy_retries_three_times_with_jitter(
    m: ModuleType, rt: Runtime, clock: FakeClock
) -> None:
    m.FAIL["ValueError"] = 5
    m.RAISES["ValueError"] = ValueError
    assert rt.run(m.default_policy, "ValueError") == ("ValueError", ("ValueError", 3))
    assert m.LOG == ["ValueError"] * 3
    assert len(clock.delays) == 2
    assert 0.9 <= clock.delays[0] <= 1.1 and 1.8 <= clock.delays[1] <= 2.2


def test_runtime_policy_applies_to_functions_without_one(m: ModuleType) -> None:
    m.FAIL["ValueError"] = 5
    m.RAISES["ValueError"] = ValueError
    clock = FakeClock()
    with Runtime("memory://", clock=clock, retry=Retry(max_attempts=1)) as runtime:
        assert runtime.run(m.default_policy, "ValueError") == ("ValueError", ("ValueError", 5))
    assert m.LOG == ["ValueError"]
    assert clock.delays == []


# ----------------------------------------------------------------- child runs


def test_child_retries_under_its_own_policy(m: ModuleType, rt: Runtime, clock: FakeClock) -> None:
    m.FAIL["child-op"] = 1
    assert rt.run(m.parent_catches, 2, run_id="p") == ("ok", 200)
    # Child policy: 2 attempts, initial_delay 5 (the parent's would wait 7).
    assert clock.delays == [5.0]
    # The parent awaits the child directly: it waits as a row with it, due when the child is.
    waiting = [{r.run_id: (r.wake_at, r.attempts) for r in seen} for seen in clock.waiting]
    assert waiting == [{"p/1.0": (1005.0, 1), "p": (1005.0, 0)}]
    assert m.LOG == ["parent start", ("child body", 2), "child-op", "child-op"]
    assert rt.get("p/1.0").attempts == 1
    assert rt.get("p").attempts == 0


def test_failed_child_is_not_run_again_by_its_parent(
    m: ModuleType, rt: Runtime, clock: FakeClock
) -> None:
    m.FAIL["child-op"] = 10
    got = rt.run(m.parent_catches, 2, run_id="p")
    # The child's last attempt raised Flaky("child-op", 9): 2 attempts, not 2 * 6.
    assert got == ("caught", ("child-op", 9))
    assert m.LOG == ["parent start", ("child body", 2), "child-op", "child-op", "parent caught"]
    assert clock.delays == [5.0]  # only the child waited
    assert rt.status("p/1.0") == "failed"
    assert rt.status("p") == "completed"
    # Natively the same exception reaches the parent's except.
    m.FAIL["child-op"] = 9
    assert native(m.parent_catches, 2) == got


def test_parent_fails_with_its_failed_childs_exception(
    m: ModuleType, rt: Runtime, clock: FakeClock
) -> None:
    m.FAIL["child-op"] = 10
    with pytest.raises(m.Flaky) as info:
        rt.run(m.parent_fails, 2, run_id="pf")
    assert info.value.args == ("child-op", 9)
    assert m.LOG == ["parent-op", ("child body", 2), "child-op", "child-op"]
    assert (rt.status("pf"), rt.status("pf/2.0")) == ("failed", "failed")
    # Running it again raises the stored exception; nothing runs again.
    for _ in range(2):
        with pytest.raises(m.Flaky) as again:
            rt.run(m.parent_fails, 2, run_id="pf")
        assert again.value.args == ("child-op", 9)
    assert m.LOG == ["parent-op", ("child body", 2), "child-op", "child-op"]
    assert clock.delays == [5.0]


# ----------------------------------------------------------------- failed runs


def test_unhandled_exception_fails_the_run_and_is_raised_again(
    m: ModuleType, tmp_path: Path
) -> None:
    url = sqlite_url(tmp_path / "runs.db")
    with Runtime(url) as runtime:
        with pytest.raises(m.Declined) as first:
            runtime.run(m.unhandled, "u1", 250, run_id="pay")
        assert first.value.args == ("card of u1 declined", 250)
        record = runtime.get("pay")
        assert record.status == "failed"
        assert record.reason == "Declined: ('card of u1 declined', 250)"
        for again in (
            lambda: runtime.result("pay"),
            lambda: runtime.run(m.unhandled, "u1", 250, run_id="pay"),
            lambda: runtime.run(m.unhandled, run_id="pay"),
        ):
            with pytest.raises(m.Declined) as info:
                again()
            assert type(info.value) is m.Declined
            assert info.value.args == ("card of u1 declined", 250)
            assert (info.value.user, info.value.amount) == ("u1", 250)
    assert m.LOG == ["prepare"]  # nothing ran again
    # A later call, from another Runtime on the same file.
    with Runtime(url) as later:
        assert later.status("pay") == "failed"
        with pytest.raises(m.Declined) as info:
            later.result("pay")
        assert info.value.args == ("card of u1 declined", 250)
        with pytest.raises(m.Declined):
            later.run(m.unhandled, "u1", 250, run_id="pay")
    # The oracle.
    m.LOG.clear()
    oracle = native(m.unhandled, "u1", 250)
    assert type(oracle) is m.Declined and oracle.args == info.value.args


def test_failed_run_keeps_its_traceback_text(m: ModuleType, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "runs.db")
    with Runtime(url) as runtime, pytest.raises(m.Declined):
        runtime.run(m.unhandled, "u2", 5, run_id="tb")
    with Runtime(url) as later, pytest.raises(m.Declined) as info:
        later.result("tb")
    stored = info.value.__dict__.get("__resumable_traceback__")
    assert isinstance(stored, str)
    # The frame that raised names the source file, line and function, as the
    # original's would (docs/semantics.md), not the generated module.
    line = m.unhandled.__code__.co_firstlineno + next(
        i
        for i, text in enumerate(inspect.getsource(m.unhandled).splitlines())
        if "raise Declined(" in text
    )
    assert f'retries_cases.py", line {line}, in unhandled\n    raise Declined(' in stored
    assert "__resumable__" not in stored
    # The text as it was when the run failed, not a traceback of this re-raise.
    assert "in result" not in stored and "_outcome" not in stored


def test_failed_at_an_await_raises_the_awaited_exception(
    m: ModuleType, rt: Runtime, clock: FakeClock
) -> None:
    m.FAIL["flaky-step"] = 1
    with pytest.raises(m.Flaky) as info:
        rt.run(m.fails_at_await, 3, run_id="fa")
    assert info.value.args == ("flaky-step", 1)
    assert clock.delays == []  # Retry(max_attempts=1): one attempt
    assert m.LOG == ["prepare", "flaky-step"]
    stored = rt.get("fa")
    assert stored.status == "failed"
    with pytest.raises(m.Flaky) as again:
        rt.result("fa")
    assert again.value.args == ("flaky-step", 1)
    text = again.value.__dict__["__resumable_traceback__"]
    assert "in op" in text and "raise RAISES.get(name, Flaky)(name, left)" in text


def test_failed_run_is_raised_again_in_another_process(m: ModuleType, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "runs.db")
    with Runtime(url) as runtime, pytest.raises(m.Declined):
        runtime.run(m.unhandled, "u3", 7, run_id="other")
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(str(m.__file__)).parent)!r})
        import {MODULE}
        import resumable
        rt = resumable.Runtime({url!r})
        try:
            rt.result("other")
        except {MODULE}.Declined as e:
            print(type(e).__name__, e.args, e.user, e.amount)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "Declined ('card of u3 declined', 7) u3 7"


# ----------------------------------------------------------------- rt.retry


def test_retry_resumes_a_failed_run_after_a_fix(m: ModuleType, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "runs.db")
    with Runtime(url) as runtime:
        with pytest.raises(m.Flaky, match="broken until the fix"):
            runtime.run(m.needs_fix, 2, run_id="fix")
        assert runtime.status("fix") == "failed"
        assert m.LOG == ["prep", "between", "deploy"]
    m.FIXED["deploy"] = True  # the fix is deployed
    with Runtime(url) as later:
        assert later.retry("fix") == 21
        assert later.status("fix") == "completed"
        assert later.result("fix") == 21
        # Resumed at the failed await: "prep" and "between" did not run again.
        assert m.LOG == ["prep", "between", "deploy", "deploy", "finish"]
        with pytest.raises(ValueError, match="completed"):
            later.retry("fix")
        with pytest.raises(KeyError, match="nope"):
            later.retry("nope")
    m.LOG.clear()
    assert native(m.needs_fix, 2) == 21


def test_retry_without_waiting_leaves_the_run_pending(m: ModuleType, rt: Runtime) -> None:
    with pytest.raises(m.Flaky):
        rt.run(m.needs_fix, 1, run_id="later")
    m.FIXED["deploy"] = True
    assert rt.retry("later", wait=False) is None
    record = rt.get("later")
    assert (record.status, record.error, record.reason) == ("pending", None, None)
    with pytest.raises(ValueError, match="pending"):
        rt.retry("later")  # only failed or blocked runs
    assert rt.run(m.needs_fix, run_id="later") == 11
    assert m.LOG == ["prep", "between", "deploy", "deploy", "finish"]


def test_retry_resumes_a_blocked_run(m: ModuleType, rt: Runtime) -> None:
    with pytest.raises(resumable.SerializationError, match="held") as info:
        rt.run(m.blocks, 4, run_id="b")
    assert "NotStorable" in str(info.value)
    assert rt.status("b") == "blocked"
    assert m.LOG == ["prep"]
    # The fix: hold a value that can be stored.
    m.HOLDER["cls"] = m.Storable
    assert rt.retry("b") == 4 + 5
    assert rt.status("b") == "completed"
    # From the last good checkpoint (the one before "prep": the step that
    # produced `held` never reached the next checkpoint, so it runs again).
    assert m.LOG == ["prep", "prep", "next"]


def test_retry_requeues_the_failed_child_of_the_current_step(
    m: ModuleType, rt: Runtime, clock: FakeClock
) -> None:
    m.FAIL["child-op"] = 2  # the child's 2 attempts both fail
    with pytest.raises(m.Flaky):
        rt.run(m.parent_of_failing_child, 3, run_id="pc")
    assert (rt.status("pc"), rt.status("pc/2.0")) == ("failed", "failed")
    assert rt.retry("pc") == 300
    assert (rt.status("pc"), rt.status("pc/2.0")) == ("completed", "completed")
    # The child resumed from its own checkpoint: its body's start ran once.
    assert m.LOG == ["pre", ("child body", 3), "child-op", "child-op", "child-op"]
