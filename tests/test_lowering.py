"""The small lowering cases of tests/lowering/*.test (see lowering_cases.py).

Each case is checked twice: its listing against the case's [out] (rewrite
them with `pytest --update-golden` and review the diff), and its function,
compiled, against the original with a crash and a resume after every
checkpoint and a failure of each awaited call (as test_differential.py).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from resumable import Function
from resumable.testing import Script, assert_equivalent, run_compiled, run_original

from .lowering_cases import Case, all_cases, listing, write_outputs

CASES = all_cases()
_updates: dict[Path, dict[str, str]] = {}


def test_case_names_are_unique() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_listing(case: Case, request: pytest.FixtureRequest) -> None:
    got = listing(case.source)
    if request.config.getoption("--update-golden"):
        outputs = _updates.setdefault(
            case.file, {c.name: c.out for c in CASES if c.file == case.file}
        )
        outputs[case.name] = got
        write_outputs(case.file, outputs)
        return
    assert got == case.out, f"{case.file.name}:{case.line}: listing of {case.name} changed"


def _load(case: Case, folder: Path) -> Function:
    from resumable_compiler.build import compile_file

    path = folder / f"lowering_{case.name}.py"
    path.write_text(case.module, encoding="utf-8")
    result = compile_file(str(path))
    assert not result.errors, "\n".join(str(e) for e in result.errors)
    spec = importlib.util.spec_from_file_location(f"lowering_{case.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return next(v for v in vars(module).values() if isinstance(v, Function))


RUNNABLE = [c for c in CASES if "error[" not in c.out]


@pytest.mark.parametrize("case", RUNNABLE, ids=[c.name for c in RUNNABLE])
def test_equivalent(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The case's module is then one of the project's: its classes may be stored.
    monkeypatch.chdir(tmp_path)
    fn = _load(case, tmp_path)
    if case.refused:
        for args in case.args:
            assert run_original(fn, *args).error is None
            error = run_compiled(fn, *args).error
            assert type(error).__name__ == case.refused, repr(error)
        return
    for args in case.args:
        native = run_original(fn, *args)
        assert_equivalent(fn, *args)
        for k in range(1, len(native.calls) + 1):
            assert_equivalent(fn, *args, script=Script(fail_at={k}))
