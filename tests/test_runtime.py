"""The runtime driving compiled functions: results, run ids, status, arguments
and results through the codec, checkpoints and liveness, values that cannot be
checkpointed, children, stale generated code, globals, and the example; on
each store (memory, SQLite, PostgreSQL), the example on its own SQLite file.

The modules in tests/runtime_cases are copied into a temporary folder and
compiled there (their `__resumable__/` never lands in the source tree)."""

from __future__ import annotations

import asyncio
import inspect
import linecache
import os
import shutil
import signal
import subprocess
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

import resumable
from resumable import (
    CheckpointInfo,
    Runtime,
    SerializationError,
    StaleCodeError,
)
from resumable.retry import SystemClock
from resumable_compiler.build import compile_file
from tests.compiled import import_file
from tests.stores import KINDS, store_url

HERE = Path(__file__).resolve().parent
CASES = HERE / "runtime_cases"
EXAMPLE = HERE.parent / "examples" / "checkout.py"


class Crash(BaseException):
    """Stands for the process dying right after a checkpoint was saved."""


def line_of(fn: resumable.Function, snippet: str) -> int:
    """The source line of `fn` that contains `snippet` (exactly one)."""
    lines, first = inspect.getsourcelines(fn.__wrapped__)
    hits = [first + i for i, text in enumerate(lines) if snippet in text]
    assert len(hits) == 1, (snippet, hits)
    return hits[0]


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    folder = tmp_path_factory.mktemp("runtime_cases")
    modules: dict[str, ModuleType] = {}
    for source in sorted(CASES.glob("*.py")):
        target = folder / source.name
        shutil.copy(source, target)
        result = compile_file(str(target))
        assert not result.errors, "\n".join(str(e) for e in result.errors)
        assert result.status == "written" and result.functions > 0
        modules[source.stem] = import_file(target, f"runtime_cases_{source.stem}")
    yield SimpleNamespace(**modules)
    for module in modules.values():
        sys.modules.pop(module.__name__, None)


@pytest.fixture
def seen() -> list[CheckpointInfo]:
    return []


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path)


class Hurried(SystemClock):
    """The system's time plus every second slept, none of them waited: a
    failing run is retried as by default (three attempts, the delays
    between them), without the seconds of waiting each time."""

    def __init__(self) -> None:
        self.slept = 0.0

    def time(self) -> float:
        return super().time() + self.slept

    async def sleep(self, seconds: float) -> None:
        self.slept += seconds
        await asyncio.sleep(0)


@pytest.fixture
def rt(url: str, seen: list[CheckpointInfo]) -> Iterator[Runtime]:
    with Runtime(url, on_checkpoint=seen.append, clock=Hurried()) as runtime:
        yield runtime


# ----------------------------------------------------------------- running


def test_run_returns_the_result(cases: SimpleNamespace, rt: Runtime) -> None:
    assert rt.run(cases.basics.add, 2, 3) == 5
    assert rt.run(cases.basics.add, a=-1, b=2**70) == 2**70 - 1


def test_call_inside_asyncio(cases: SimpleNamespace, rt: Runtime) -> None:
    add = cases.basics.add

    async def main() -> list[int]:
        one = await rt.call(add, 1, 2)
        both = await asyncio.gather(rt.call(add, 10, 20), rt.call(add, b=5, a=6))
        return [one, *both]

    assert asyncio.run(main()) == [3, 30, 11]


def test_run_rejects_an_undecorated_function(cases: SimpleNamespace, rt: Runtime) -> None:
    with pytest.raises(TypeError, match=r"not decorated with @resumable\.function"):
        rt.run(cases.basics.tick, 1)


def test_run_id_reuse_returns_the_stored_result(cases: SimpleNamespace, rt: Runtime) -> None:
    calls = cases.basics.CALLS
    calls.clear()
    assert rt.run(cases.basics.counted, "a", run_id="order-1") == "A"
    assert calls == ["a", "a:after"]
    assert rt.status("order-1") == "completed"
    # Same id: the stored result, nothing runs again (the arguments are not used).
    assert rt.run(cases.basics.counted, "other", run_id="order-1") == "A"
    assert rt.run(cases.basics.counted, run_id="order-1") == "A"
    assert rt.result("order-1") == "A"
    assert calls == ["a", "a:after"]
    # Another id runs again.
    assert rt.run(cases.basics.counted, "b", run_id="order-2") == "B"
    assert calls == ["a", "a:after", "b", "b:after"]


