"""Real async functions from public documentation and examples, compiled,
against their originals.

Each module under tests/realcode/ holds one function, or a small group, from
Temporal's samples, DBOS's docs and demo apps, Restate's examples, the asyncio
docs, PEP 530 or FastAPI's tutorials; its header names the source and what was
adapted. Every module is compiled on its own, so a module the compiler refuses
does not hide the others.

For every decorated function and argument set in the module's ARGS: a clean
run, then one run per awaited call in which that call raises StepError. The
compiled run crashes right after every checkpoint and resumes from the stored
JSON. Equal means what `resumable.testing.assert_equivalent` compares: the same
result or exception (type, args, attributes, context and cause chain) and the
same awaited calls with the same arguments. Unlike `assert_equivalent`, each
run gets its own deep copy of the arguments (the originals mutate theirs: a
Restate context draws uuids, a fake websocket pops messages) and, when the
module has one, a call to its `reset()` first (the samples keep some state at
module level, as the originals do).

A module the compiler refuses today is an expected failure whose error codes
are checked: once the compiler supports the construct, the test compiles the
module, runs it, and fails loudly (XPASS strict, or a divergence) until it is
moved out of REFUSED.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from resumable import Function
from resumable.testing import Outcome, Script, run_compiled, run_original
from resumable.testing import _difference as difference

REALCODE = Path(__file__).parent / "realcode"

#: Modules the compiler refuses today: the error codes it reports, and why.
REFUSED: dict[str, tuple[frozenset[str], str]] = {
    "fastapi_dependency_yield": (
        frozenset({"E01"}),
        "a FastAPI dependency with yield (an async generator): E01",
    ),
}

_DSL_SELF = (
    "designed refusal at run time, not a compiler bug: the workflow's `self` is an instance "
    "of a plain class, which cannot be stored, so the run stops with SerializationError at "
    "its start (`argument `self` holds a ...DSLWorkflow`); were it a dataclass, the variables "
    "execute_statement sets on self (its own decoded copy, in a child run) would not reach "
    "run (docs/semantics.md, 'Known differences': a method's changes to self)"
)

#: Functions that compile but are expected to differ from their originals
#: ("module.function": why). A compiler bug is described here until fixed; a
#: designed refusal at run time says which.
DIVERGES: dict[str, str] = {
    "pep530_async_comprehensions.comprehensions": (
        "designed refusal at run time: PEP 530's `[i async for i in aiter(n)]` iterates an "
        "async generator, whose position cannot be stored, so the loop stops at entry with "
        "SerializationError (docs/semantics.md, 'Refused at run time')"
    ),
    "asyncio_gather_factorial.main": (
        "runtime, not the compiler: when a factorial child run fails while its siblings are "
        "still running (7 of the 15 failure positions), asyncio.gather raises at once, main's "
        "run fails, and Run.leave_step cancels the sibling tasks still driving child runs, so "
        "their later print/sleep calls are missing; in the original those tasks run on until "
        "asyncio.run tears down. Not among the known differences of docs/semantics.md"
    ),
    "temporal_dsl.DSLWorkflow.run": _DSL_SELF,
    "temporal_dsl.DSLWorkflow.execute_statement": _DSL_SELF,
    "asyncio_except_star.main": (
        "designed refusal at run time, not a compiler bug: the `async with asyncio.TaskGroup()` "
        "whose body awaits keeps the TaskGroup in its checkpoints, and a TaskGroup cannot be "
        "stored: SerializationError naming the manager of the `with` (docs/semantics.md, "
        "'Refused at run time')"
    ),
    "asyncio_taskgroup.main": (
        "designed refusal at run time, not a compiler bug: `async with asyncio.TaskGroup()` "
        "keeps the TaskGroup in the checkpoint of its `__aenter__`, and a TaskGroup cannot be "
        "stored: SerializationError naming the manager of the `with`"
    ),
    "asyncio_timeout.main": (
        "designed refusal at run time, not a compiler bug: `async with asyncio.timeout()` keeps "
        "its Timeout (which holds a loop handle) in its checkpoints: SerializationError naming "
        "the manager of the `with`"
    ),
    "dbos_async_step.example_step": (
        "designed refusal at run time, not a compiler bug: the nested `async with` of an "
        "aiohttp-like session and response keep them in their checkpoints, and they cannot be "
        "stored: SerializationError naming the manager of the `with`"
    ),
    "dbos_checkout_endpoint.checkout_endpoint": (
        "designed refusal at run time, not a compiler bug: `with SetWorkflowID(...)` (a plain "
        "class, not a dataclass) around an await keeps it in the checkpoint: "
        "SerializationError naming the manager of the `with`"
    ),
    "asyncio_create_task.main": (
        "designed refusal at run time, not a compiler bug: tasks created with "
        "asyncio.create_task are live at the checkpoint of `await task1`, so the run stops "
        "with SerializationError (docs/semantics.md, 'Refused at run time')"
    ),
}

#: Modules that cannot even be imported natively (the decorator refuses them).
NOT_IMPORTABLE: dict[str, str] = {
    "fastapi_dependency_yield": "async generator",
}


class Refused(Exception):
    """The compiler refused the module with the expected error codes."""


def module_names() -> list[str]:
    return sorted(p.stem for p in REALCODE.glob("*.py") if not p.name.startswith("_"))


_modules: dict[str, ModuleType] = {}


def load(name: str) -> ModuleType:
    """Import tests/realcode/<name>.py from its file (native import)."""
    if name not in _modules:
        spec = importlib.util.spec_from_file_location(f"realcode_{name}", REALCODE / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[spec.name]
            raise
        _modules[name] = module
    return _modules[name]


_compiled: dict[str, list[Any]] = {}


def compile_errors(name: str) -> list[Any]:
    """Compile tests/realcode/<name>.py once per session; its compile errors."""
    if name not in _compiled:
        from resumable_compiler.build import compile_file

        _compiled[name] = compile_file(str(REALCODE / f"{name}.py")).errors
    return _compiled[name]


def decorated(module: ModuleType) -> dict[str, Function]:
    """The module's decorated functions by dotted name (methods of its classes too)."""
    found: dict[str, Function] = {}
    for attr, value in vars(module).items():
        if isinstance(value, Function) and value.__module__ == module.__name__:
            found[attr] = value
        elif isinstance(value, type) and value.__module__ == module.__name__:
            for name, member in vars(value).items():
                if isinstance(member, Function):
                    found[f"{attr}.{name}"] = member
    return found


