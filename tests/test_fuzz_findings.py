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

import pytest

from resumable import Function
from resumable.testing import assert_equivalent, run_compiled, run_original, step_value
from resumable_compiler.build import compile_file, compile_source

PRELUDE = "import resumable\nfrom resumable.testing import step\n\nG = None\n\n\n"
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
    state keeps the annotation as text (an await would not compile there).
    An async comprehension there is still taken for an `__anext__` site:
    test_an_async_comprehension_in_a_local_annotation."""
    body = """\
        x: (await step("never")) = await step("a")
        y: [await v for v in step("never")] = 2
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


@pytest.mark.parametrize("char", ["\x0c", "\u2028", "\x1c", "\x85"], ids=["ff", "ls", "fs", "nel"])
def test_lines_are_numbered_as_cpython_numbers_them(char: str, tmp_path: Path) -> None:
    """A form feed line (an Emacs page break, as in the stdlib), or a line
    separator in a string or comment, ends a line for str.splitlines, not for
    CPython: the lines after it were numbered one too far, so each state's
    comment quoted the wrong line, and the build hash was taken over the
    wrong block: the compiled function was always stale (StaleCodeError)."""
    alone = char if char == "\x0c" else f"# {char}"  # only a form feed is whitespace
    source = (
        f'{PRELUDE}{alone}\n# a{char}b\n@resumable.function\nasync def f(a):\n    x = "{char}"\n'
    )
    source += '    return x + str(await step("a"))\n'
    line = source[: source.index("    return x")].count("\n") + 1
    assert f'# line {line}: return x + str(await step("a"))' in generated(source)
    fn = load(source, tmp_path)
    assert_equivalent(fn, 1)


# -- open: the lowering and the emitter (not fixed here) ----------------------------------------


@pytest.mark.xfail(strict=True, reason="lowering: an annotated target without value is dropped")
def test_an_annotated_target_without_value_evaluates_its_awaits(tmp_path: Path) -> None:
    """`(await step("a"))[a]: int` awaits step("a") (and reads `a`); the
    lowering emits nothing for an annotated assignment without a value, so
    the check pass reports `no state evaluates await 0` (an InternalError)."""
    body = """\
        (await step("a"))[a]: int
        d = {}
        d[await step("b")]: int
        return a
        """
    assert equivalent(body, tmp_path, 1) == 1


@pytest.mark.xfail(strict=True, reason="render compiles states under `annotations` (PEP 563)")
def test_walrus_in_a_nested_annotation() -> None:
    """render.py checks the generated module with `compile(text, ...)` without
    `dont_inherit=True`, so it inherits render.py's own `from __future__
    import annotations`: an annotation CPython accepts, but not under PEP 563
    (a walrus, a yield, an await), fails that check (an InternalError)."""
    generated(module("def inner(p):\n    z: (p := 1) = p\nawait step('a')\n"))


@pytest.mark.xfail(strict=True, reason="lowering: a one-line suite's awaits are not seen")
def test_an_await_in_a_one_line_suite(tmp_path: Path) -> None:
    """`if a: await step("a")`: builder.statements_of wraps the suite's small
    statements in a new SimpleStatementLine, whose id analyze never saw, so
    `has_await` is false for it; the check pass reports `no state evaluates
    await 0` (an InternalError)."""
    body = """\
        if a: await step("a")
        while a: a -= 1; await step("b")
        return a
        """
    assert equivalent(body, tmp_path, 1) == 0


@pytest.mark.xfail(strict=True, reason="lowering: a lowered concatenation loses its grouping")
def test_method_of_a_concatenated_string_that_awaits(tmp_path: Path) -> None:
    """`"a" f"{await t}".upper()` calls upper() on the whole string: the
    lowering writes `"a" + f"{m.sent}".upper()` (upper of the f-string only;
    as an assignment target, `"a" + f"..."[:] = v` does not compile)."""
    body = """\
        x = "a" f"{await step('a')}".upper()
        return x
        """
    assert equivalent(body, tmp_path, 1) == "A" + str(step_value("a", ())).upper()


@pytest.mark.xfail(
    strict=True, reason="lowering: a first statement `'a' f'{x}'` is taken for a docstring"
)
@pytest.mark.parametrize(
    "body",
    [
        '"a" f"{await step(\'a\')}"\nreturn a\n',
        '"a" f"{(a := [*a, 1])}"\nawait step(\'a\')\nreturn a\n',
    ],
    ids=["awaits", "walrus"],
)
def test_a_first_statement_concatenating_an_fstring_runs(body: str, tmp_path: Path) -> None:
    """A string concatenated with an f-string is a JoinedStr, never a
    docstring: CPython evaluates it. lower.py's `_is_docstring` drops any
    first string statement, so its walrus never binds, and its await is never
    evaluated (the check pass reports `no state evaluates await 0`)."""
    equivalent(body, tmp_path, [])


@pytest.mark.xfail(strict=True, reason="locations.py numbers generated lines with str.splitlines")
def test_traceback_line_after_a_line_separator_in_a_string(tmp_path: Path) -> None:
    """runtime/locations.py maps the generated module's lines to the source's
    with `text.splitlines()`, which also splits at a U+2028 inside a string
    literal of a state: the frames of a compiled run name a line two too
    early here."""
    import traceback

    body = 'x = "a\u2028b\u2028c"\nawait step("a")\ny = 1\nreturn 1 / 0\n'
    fn = load(module(body), tmp_path)
    native, compiled = run_original(fn, 1).error, run_compiled(fn, 1).error
    assert isinstance(native, ZeroDivisionError) and isinstance(compiled, ZeroDivisionError)
    line = traceback.extract_tb(compiled.__traceback__)[-1].lineno
    assert line == traceback.extract_tb(native.__traceback__)[-1].lineno