def test_crashed_run_resumes_from_its_checkpoint(cases: SimpleNamespace, url: str) -> None:
    calls = cases.basics.CALLS
    calls.clear()
    crashes: list[int] = []

    def crash_once(info: CheckpointInfo) -> None:
        if not crashes:
            crashes.append(info.seq)
            raise Crash

    with Runtime(url, on_checkpoint=crash_once) as rt:
        with pytest.raises(Crash):
            rt.run(cases.basics.counted, "x", run_id="r")
        assert calls == ["x"]
        assert rt.status("r") == "running"
        with pytest.raises(ValueError, match="has not finished"):
            rt.result("r")
        assert rt.run(cases.basics.counted, run_id="r") == "X"
        # The code before the checkpoint did not run again.
        assert calls == ["x", "x:after"]
        assert rt.status("r") == "completed"


def test_failed_run_reraises_its_exception(cases: SimpleNamespace, rt: Runtime) -> None:
    declined = cases.basics.PaymentDeclined
    with pytest.raises(declined) as first:
        rt.run(cases.basics.declined, "u1", 250, run_id="pay")
    assert first.value.args == ("card of u1 declined",)
    assert rt.status("pay") == "failed"
    for _ in range(2):  # a later call raises it again
        with pytest.raises(declined) as again:
            rt.result("pay")
        assert type(again.value) is declined
        assert again.value.args == ("card of u1 declined",)
        assert (again.value.user, again.value.amount) == ("u1", 250)
    with pytest.raises(declined, match="card of u1 declined"):
        rt.run(cases.basics.declined, run_id="pay")


def test_status_and_result_of_an_unknown_run(rt: Runtime) -> None:
    with pytest.raises(KeyError, match="nope"):
        rt.status("nope")
    with pytest.raises(KeyError, match="nope"):
        rt.result("nope")


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("add", (1, 2, 3), {}),
        ("add", (), {}),
        ("add", (1,), {}),
        ("add", (1, 2), {"c": 3}),
        ("add", (1,), {"a": 2}),
        ("pair", (1, 2, 3), {}),
        ("pair", (), {"b": 1}),
        ("pair", (1,), {"flag": True, "flags": True}),
    ],
)
def test_bad_arguments_raise_the_same_type_error(
    cases: SimpleNamespace,
    rt: Runtime,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    fn = getattr(cases.basics, name)
    with pytest.raises(TypeError) as native:
        fn.__wrapped__(*args, **kwargs)
    with pytest.raises(TypeError) as durable:
        rt.run(fn, *args, **kwargs)
    assert str(durable.value) == str(native.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://db/runs?lease=never", "lease must be seconds"),
        ("redis://x", "unknown store URL 'redis://x'"),
        ("sqlite://host/x.db", "a SQLite URL has no host"),
        ("sqlite:///", "names no file"),
        ("sqlite:///x.db?synchronous=SOMETIMES", "synchronous must be"),
        ("sqlite:///x.db?color=red", "unknown option 'color'"),
    ],
)
def test_bad_store_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(resumable.StoreError, match=message):
        Runtime(url)


# ----------------------------------------------------------------- the codec at the edges


def test_arguments_and_results_go_through_the_codec(cases: SimpleNamespace, rt: Runtime) -> None:
    out = rt.run(cases.basics.pair, (1, (2,)), b={(3, 4): [b"x", 2**70]}, flag=True)
    assert type(out) is tuple
    assert out == ((1, (2,)), {(3, 4): [b"x", 2**70]}, True)
    assert type(out[0][1]) is tuple and type(next(iter(out[1]))) is tuple
    shared = [1, 2]
    assert rt.run(cases.basics.same, shared, shared) == (True, "list")
    assert rt.run(cases.basics.same, shared, [1, 2]) == (False, "list")


def test_unencodable_argument_names_the_parameter(cases: SimpleNamespace, rt: Runtime) -> None:
    with pytest.raises(SerializationError) as info:
        rt.run(cases.basics.pair, 1, b={"k": [1, lambda: 1]})
    message = str(info.value)
    assert "pair" in message
    assert "argument `b['k'][1]`" in message
    assert "function" in message
    with pytest.raises(SerializationError, match="argument `a`"):
        rt.run(cases.basics.pair, object())


def test_unencodable_result_is_a_serialization_error(cases: SimpleNamespace, rt: Runtime) -> None:
    with pytest.raises(SerializationError, match=r"returns_lambda returned .*`result\[1\]`"):
        rt.run(cases.basics.returns_lambda)


# ----------------------------------------------------------------- checkpoints