def arg_sets(module: ModuleType) -> dict[str, list[tuple[tuple[Any, ...], dict[str, Any]]]]:
    table = getattr(module, "ARGS", {})
    missing = sorted(set(decorated(module)) - set(table))
    assert not missing, f"{module.__name__}: no ARGS for {missing}"
    return table


def run_both(
    module: ModuleType,
    fn: Function,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    fail_at: frozenset[int] = frozenset(),
) -> tuple[Outcome, Outcome]:
    """The original, then the compiled function crashing after every
    checkpoint, each from a fresh copy of the arguments and module state."""
    outcomes = []
    for runner in (run_original, run_compiled):
        reset: Callable[[], None] | None = getattr(module, "reset", None)
        if reset is not None:
            reset()
        a, k = copy.deepcopy((args, kwargs))
        outcomes.append(runner(fn, *a, script=Script(fail_at), **k))
    return outcomes[0], outcomes[1]


def check_equivalent(
    module: ModuleType, fn: Function, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """A clean run, then a failing awaited call at each position; every
    difference found is reported together."""
    native, compiled = run_both(module, fn, args, kwargs)
    raises = getattr(module, "RAISES", ())
    assert native.error is None or isinstance(native.error, raises), (
        f"the original itself failed: {native.error!r}"
    )
    differences = []
    if native.signature() != compiled.signature():
        differences.append("clean run:\n" + difference(fn, native, compiled))
    for k in range(1, len(native.calls) + 1):
        failing, compiled = run_both(module, fn, args, kwargs, frozenset({k}))
        if failing.signature() != compiled.signature():
            differences.append(f"awaited call {k} failing:\n" + difference(fn, failing, compiled))
    if differences:
        raise AssertionError("\n\n".join(differences))


def check_module(name: str) -> None:
    """Every decorated function of a module the compiler accepts."""
    module = load(name)
    for dotted, fn in decorated(module).items():
        for args, kwargs in arg_sets(module)[dotted]:
            check_equivalent(module, fn, args, kwargs)


def _accepted_cases() -> list[Any]:
    params = []
    for name in module_names():
        if name in REFUSED:
            continue
        module = load(name)
        for dotted in decorated(module):
            for i, (args, kwargs) in enumerate(arg_sets(module)[dotted]):
                marks = []
                key = f"{name}.{dotted}"
                if key in DIVERGES:
                    marks.append(
                        pytest.mark.xfail(strict=True, raises=AssertionError, reason=DIVERGES[key])
                    )
                params.append(
                    pytest.param(name, dotted, args, kwargs, id=f"{key}[{i}]", marks=marks)
                )
    return params


@pytest.mark.parametrize(("name", "dotted", "args", "kwargs"), _accepted_cases())
def test_equivalent(name: str, dotted: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    errors = compile_errors(name)
    assert not errors, "\n".join(str(e) for e in errors)
    module = load(name)
    check_equivalent(module, decorated(module)[dotted], args, kwargs)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            marks=pytest.mark.xfail(
                strict=True,
                raises=Refused,
                reason=f"{REFUSED[name][1]} until the compiler supports it",
            ),
        )
        for name in sorted(REFUSED)
    ],
)
def test_refused_module(name: str) -> None:
    errors = compile_errors(name)
    if errors:
        codes = frozenset(e.code for e in errors)
        expected = REFUSED[name][0]
        assert codes == expected, (
            f"{name}: the compiler now reports {sorted(codes)}, not {sorted(expected)}:\n"
            + "\n".join(str(e) for e in errors)
        )
        raise Refused(sorted(codes))
    check_module(name)


@pytest.mark.parametrize("name", module_names())
def test_original_runs(name: str) -> None:
    """The original of every function runs with its arguments under asyncio
    (so that a broken fake cannot make both sides fail alike)."""
    if name in NOT_IMPORTABLE:
        with pytest.raises(TypeError, match=NOT_IMPORTABLE[name]):
            load(name)
        return
    module = load(name)
    raises = getattr(module, "RAISES", ())
    for dotted, fn in decorated(module).items():
        for args, kwargs in arg_sets(module)[dotted]:
            reset = getattr(module, "reset", None)
            if reset is not None:
                reset()
            a, k = copy.deepcopy((args, kwargs))
            outcome = run_original(fn, *a, **k)
            assert outcome.error is None or isinstance(outcome.error, raises), (
                f"{dotted}{args}: {outcome.error!r}"
            )
