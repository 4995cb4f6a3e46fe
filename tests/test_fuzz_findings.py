"""What the compiler fuzz (tests/test_compiler_fuzz.py) found, each reduced to
a minimal module.

Fixed ones are regression tests: they compile, and those that run are
checked against the original coroutine with a crash and a resume after
every checkpoint. Open ones are strict xfails (an XPASS fails the run: then
the fix landed, and the entry of `KNOWN_BUGS` in test_compiler_fuzz.py that
keeps the fuzz from reporting it again goes too).
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import textwrap
import warnings
from pathlib import Path


from resumable import Function
from resumable.testing import assert_equivalent, run_original, step_value
from resumable_compiler.build import compile_file, compile_source

PRELUDE = "import resumable\nfrom resumable.testing import step\n\n\n"
_names = itertools.count()


def module(body: str) -> str:
    """A module with one decorated `f(a)` holding `body`."""
    return f"{PRELUDE}@resumable.function\nasync def f(a):\n" + textwrap.indent(
        textwrap.dedent(body), "    "
    )


def generated(source: str) -> str:
    text, _, errors = compile_source("mod.py", source)
    assert not errors, "\n".join(map(str, errors))
    assert text is not None
    return text


def load(source: str, folder: Path) -> Function:
    path = folder / f"fuzz_found_{next(_names)}.py"
    path.write_text(source, encoding="utf-8")
    result = compile_file(str(path))
    assert not result.errors, "\n".join(str(e) for e in result.errors)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    fn = mod.f
    assert isinstance(fn, Function)
    return fn


def run_original_step(label: str) -> object:
    """What `await step(label)` gives (tests/testing's scripted steps)."""
    return step_value(label, ())


def equivalent(body: str, folder: Path, *args: object) -> object:
    """Compile and run `f(*args)` against the original; the original's result."""
    fn = load(module(body), folder)
    assert_equivalent(fn, *args)
    return run_original(fn, *args).value


# -- fixed -------------------------------------------------------------------------------------


def test_an_await_in_a_local_annotation_is_never_run(tmp_path: Path) -> None:
    """CPython never evaluates the annotation of a local: its awaits are not
    the function's (the check pass found no state evaluating them), and a
    state keeps the annotation as text (an await would not compile there)."""
    body = """\
        x: (await step("never")) = await step("a")
        y: [v async for v in step("never")] = 2
        z: await step("never")
        return x, y
        """
    text = generated(module(body))
    assert 'return step("never")' not in text  # no await state for them
    assert equivalent(body, tmp_path, 1) == (run_original_step("a"), 2)


def test_a_yield_in_a_local_annotation_still_makes_an_async_generator() -> None:
    _, _, errors = compile_source("mod.py", module("x: (yield) = 1\n"))
    assert [e.code for e in errors] == ["E01"]


def test_an_annotated_target_without_value_reads_its_object_after_a_checkpoint(
    tmp_path: Path,
) -> None:
    """`box[0]: int` evaluates `box` (and `0`): `box` is live at the await
    before it (it was restored as unbound, an UnboundLocalError)."""
    body = """\
        box = [a]
        await step("a")
        box[0]: int
        box.append: int
        return a
        """
    assert equivalent(body, tmp_path, 1) == 1


def test_fstring_debug_field_of_a_set_display(tmp_path: Path) -> None:
    """`f"{ {a}=}"`: the field is rewritten `{ {L.a}!r}`, keeping the space
    (`{{` would be an escaped brace, and the state would not compile)."""
    body = """\
        x = f"{ {a}=}|{ {a} = !s:>8}"
        await step("a")
        return x
        """
    a = 1
    assert equivalent(body, tmp_path, a) == f"{ {a}=}|{ {a} = !s:>8}"


def test_cpython_warnings_about_the_source_are_not_errors() -> None:
    """With warnings as errors (`python -W error`, or pytest's filterwarnings)
    a module CPython only warns about compiles: parse does not report E00 for
    it, render does not report its own check as a bug."""
    source = module('x = "\\d"\nawait step("a")\nreturn "s"[1, 2] if a else x\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        generated(source)