def test_observer_sees_each_checkpoint_with_only_live_locals(
    cases: SimpleNamespace, rt: Runtime, seen: list[CheckpointInfo]
) -> None:
    staged = cases.basics.staged
    assert rt.run(staged, 1, 2, run_id="st") == 10
    first = line_of(staged, "x = await tick(c)")
    second = line_of(staged, "y = await tick(total)")
    assert [(c.run_id, c.seq, c.line) for c in seen] == [("st", 1, first), ("st", 2, second)]
    assert all(c.function.endswith(":staged") for c in seen)
    assert seen[0].source.endswith(f"basics.py:{first}")
    assert seen[1].source.endswith(f"basics.py:{second}")
    assert seen[0].state != seen[1].state
    assert all(c.size > 0 for c in seen)
    # `a` is dead after `c = a + b`; `c` and `x` are dead after their last use.
    assert seen[0].locals == {"b": 2, "c": 3}
    assert seen[1].locals == {"total": 5}


def test_open_file_used_only_between_awaits_works(
    cases: SimpleNamespace, rt: Runtime, tmp_path: Path
) -> None:
    path = tmp_path / "data.txt"
    path.write_text("line 1\nline 2\n")
    assert rt.run(cases.liveness.read_between, str(path)) == "line 1\nline 1\nline 2\n"


def test_open_file_held_across_an_await(
    cases: SimpleNamespace, rt: Runtime, tmp_path: Path
) -> None:
    path = tmp_path / "data.txt"
    path.write_text("text")
    hold_file = cases.liveness.hold_file
    line = line_of(hold_file, "await tick()")
    try:
        with pytest.raises(SerializationError) as info:
            rt.run(hold_file, str(path))
    finally:
        for f in cases.liveness.OPENED:
            f.close()
        cases.liveness.OPENED.clear()
    message = str(info.value)
    assert "`f`" in message
    assert f"line {line}" in message and f"liveness.py:{line}" in message
    assert "TextIOWrapper" in message and "hold_file" in message


def test_generator_held_across_an_await(cases: SimpleNamespace, rt: Runtime) -> None:
    hold = cases.liveness.hold_generator
    line = line_of(hold, "await tick()")
    with pytest.raises(SerializationError) as info:
        rt.run(hold, 3)
    message = str(info.value)
    assert "`gen`" in message and "generator" in message
    assert f"line {line}" in message and f"liveness.py:{line}" in message


def test_for_loop_over_a_generator_that_awaits(cases: SimpleNamespace, rt: Runtime) -> None:
    loop = cases.liveness.loop_generator
    line = line_of(loop, "for x in evens(n):")
    with pytest.raises(SerializationError) as info:
        rt.run(loop, 3)
    message = str(info.value)
    assert f"liveness.py:{line}" in message
    assert "generator" in message and "list(" in message
    # The fix the message names works.
    assert rt.run(cases.liveness.loop_list_of_generator, 3) == 0 + 2 + 4


# ----------------------------------------------------------------- children


def test_child_runs_its_compiled_machine_inline(
    cases: SimpleNamespace, rt: Runtime, seen: list[CheckpointInfo]
) -> None:
    assert rt.run(cases.children.parent, 3, run_id="p") == 7 + 15
    assert [(c.run_id, c.function.split(":")[-1], c.locals) for c in seen] == [
        ("p", "parent", {"n": 3}),
        ("p/1.0", "child", {"n": 3}),  # <parent>/<its checkpoint>.<call in that step>
        ("p", "parent", {"a": 7}),
        ("p/2.0", "child", {"n": 7}),
    ]
    # Natively (no runtime) the same functions give the same result.
    assert asyncio.run(cases.children.parent(3)) == 22


def test_children_inside_gather(
    cases: SimpleNamespace, rt: Runtime, seen: list[CheckpointInfo]
) -> None:
    assert rt.run(cases.children.gathered, run_id="g") == [3, 5]
    by_run = {c.run_id: (c.function.split(":")[-1], c.locals) for c in seen}
    assert by_run == {
        "g": ("gathered", {}),
        "g/1.0": ("child", {"n": 1}),
        "g/1.1": ("child", {"n": 2}),
    }


# ----------------------------------------------------------------- globals


