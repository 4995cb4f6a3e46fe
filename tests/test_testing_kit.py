"""resumable.testing as users use it: the divergence report of
assert_equivalent on real divergences, the resumable_runtime fixture's fake
clock (retries and waits take no real time), fault schedules, the
strategies, and the worked example in examples/testing run by pytest."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings

import resumable
from resumable.source import seal_output
from resumable.testing import Faults, InjectedFault, assert_equivalent, check_faults
from resumable.testing import strategies as rst
from resumable.testing.plugin import TestRuntime
from tests.compiled import compile_and_import, import_file

REPO = Path(__file__).parent.parent
MODULE = "testkit_cases"
SOURCE = """
import itertools

import resumable

TICKS = itertools.count()
FAILS = {"left": 0}


async def charge(order_id, amount):
    return f"rcpt-{order_id}-{amount}"


async def notify(order_id, stamp):
    return None


async def flaky(order_id):
    if FAILS["left"] > 0:
        FAILS["left"] -= 1
        raise ConnectionError("try again")
    return "ok"


@resumable.function
async def place(order_id, amount):
    receipt = await charge(order_id, amount)
    stamp = next(TICKS)  # nondeterministic: 0 in one run, 1 in the next
    await notify(order_id, stamp)
    return receipt


@resumable.function
async def honest(order_id, amount):
    receipt = await charge(order_id, amount)
    await notify(order_id, amount)
    return receipt


@resumable.function(retry=resumable.Retry(max_attempts=6, initial_delay=1, backoff=2, jitter=0))
async def retried(order_id):
    return await flaky(order_id)


@resumable.function
async def nap():
    await resumable.sleep(86400)
    return "rested"


@resumable.function
async def until(when):
    await resumable.sleep_until(when)
    return "woke"


@resumable.function
async def approval():
    try:
        return await resumable.wait_event("approved", timeout=3 * 86400)
    except TimeoutError:
        return "timed out"


@resumable.function(retry=resumable.Retry(max_attempts=3, initial_delay=1, jitter=0))
async def pipeline(order_id, amount):
    receipt = await charge(order_id, amount)
    try:
        await notify(order_id, receipt)
    except Exception as e:
        return receipt, repr(e)
    return receipt, "notified"
