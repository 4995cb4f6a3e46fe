"""Every decorated function in tests/cases, compiled, against its original.

Decorated functions of a case module, and the decorated methods of its
classes (named "Class.method" in ARGS; a classmethod bound to its class, an
instance method given its object as first argument). For each and each
argument set in the module's ARGS (default: no arguments): a clean run, then one run per awaited call in which that call
raises StepError. The compiled run crashes right after every checkpoint and
resumes from the stored JSON, so each segment starts from a fresh machine.
Equal means: same result or exception (type, args, attributes, context and
cause chain) and the same awaited calls with the same arguments.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from resumable import Function
from resumable.testing import Script, assert_equivalent, run_original

from .conftest import case_names, compiled_case, load_case


def decorated(module: ModuleType) -> dict[str, Any]:
    """The module's decorated functions and methods, by dotted name: what to
    run (a Function, or a classmethod bound to its class)."""
    found: dict[str, Any] = {}
    for attr, value in vars(module).items():
        if isinstance(value, Function) and value.__module__ == module.__name__:
            found[attr] = value
        elif isinstance(value, type) and value.__module__ == module.__name__:
            for name, member in vars(value).items():
                inner = (
                    member.__func__ if isinstance(member, staticmethod | classmethod) else member
                )
                if not isinstance(inner, Function):
                    continue
                bound = isinstance(member, classmethod) or inner.kind == "classmethod"
                found[f"{attr}.{name}"] = getattr(value, name) if bound else inner
    return found


def _cases() -> list[Any]:
    params = []
    for name in case_names():
        module = load_case(name)
        args_table = getattr(module, "ARGS", {})
        for dotted in decorated(module):
            for i, (args, kwargs) in enumerate(args_table.get(dotted, [((), {})])):
                params.append(pytest.param(name, dotted, args, kwargs, id=f"{name}.{dotted}[{i}]"))
    return params


@pytest.mark.parametrize(("case", "function", "args", "kwargs"), _cases())
def test_equivalent(
    case: str,
    function: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    compiled_case(case)
    fn = decorated(load_case(case))[function]
    native = run_original(fn, *args, **kwargs)
    assert_equivalent(fn, *args, **kwargs)
    for k in range(1, len(native.calls) + 1):
        assert_equivalent(fn, *args, script=Script(fail_at={k}), **kwargs)