def test_globals_resolve_in_the_module_namespace(
    cases: SimpleNamespace, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rt.run(cases.scope.price, 3) == 6
    monkeypatch.setattr(cases.scope, "RATE", 5)
    assert rt.run(cases.scope.price, 3) == 15


def test_builtin_shadowed_by_a_module_global(cases: SimpleNamespace, rt: Runtime) -> None:
    assert asyncio.run(cases.scope.measure([1, 2])) == -1
    assert rt.run(cases.scope.measure, [1, 2]) == -1


# ----------------------------------------------------------------- stale code

MODULE = '''\
"""A module the tests edit."""

import resumable

LABEL = "first"


async def tick(value=None):
    return value


@resumable.function
async def bump(x):
    y = await tick(x)
    return y + 1


@resumable.function
async def hold(n):
    gen = (i for i in range(n))
    await tick()
    return sum(gen)
'''


@pytest.fixture
def editable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], ModuleType]]:
    """Write `mod.py` with a text and import a fresh module object from it."""
    monkeypatch.chdir(tmp_path)
    names: list[str] = []

    def write_and_import(text: str) -> ModuleType:
        (tmp_path / "mod.py").write_text(text)
        names.append(f"runtime_edit_{uuid.uuid4().hex}")
        return import_file(tmp_path / "mod.py", names[-1])

    yield write_and_import
    for name in names:
        sys.modules.pop(name, None)
    linecache.checkcache()


def _compile(path: str = "mod.py") -> None:
    result = compile_file(path)
    assert result.status == "written" and not result.errors


def test_stale_when_generated_code_is_missing(
    editable: Callable[[str], ModuleType], rt: Runtime, tmp_path: Path
) -> None:
    mod = editable(MODULE)
    assert asyncio.run(mod.bump(1)) == 2  # native mode needs no generated code
    with pytest.raises(StaleCodeError) as info:
        rt.run(mod.bump, 1)
    message = str(info.value)
    assert message.startswith(f"bump (mod.py:{mod.bump.__code__.co_firstlineno})")
    assert "__resumable__" in message and "missing" in message
    assert "`resumable compile mod.py`" in message
    assert not (tmp_path / "__resumable__").exists()


def test_stale_after_editing_the_function_in_a_new_process(
    editable: Callable[[str], ModuleType], rt: Runtime
) -> None:
    editable(MODULE)
    _compile()
    mod = editable(MODULE.replace("y + 1", "y + 100"))
    linecache.checkcache()  # as in a new process: no cached lines of the old text
    assert asyncio.run(mod.bump(1)) == 101
    with pytest.raises(StaleCodeError) as info:
        rt.run(mod.bump, 1)
    message = str(info.value)
    assert message.startswith("bump (mod.py:")
    assert "compiled from different source" in message
    assert "`resumable compile mod.py`" in message
    # The other function of the file is unchanged, so still valid.
    with pytest.raises(SerializationError):
        rt.run(mod.hold, 2)


def test_stale_after_editing_the_function_and_reloading(
    editable: Callable[[str], ModuleType], rt: Runtime
) -> None:
    mod = editable(MODULE)
    _compile()
    assert rt.run(mod.bump, 1) == 2
    mod = editable(MODULE.replace("y + 1", "y + 100"))
    with pytest.raises(StaleCodeError, match="compiled from different source"):
        rt.run(mod.bump, 1)


def test_editing_elsewhere_in_the_file_keeps_the_code_valid(
    editable: Callable[[str], ModuleType], rt: Runtime
) -> None:
    editable(MODULE)
    _compile()
    text = MODULE.replace('LABEL = "first"', 'LABEL = "second"  # edited') + (
        "\n\ndef helper():\n    return LABEL\n"
    )
    mod = editable(text)
    linecache.checkcache()
    assert mod.helper() == "second"
    assert rt.run(mod.bump, 1) == 2


def test_moving_the_function_keeps_it_valid_and_lines_follow(
    editable: Callable[[str], ModuleType], rt: Runtime, seen: list[CheckpointInfo]
) -> None:
    mod = editable(MODULE)
    _compile()
    before = line_of(mod.hold, "await tick()")
    with pytest.raises(SerializationError, match=f"line {before} "):
        rt.run(mod.hold, 2)

    moved = editable("# one\n# two\n\n" + MODULE)
    linecache.checkcache()  # as in a new process
    after = line_of(moved.hold, "await tick()")
    assert after == before + 3
    with pytest.raises(SerializationError) as info:
        rt.run(moved.hold, 2)
    assert f"line {after} " in str(info.value) and f"mod.py:{after})" in str(info.value)
    seen.clear()
    assert rt.run(moved.bump, 1) == 2
    assert [c.line for c in seen] == [line_of(moved.bump, "y = await tick(x)")]
    assert seen[0].source.endswith(f"mod.py:{seen[0].line}")