"""


@pytest.fixture(scope="module")
def m(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("testkit")
    module = compile_and_import(folder / f"{MODULE}.py", MODULE, textwrap.dedent(SOURCE))
    yield module
    sys.modules.pop(MODULE, None)


# ------------------------------------------------------------ the divergence report


def test_a_nondeterministic_local_is_reported_at_its_await(m: ModuleType) -> None:
    with pytest.raises(AssertionError) as caught:
        assert_equivalent(m.place, "o1", 5)
    report = str(caught.value)
    assert "first divergence at await 2 of place" in report
    assert f"{MODULE}.py:" in report
    assert "await notify(order_id, stamp)" in report  # the await's source text
    match = re.search(r"local 'stamp' differs:\n\s+original: (\d+)\n\s+compiled: (\d+)", report)
    assert match is not None, report
    assert int(match[2]) == int(match[1]) + 1  # both values
    assert f"('notify', ('o1', {match[1]}))" in report  # and the awaited call that shows it


def test_a_hand_edited_machine_is_caught(m: ModuleType, tmp_path: Path) -> None:
    # a tmp copy of the module whose generated file is edited by hand
    source = Path(m.__file__)  # type: ignore[arg-type]
    shutil.copy(source, tmp_path / "edited.py")
    generated = (source.parent / "__resumable__" / source.name).read_text()
    assert "return charge(L.order_id, L.amount)" in generated
    (tmp_path / "__resumable__").mkdir()
    # Sealed again, as a miscompiling compiler would have written it (an
    # unsealed edit is refused at load: tests/test_generated_seal.py).
    changed = re.sub(r", output sha256:[0-9a-f]{64}", "", generated).replace(
        "return charge(L.order_id, L.amount)", "return charge(L.order_id, L.amount + 1)"
    )
    (tmp_path / "__resumable__" / "edited.py").write_text(seal_output(changed))
    edited = import_file(tmp_path / "edited.py", "testkit_edited")
    try:
        with pytest.raises(AssertionError) as caught:
            assert_equivalent(edited.honest, "o1", 5)
    finally:
        sys.modules.pop("testkit_edited", None)
    report = str(caught.value)
    assert "first divergence at await 1 of honest" in report
    assert "receipt = await charge(order_id, amount)" in report
    assert (
        "awaited call differs:\n    original: charge('o1', 5)\n    compiled: charge('o1', 6)"
        in (report)
    )


def test_an_equivalent_function_passes_and_records_its_steps(m: ModuleType) -> None:
    outcome = assert_equivalent(m.honest, "o1", 5)
    assert outcome.calls == [("charge", ("o1", 5)), ("notify", ("o1", 5))]
    assert [a.line for a in outcome.awaits] == sorted(a.line for a in outcome.awaits)


# ------------------------------------------------------------ the fixture's clock


def test_five_retries_with_backoff_take_no_time(
    m: ModuleType, resumable_runtime: TestRuntime
) -> None:
    m.FAILS["left"] = 5
    assert resumable_runtime.run(m.retried, "o1") == "ok"
    assert resumable_runtime.clock.waits == [1, 2, 4, 8, 16]
    assert resumable_runtime.clock.elapsed == 31


@pytest.mark.parametrize("resumable_runtime", ["memory", "sqlite"], indirect=True)
def test_a_day_of_sleep_takes_no_time(m: ModuleType, resumable_runtime: TestRuntime) -> None:
    assert resumable_runtime.run(m.nap) == "rested"
    assert resumable_runtime.clock.elapsed == 86400


def test_sleep_until_and_a_timeout_follow_the_clock(
    m: ModuleType, resumable_runtime: TestRuntime
) -> None:
    clock = resumable_runtime.clock
    clock.advance(10)
    when = dt.datetime.fromtimestamp(clock.now + 7200, dt.UTC)
    assert resumable_runtime.run(m.until, when) == "woke"
    assert clock.now == when.timestamp()
    assert resumable_runtime.run(m.approval) == "timed out"
    assert clock.now == when.timestamp() + 3 * 86400


def test_an_event_sent_while_the_run_waits(m: ModuleType, resumable_runtime: TestRuntime) -> None:
    def send(clock: object, until: float | None) -> None:
        resumable_runtime.send_event("a1", "approved", "ann")

    resumable_runtime.clock.on_wait = send
    assert resumable_runtime.run(m.approval, run_id="a1") == "ann"
    assert resumable_runtime.clock.elapsed < 3 * 86400


@pytest.mark.parametrize("resumable_runtime", ["sqlite"], indirect=True)
def test_restart_opens_the_same_store(m: ModuleType, resumable_runtime: TestRuntime) -> None:
    assert resumable_runtime.run(m.honest, "o1", 5, run_id="r1") == "rcpt-o1-5"
    again = resumable_runtime.restart()
    assert again.status("r1") == "completed"
    assert again.clock is resumable_runtime.clock


def test_memory_runtimes_cannot_restart(resumable_runtime: TestRuntime) -> None:
    assert resumable_runtime.url == "memory://"
    with pytest.raises(RuntimeError, match="sqlite"):
        resumable_runtime.restart()


# ------------------------------------------------------------ fault schedules


def test_faults_the_retries_absorb_give_the_fault_free_result(m: ModuleType) -> None:
    run = check_faults(m.pipeline, Faults(fail={1: 2, 2: 2}, crash_after={1, 2}), "o1", 5)
    assert run.compiled.value == ("rcpt-o1-5", "notified")
    assert run.attempts == {1: 3, 2: 3}
    assert run.lives == 3  # two crashes, each resumed by a fresh Runtime
    assert run.clock.waits == [1, 2, 1, 2]


def test_a_fault_the_retries_cannot_absorb_is_seen_as_in_the_original(m: ModuleType) -> None:
    run = check_faults(m.pipeline, Faults(fail={2: 3}), "o1", 5)
    assert run.compiled.value == ("rcpt-o1-5", repr(InjectedFault("notify", 2)))
    assert run.expected.value == run.compiled.value
    run = check_faults(m.pipeline, Faults(fail={1: 5}), "o1", 5)
    assert isinstance(run.compiled.error, InjectedFault)


def test_check_faults_fails_on_a_divergence(m: ModuleType) -> None:
    with pytest.raises(
        AssertionError,
        match=r"(?s)under Faults\(fail=\{\}.*first divergence at await 2.*local 'stamp'",
    ):
        check_faults(m.place, Faults(), "o1", 5)


# ------------------------------------------------------------ strategies


@dataclasses.dataclass
class Line:
    sku: str
    qty: int
    tags: tuple[str, ...] = ()


class Colour(enum.Enum):
    RED = 1
    BLUE = 2


async def typed(
    n: int,
    name: str,
    ratio: float,
    ok: bool,
    line: Line,
    lines: list[Line],
    extra: dict[str, int] | None,
    colour: Colour,
    pair: tuple[int, str],
    *,
    flag: bool = False,
) -> None: ...


@settings(max_examples=30, deadline=None)
@given(rst.arguments(resumable.function(typed)))
def test_arguments_follow_the_annotations(call: rst.Arguments) -> None:
    n, name, ratio, ok, line, lines, extra, colour, pair = call.args
    assert type(n) is int and type(name) is str and type(ratio) is float and type(ok) is bool
    assert isinstance(line, Line) and all(isinstance(x, Line) for x in lines)
    assert extra is None or all(type(k) is str and type(v) is int for k, v in extra.items())
    assert isinstance(colour, Colour) and type(pair[0]) is int and type(pair[1]) is str
    assert set(call.kwargs) <= {"flag"}


@settings(max_examples=30, deadline=None)
@given(rst.values())
def test_values_survive_a_checkpoint(value: object) -> None:
    from resumable import codec

    assert codec.decode(codec.encode(value)) == value


@settings(max_examples=30, deadline=None)
@given(rst.fault_schedules(max_calls=3, max_failures=2, max_checkpoints=4))
def test_fault_schedules_stay_in_bounds(faults: Faults) -> None:
    assert all(1 <= k <= 3 and 1 <= v <= 2 for k, v in faults.fail.items())
    assert faults.crash_after <= set(range(1, 5))


# ------------------------------------------------------------ the worked example


def test_the_worked_example_passes_under_pytest() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "examples/testing"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\b4 passed\b", proc.stdout), proc.stdout


def test_the_kit_imports_without_pytest_or_hypothesis() -> None:
    probe = (
        "import sys\n"
        "sys.modules['pytest'] = sys.modules['hypothesis'] = None\n"
        "import resumable.testing\n"
        "print(resumable.testing.FakeClock().time())\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