@pytest.mark.xfail(strict=True, reason="fingerprint: an annotation's async for is taken for a site")
def test_an_async_comprehension_in_a_local_annotation(tmp_path: Path) -> None:
    """`y: [v async for v in t] = 2` never iterates t (the annotation is not
    evaluated), but fingerprint.own_awaits counts the implicit `__anext__` of
    every `async for` among the function's own nodes, annotations included,
    and the check pass finds no state evaluating it (an InternalError)."""
    body = """\
        y: [v async for v in step("never")] = 2
        return y
        """
    assert equivalent(body, tmp_path, 1) == 2


@pytest.mark.xfail(
    strict=True, reason="lowering: an await in an async for target is never evaluated"
)
@pytest.mark.parametrize(
    "target", ['d[await step("k")]', "d[[v async for v in it][0]]"], ids=["await", "async-for"]
)
def test_an_await_in_an_async_for_target(target: str) -> None:
    """`async for d[await k] in it` evaluates `await k` at every step (a
    plain `for` target that awaits is supported); the check pass reports
    `no state evaluates await 0` (an InternalError), also for the implicit
    `__anext__` of an async comprehension there."""
    generated(module(f"d = {{}}\nasync for {target} in it:\n    pass\n"))


@pytest.mark.xfail(strict=True, reason="scopes: scopes matched with symbol tables out of order")
@pytest.mark.parametrize(
    ("body", "args"),
    [
        ('xs = [h() for h in [(lambda: a) for _ in range(2)]]\nawait step("a")\nreturn xs\n', (1,)),
        ('xs = list((lambda: a) for v in (w for w in [1]))\nawait step("a")\nreturn xs[0]()\n', (1,)),
        ('h = lambda p, q=lambda p, q: 2: {x for x in a}\nawait step("a")\nreturn h(0)\n', ([1],)),
        ('d = {**{1: v for v in a for w in [u for u in a]}, {2: v for v in a}.get(2): 3}\n'
         'await step("a")\nreturn d\n', ([1],)),
        ('d = {**{1: (lambda: a)}, (lambda: G): 2}\nawait step("a")\nreturn d[1]()\n', (1,)),
        ('x = [2 for v in a] if [(lambda: a) for w in a] else 0\nawait step("a")\nreturn x\n',
         ([1],)),
    ],
    ids=["comprehension-first-iterable", "genexp-first-iterable", "lambda-default", "dict-keys",
         "dict-keys-miscompiled", "ifexp-test-before-body"],
)  # fmt: skip
def test_scopes_matched_with_their_symbol_tables(
    body: str, args: tuple[object, ...], tmp_path: Path
) -> None:
    """scopes.py matches each lambda, nested function, class and
    comprehension with its symbol table by kind, name, parameters and line,
    the first one left in source order. CPython's symtable creates them in
    another order: a scope's header (a comprehension's outermost iterable, a
    lambda's defaults) before the scope, a dict display's keys before its
    values, a conditional expression's test before its body. Two of one kind on one line then swap tables: the one inside
    finds none (`no symbol table for the Lambda`, an InternalError), or,
    silently, a lambda gets another's free names, and reads `a` as a global
    (NameError: the last case)."""
    equivalent(body, tmp_path, *args)


@pytest.mark.xfail(strict=True, reason="fingerprint: a definition's header is not the function's")
@pytest.mark.parametrize(
    "header",
    ["def h(x=[v async for v in it]):", "@{v async for v in it}\ndef h():",
     "class C(*[v async for v in it]):"],
    ids=["def-default", "def-decorator", "class-base"],
)  # fmt: skip
def test_an_async_comprehension_in_a_nested_definitions_header(header: str) -> None:
    """A nested definition's decorators, defaults and bases run in the
    function, and awaits there are lowered where the definition stands; but
    fingerprint.own_awaits skips whole FunctionDef, Lambda and ClassDef
    nodes when it collects implicit awaits, so the `__anext__` of an async
    comprehension in a header has no site (`no implicit await of __anext__
    at this node`, an InternalError)."""
    generated(module(f"{header}\n    pass\nawait step('a')\n"))


@pytest.mark.xfail(strict=True, reason="lowering: a chain's operand is read after a walrus")
@pytest.mark.parametrize(
    ("body", "value"),
    [
        ('c = 0\nreturn c < (c := c + 1) <= await step("a")\n', True),
        ('c = 0\nreturn c < (c := await step("a")) < 100\n', True),
        ('c = 5\nreturn 0 < c > (c := 1) <= await step("a")\n', True),
    ],
    ids=["walrus-before-await", "walrus-of-await", "middle-operand"],
)
def test_a_comparison_chain_reads_a_name_before_a_later_walrus(
    body: str, value: bool, tmp_path: Path
) -> None:
    """In `c < (c := c + 1) <= await t`, CPython reads `c` (0) before the
    walrus rebinds it (to 1): `0 < 1` holds and the await runs. The lowering
    of a chain whose later operands await (expressions.lower_comparison)
    leaves an operand that is a plain name unspilled (`L.c < L._t2` after
    the walrus), so it compares `1 < 1` and skips the await; the same for a
    name in the middle of the chain. A single comparison (`c < (c := await
    t)`), an operand that is not a name (`(c + 1) < (c := 5) <= await t`), a
    binary operator, and a call rebinding `c` through `nonlocal` are right.
    The property test's grammar (tests/grammar.py, `_test`) steers clear of it."""
    assert equivalent(body, tmp_path, 1) is value