TRACED = """\
import resumable


async def tick(value=None):
    return value


@resumable.function
async def refuse(user, amount):
    total = await tick(amount)
    if total > 10:
        note = f"{user}: too much"
        raise ValueError(note, total)
    return total
"""


def _frames(exc: BaseException) -> list[tuple[str, int | None, str, str | None]]:
    return [
        (os.path.basename(f.filename), f.lineno, f.name, f.line)
        for f in traceback.extract_tb(exc.__traceback__)
    ]


def test_tracebacks_name_the_source_file_line_and_function(
    editable: Callable[[str], ModuleType], rt: Runtime
) -> None:
    mod = editable(TRACED)
    _compile()
    with pytest.raises(ValueError) as info:
        rt.run(mod.refuse, "u", 50)
    raise_line = line_of(mod.refuse, "raise ValueError(note, total)")
    assert _frames(info.value)[-1] == (
        "mod.py",
        raise_line,
        "refuse",
        "raise ValueError(note, total)",
    )
    assert not any("__resumable__" in f.filename for f in traceback.extract_tb(info.tb))
    # After the function moves (generated code still valid), lines follow.
    moved = editable("# one\n# two\n\n" + TRACED)
    linecache.checkcache()
    with pytest.raises(ValueError) as info:
        rt.run(moved.refuse, "u", 50)
    assert _frames(info.value)[-1] == (
        "mod.py",
        raise_line + 3,
        "refuse",
        "raise ValueError(note, total)",
    )
    # The stored traceback text of the failed run says the same.
    text = resumable.codec.traceback_text(info.value)
    assert text is not None
    assert f'mod.py", line {raise_line + 3}, in refuse' in text


def test_moving_the_function_and_reloading_keeps_it_valid(
    editable: Callable[[str], ModuleType], rt: Runtime
) -> None:
    mod = editable(MODULE)
    _compile()
    assert rt.run(mod.bump, 1) == 2
    moved = editable("# one\n# two\n\n" + MODULE)
    assert rt.run(moved.bump, 1) == 2


# ----------------------------------------------------------------- the example


def _example(cwd: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *flags],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_checkout_example_runs_from_another_directory(tmp_path: Path) -> None:
    proc = _example(tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    checkpoints = [line for line in lines if line.startswith("checkpoint ")]
    assert len(checkpoints) == 3
    assert all("checkout:checkout" in line for line in checkpoints)
    assert "saved {user_id='user_123', order_id='order-456'}" in checkpoints[0]
    assert sum(line.startswith("  charging the card of user_123") for line in lines) == 1
    assert lines[-1] == "checkout returned 'receipt-user_123'"
    assert (tmp_path / ".resumable" / "state.db").exists()
    assert not (tmp_path / "__resumable__").exists()


def test_checkout_example_crashes_after_the_charge_and_resumes_without_a_second(
    tmp_path: Path,
) -> None:
    crashed = _example(tmp_path, "--crash-after-charge")
    assert crashed.returncode == -signal.SIGKILL
    assert sum("charging the card" in line for line in crashed.stdout.splitlines()) == 1
    resumed = _example(tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    lines = resumed.stdout.splitlines()
    assert lines[0].startswith("run order-456 (running)")
    assert not any("charging the card" in line for line in lines)
    assert any(line.startswith("  emailing user_123") for line in lines)
    assert lines[-1] == "checkout returned 'receipt-user_123'"
    again = _example(tmp_path)
    assert again.stdout.splitlines()[0].startswith("run order-456 (completed)")
    assert again.stdout.splitlines()[-1] == "checkout returned 'receipt-user_123'"


# ----------------------------------------------------------------- edge values


def test_lone_surrogate_held_across_an_await(cases: SimpleNamespace, rt: Runtime) -> None:
    # JSON text cannot hold it: the codec escapes it, and it round-trips.
    assert rt.run(cases.edge.hold_surrogate) == asyncio.run(cases.edge.hold_surrogate())


def test_self_referencing_list_held_across_an_await(cases: SimpleNamespace, rt: Runtime) -> None:
    assert asyncio.run(cases.edge.hold_cycle()) == 2
    assert rt.run(cases.edge.hold_cycle) == 2


def test_stop_iteration_held_across_an_await(cases: SimpleNamespace, rt: Runtime) -> None:
    assert asyncio.run(cases.edge.hold_stop_iteration()) == 5
    assert rt.run(cases.edge.hold_stop_iteration) == 5
