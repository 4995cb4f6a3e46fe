"""Every decorated function in tests/cases, compiled, against its original.

For each function and each argument set in the module's ARGS (default: no
arguments): a clean run, then one run per awaited call in which that call
raises StepError. The compiled run crashes right after every checkpoint and
resumes from the stored JSON, so each segment starts from a fresh machine.
Equal means: same result or exception (type, args, attributes, context and
cause chain) and the same awaited calls with the same arguments.
"""

from __future__ import annotations

from typing import Any

import pytest

from resumable import Function
from resumable.testing import Script, assert_equivalent, run_original

from .conftest import case_names, compiled_case, load_case


def _cases() -> list[Any]:
    params = []
    for name in case_names():
        module = load_case(name)
        args_table = getattr(module, "ARGS", {})
        for attr, value in vars(module).items():
            if isinstance(value, Function) and value.__module__ == module.__name__:
                for i, (args, kwargs) in enumerate(args_table.get(attr, [((), {})])):
                    params.append(pytest.param(name, attr, args, kwargs, id=f"{name}.{attr}[{i}]"))
    return params


@pytest.mark.parametrize(("case", "function", "args", "kwargs"), _cases())
def test_equivalent(
    case: str,
    function: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    compiled_case(case)
    fn = getattr(load_case(case), function)
    native = run_original(fn, *args, **kwargs)
    assert_equivalent(fn, *args, **kwargs)
    for k in range(1, len(native.calls) + 1):
        assert_equivalent(fn, *args, script=Script(fail_at={k}), **kwargs)
