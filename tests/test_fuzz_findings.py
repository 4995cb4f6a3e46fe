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
from typing import Any, cast

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
    An async comprehension there: test_an_async_comprehension_in_a_local_annotation."""
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


def test_an_await_in_a_one_line_suite(tmp_path: Path) -> None:
    """`if a: await step("a")`: the lowering wrapped the suite's small
    statements in a new SimpleStatementLine, whose id analyze never saw, so
    `has_await` was false for it; the check pass reported `no state
    evaluates await 0` (an InternalError). analyze now makes that line."""
    body = """\
        if a: await step("a")
        while a: a -= 1; await step("b")
        return a
        """
    assert equivalent(body, tmp_path, 1) == 0


ONE_LINE_SUITES = PRELUDE + textwrap.dedent(
    """\
    import contextlib
    from dataclasses import dataclass, field


    @dataclass
    class Session:
        name: str
        log: list = field(default_factory=list)

        async def __aenter__(self):
            self.log.append(await step("open", self.name))
            return self

        async def __aexit__(self, typ, value, tb):
            self.log.append(await step("close", self.name, typ and typ.__name__))
            return False


    @dataclass
    class Countdown:
        n: int

        def __aiter__(self):
            return self

        async def __anext__(self):
            if self.n <= 0:
                raise StopAsyncIteration
            self.n -= 1
            return self.n


    @resumable.function
    async def f(a):
        out = []
        if a: out.append(await step("if"))
        elif a is None: out.append(await step("elif"))
        else: out.append(await step("else")); out.append(a)
        n = a
        while n: n -= 1; out.append(await step("while", n))
        else: out.append(await step("while-else"))
        for i in range(a or 0): out.append(await step("for", i))
        else: out.append(await step("for-else"))
        try: out.append(await step("try")); out.append(1 / (a or 0))
        except ZeroDivisionError as e: out.append(await step("except", str(e)))
        else: out.append(await step("try-else"))
        finally: out.append(await step("finally"))
        try: out.append(await step("try-star")); raise ExceptionGroup("g", [ValueError(a)])
        except* ValueError as g: out.append(await step("except*", repr(g.exceptions)))
        with contextlib.nullcontext(a) as c: out.append(await step("with", c))
        async with Session("s") as s: out.append(await step("async with"))
        out.append(s.log)
        async for v in Countdown(a or 0): out.append(await step("async for", v))
        match a:
            case 0: out.append(await step("zero"))
            case None: pass
            case _ if await step("guard"): out.append(await step("other"))
        def inner(): return out
        return inner()
    """
)


@pytest.mark.parametrize("a", [0, 1, 2, None])
def test_an_await_in_a_one_line_suite_of_every_compound_statement(
    a: object, tmp_path: Path
) -> None:
    """Every suite that may stand on its header's line: if/elif/else,
    while/else, for/else, try/except/else/finally, except*, with, async
    with, async for, a case body (its guard awaiting too), a nested def."""
    fn = load(ONE_LINE_SUITES, tmp_path)
    assert_equivalent(fn, a)


def test_a_function_on_one_line(tmp_path: Path) -> None:
    """The decorated function's own body is a one-line suite."""
    source = f'{PRELUDE}@resumable.function\nasync def f(a): x = await step("a", a); return x, a\n'
    fn = load(source, tmp_path)
    assert_equivalent(fn, 1)


#: Scopes of one kind in one table whose symbol tables CPython's symtable
#: creates in another order than the source's (each reads `a`, a local, where
#: the one it would be paired with by source order does not: a closure then
#: reads `a` as a global, a NameError, or finds no table, an InternalError).
SCOPE_ORDERS = {
    # the fuzz's findings
    "comprehension-first-iterable": (
        'x = [h() for h in [(lambda: a) for _ in range(2)]]\n', (1,)),
    "genexp-first-iterable": ('x = list((lambda: a) for v in (w for w in [1]))[0]()\n', (1,)),
    "lambda-default": ('h = lambda p, q=lambda p, q: 2: {x for x in a}\nx = h(0)\n', ([1],)),
    "dict-keys": ('x = {**{1: v for v in a for w in [u for u in a]}, {2: v for v in a}.get(2): 3}\n',
                  ([1],)),
    "dict-keys-miscompiled": ('d = {**{1: (lambda: a)}, (lambda: G): 2}\nx = d[1]()\n', (1,)),
    "ifexp-test-before-body": ('x = [2 for v in a] if [(lambda: a) for w in a] else 0\n', ([1],)),
    # generators and nested comprehensions: the one in the outermost iterable first
    "genexp-in-genexp-iterable": (
        'x = [g() for g in list((lambda: v() + 1) for v in ((lambda: a) for w in [1]))]\n', (1,)),
    "listcomp-in-listcomp-iterable": (
        'x = [[u() for u in v] for v in [[(lambda: a) for _ in w] for w in [[0]]]]\n', (1,)),
    "setcomp-in-setcomp-iterable": (
        'x = sorted(h() for h in {v for v in {(lambda: a) for _ in [1]}})\n', (1,)),
    "dictcomp-value-before-key": (
        'd = {(lambda: G): (lambda: a) for _ in [1]}\nx = [v() for v in d.values()]\n', (1,)),
    "comprehension-condition-before-element": (
        'x = [(lambda: a + h())() for h in [(lambda: 1)] if (lambda: G)() is None]\n', (1,)),
    # definitions: defaults, then annotations, then decorators, then the scope
    "lambda-in-same-lambdas-default": ('x = (lambda k=(lambda k=0: a): k)()()\n', (1,)),
    "def-default-before-annotations": (
        'def h(p: (lambda: a) = (lambda: G), *q: (lambda: a), r: (lambda: a) = (lambda: a),\n'
        '      **s: (lambda: a)) -> (lambda: a):\n'
        '    pass\n'
        'x = [h.__defaults__[0](), h.__kwdefaults__["r"](), *(v() for v in h.__annotations__.values())]\n',
        (1,)),
    "decorators-after-defaults": (
        '@(lambda g: (lambda: a + g()))\ndef h(p=(lambda g=0: G)):\n    return 1\nx = h()\n', (1,)),
    "class-body": (
        'class C:\n    d = {1: (lambda: a), (lambda: G): 2}\n'
        '    fs = [v for v in [(lambda: a) for _ in [1]]]\nx = [C.d[1](), C.fs[0]()]\n', (1,)),
    "class-header": (
        '@(lambda c: [*c, 3])\nclass C(*[(lambda: a + 1)], k=(lambda: a),\n'
        '        metaclass=lambda n, b, ns, **kw: [b[0](), kw["k"]()]):\n    pass\nx = C\n', (1,)),
    # a local's annotation is never evaluated, but its scopes have tables
    "local-annotation": ('y: [(lambda: G) for _ in [1]] = [(lambda: a) for _ in [1]]\nx = y[0]()\n',
                         (1,)),
    # calls: positional arguments (`*` too) before keyword ones
    "starred-after-keyword": (
        'def g(*fs, k):\n    return [fs[0](), k()]\nx = g(k=(lambda: G), *[(lambda: a)])\n', (1,)),
    "ifexp-in-a-set": ('x = {(lambda: a) if (lambda: G)() is None else 0}.pop()()\n', (1,)),
    "dict-keys-before-values": (
        'd = {1: (lambda: a), (lambda: G): 2, **{3: (lambda: a)}}\nx = [d[1](), d[3]()]\n', (1,)),
    "fstrings-in-dict-keys": ('x = {1: f"{(lambda: a)()}", f"{(lambda: G)()}": 2}\n', (1,)),
    "fstring-spec-in-ifexp": (
        'x = f"{(lambda: a)()!r:>{(lambda: a + 3)()}}" if (lambda: G)() is None else ""\n', (1,)),
    "walrus": ('x = [(w := (lambda: a))(), [h() for h in [w]]]\n', (1,)),
}  # fmt: skip


@pytest.mark.parametrize(("body", "args"), SCOPE_ORDERS.values(), ids=SCOPE_ORDERS.keys())
def test_scopes_matched_with_their_symbol_tables(
    body: str, args: tuple[object, ...], tmp_path: Path
) -> None:
    """scopes.py matched each lambda, nested function, class and
    comprehension with its symbol table by kind, name, parameters and line,
    the first one left in source order. CPython's symtable creates them in
    another order: a scope's header (a comprehension's outermost iterable, a
    lambda's defaults) before the scope, a dict display's keys before its
    values, a conditional expression's test before its body. Two of one
    kind on one line then swapped tables: the one inside found none (`no
    symbol table for the Lambda`, an InternalError), or, silently, a lambda
    got another's free names, and read `a` as a global (NameError). They are
    now paired in the order symtable.c visits the tree."""
    equivalent(body + 'await step("a")\nreturn x\n', tmp_path, *args)


def test_no_symbol_tables_for_annotations_under_pep_563(tmp_path: Path) -> None:
    """With `from __future__ import annotations` an annotation is never
    evaluated, and its scopes get no symbol table: the scopes after it are
    paired with their own."""
    body = """\
        def h(p: (lambda: G) = (lambda: a)) -> [(lambda: G) for _ in [1]]:
            pass
        y: (lambda: G) = (lambda: a)
        x = [h.__defaults__[0](), y(), h.__annotations__["p"]]
        await step("a")
        return x
        """
    fn = load("from __future__ import annotations\n" + module(body), tmp_path)
    assert_equivalent(fn, 1)
    assert run_original(fn, 1).value == [1, 1, "lambda: G"]


def test_walrus_in_a_nested_annotation(tmp_path: Path) -> None:
    """render.py checked the generated module with `compile(text, ...)`
    without `dont_inherit=True`, so it inherited render.py's own `from
    __future__ import annotations`: an annotation CPython accepts, but not
    under PEP 563 (a walrus, here), failed that check (an InternalError).
    A nested definition's annotations are evaluated, a local's are not, as
    in the original."""
    body = """\
        def inner(p):
            z: (q := p + 1) = p
            return z
        r = inner(a)
        def h(x: (w := a + 1)) -> (v := [w]):
            pass
        await step("a")
        return r, w, v, inner(a)
        """
    assert equivalent(body, tmp_path, 1) == (1, 2, [2], 1)


@pytest.mark.parametrize(
    "char", ["\u2028", "\u2029", "\x85", "\x1c", "\x0c"], ids=["ls", "ps", "nel", "fs", "ff"]
)
def test_traceback_line_after_a_line_separator_in_a_string(char: str, tmp_path: Path) -> None:
    """runtime/locations.py maps the generated module's lines to the source's
    with `text.splitlines()`, which also splits at a U+2028 inside a string
    literal of a state: the frames of a compiled run named a line two too
    early here. It numbers them as CPython does now (resumable/source.py
    `source_lines`, shared with the compiler)."""
    import traceback

    body = f'x = "a{char}b{char}c"\nawait step("a")\ny = "{char}"\nif a:\n    z = 1\n    1 / 0\n'
    fn = load(module(body), tmp_path)
    native, compiled = run_original(fn, 1).error, run_compiled(fn, 1).error
    assert isinstance(native, ZeroDivisionError) and isinstance(compiled, ZeroDivisionError)
    line = traceback.extract_tb(compiled.__traceback__)[-1].lineno
    assert line == traceback.extract_tb(native.__traceback__)[-1].lineno


#: A storable async iterator whose every `__anext__` awaits a step.
TICKER = """\
import dataclasses


@dataclasses.dataclass
class Ticker:
    n: int
    i: int = 0

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.i >= self.n:
            raise StopAsyncIteration
        self.i += 1
        return await step("tick", self.i)


"""


def ticking(body: str) -> str:
    """module(body), with `Ticker` defined."""
    return module(body).replace(PRELUDE, PRELUDE + TICKER, 1)


def test_an_async_comprehension_in_a_local_annotation(tmp_path: Path) -> None:
    """`y: [v async for v in t] = 2` never iterates t (the annotation is not
    evaluated), but fingerprint.own_awaits counted the implicit `__anext__`
    of every `async for` among the function's own nodes, annotations
    included, and the check pass found no state evaluating it (an
    InternalError). A local's annotation is no longer the function's."""
    body = """\
        y: [v async for v in step("never")] = 2
        d = {}
        d["k"]: [v async for v in Ticker(1)] = [v async for v in Ticker(2)]
        return y, d
        """
    fn = load(ticking(body), tmp_path)
    assert_equivalent(fn, 1)
    assert run_original(fn, 1).value == (2, {"k": [step_value("tick", (i,)) for i in (1, 2)]})


#: A nested definition whose header (not its body) iterates an async
#: comprehension, and what the function returns after an await.
HEADERS = {
    "def-default": "def h(x=[v async for v in Ticker(2)]):\n    return x\nr = h()\n",
    "def-keyword-only-default": "def h(*, k={v async for v in Ticker(2)}):\n    return k\nr = h()\n",
    "def-decorator": "@(lambda d: lambda g: d)([v async for v in Ticker(2)])\ndef h():\n    pass\n"
                     "r = h\n",
    "lambda-default": "h = lambda x={v: 1 async for v in Ticker(2)}: x\nr = h()\n",
    "class-base": "class C(*[object async for v in Ticker(1)]):\n    pass\nr = len(C.__mro__)\n"
                  "del C\n",
    "class-keyword": "class C(metaclass=lambda n, b, ns, **kw: kw, k=[v async for v in Ticker(2)]):\n"
                     "    pass\nr = C\n",
    "class-decorator": "@(lambda d: lambda c: d)([v async for v in Ticker(2)])\nclass C:\n    pass\n"
                       "r = C\n",
}  # fmt: skip


@pytest.mark.parametrize("header", HEADERS.values(), ids=HEADERS.keys())
def test_an_async_comprehension_in_a_nested_definitions_header(header: str, tmp_path: Path) -> None:
    """A nested definition's decorators, defaults and bases run in the
    function, and awaits there are lowered where the definition stands; but
    fingerprint.own_awaits skipped whole FunctionDef, Lambda and ClassDef
    nodes when it collected implicit awaits, so the `__anext__` of an async
    comprehension in a header had no site (`no implicit await of __anext__
    at this node`, an InternalError). Each `__anext__` is a checkpoint now."""
    fn = load(ticking(header + 'await step("a")\nreturn r\n'), tmp_path)
    assert_equivalent(fn, 1)
    assert run_original(fn, 1).error is None


@pytest.mark.parametrize("future", [False, True], ids=["evaluated", "pep-563"])
def test_an_async_comprehension_in_a_nested_functions_annotation_is_refused(
    future: bool,
) -> None:
    """A nested function's annotations are evaluated where it stands (unless
    `from __future__ import annotations`): an async comprehension there
    awaits, which is refused there as an await is (E12), not a crash. Under
    PEP 563 CPython never evaluates it, but a state (a plain `def`) could
    not hold it either."""
    source = module("def h(x: [v async for v in it]) -> [v async for v in it]:\n    pass\n")
    if future:
        source = "from __future__ import annotations\n" + source
    _, _, errors = compile_source("mod.py", source)
    assert [e.code for e in errors] == ["E12"]


def test_an_annotated_target_without_value_evaluates_its_awaits(tmp_path: Path) -> None:
    """`(await step("a"))[a]: int` awaits step("a") (and reads `a`); the
    lowering emitted nothing for an annotated assignment without a value, so
    the check pass reported `no state evaluates await 0` (an InternalError)."""
    body = """\
        (await step("a"))[a]: int
        d = {}
        d[await step("b")]: int
        return a
        """
    assert equivalent(body, tmp_path, 1) == 1


@pytest.mark.parametrize(
    "body",
    [
        # a slice's bounds and a tuple's elements one by one, nothing subscripted
        'd = {}\nd[1:await step("a"), (a, await step("b")), ::a]: int\nreturn a\n',
        # the object's own parts, then the index, once each
        'G.x[await step("a")].y: (await step("never"))\nreturn G.x\n',
        # a walrus in the target binds
        'd = []\nd[(b := await step("a"))]: int\nreturn b\n',
        # an unbound local fails before the await after it, as in CPython
        'if a:\n    d = 1\nd[await step("a")]: int\nreturn a\n',
        # a failing part stops the rest (the await after it never runs)
        'G.missing[await step("a")]: int\n',
        'a.x: int\nawait step("a")\n',
    ],
    ids=["slices", "attribute-of-subscript", "walrus", "unbound", "attribute-error", "object"],
)
def test_an_annotated_target_without_value_evaluates_as_cpython(body: str, tmp_path: Path) -> None:
    """CPython's rule (compile.c, check_ann_expr/check_ann_subscr): without
    a value, an attribute target evaluates its object, a subscript target
    its object and then each part of its subscript; nothing is looked up,
    and the annotation of a local is never evaluated."""
    source = module(body).replace("G = None", "G = types.SimpleNamespace(x={1: 2})")
    fn = load("import types\n" + source, tmp_path)
    for a in (0, 1):
        assert_equivalent(fn, a)


def test_method_of_a_concatenated_string_that_awaits(tmp_path: Path) -> None:
    """`"a" f"{await t}".upper()` calls upper() on the whole string: the
    lowering wrote `"a" + f"{m.sent}".upper()` (upper of the f-string only;
    as an assignment target, `"a" + f"..."[:] = v` did not compile). The sum
    a lowered concatenation becomes is parenthesized."""
    body = """\
        x = "a" f"{await step('a')}".upper()
        return x
        """
    assert equivalent(body, tmp_path, 1) == "A" + str(step_value("a", ())).upper()


@pytest.mark.parametrize(
    "body",
    [
        'return "a" f"{await step(\'a\')}"[1:], "b" f"{a}{await step(\'b\')}"[-1]\n',
        'return "a" "b" f"{await step(\'a\')}" "c".split("b")\n',
        'return ("a" f"{await step(\'a\')}").upper(), -len("a" f"{await step(\'b\')}")\n',
        'return "{}" f"{await step(\'a\')}".format(a)\n',
        '"a" f"{await step(\'a\')}"[:] = a\n',
        '"a" f"{await step(\'a\')}".x = a\n',
        'del "a" f"{await step(\'a\')}"[0]\n',
    ],
    ids=["subscript", "nested", "parenthesized", "method", "target", "attribute-target", "del"],
)
def test_a_concatenated_string_that_awaits_keeps_its_grouping(body: str, tmp_path: Path) -> None:
    """Indexed, called, as the object of an attribute, a subscript or del
    target (those raise TypeError or AttributeError, as in CPython)."""
    fn = load(module(body), tmp_path)
    assert_equivalent(fn, 1)


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
    docstring: CPython evaluates it. lower.py's `_is_docstring` dropped any
    first string statement, so its walrus never bound, and its await was
    never evaluated (the check pass reported `no state evaluates await 0`)."""
    equivalent(body, tmp_path, [])


@pytest.mark.parametrize(
    "body",
    [
        '("a" "b" f"{await step(\'a\')}")\nreturn a\n',  # parenthesized, nested
        'f"{(a := [*a, 1])}" "b"\nawait step(\'a\')\nreturn a\n',  # the f-string first
        "f\"{await step('a')}\"\nreturn a\n",  # an f-string alone
        '"doc" "string"\nreturn await step("a", a)\n',  # a docstring, still dropped
        'b"bytes"\nreturn await step("a", a)\n',  # not a docstring (nothing to evaluate)
        '"doc"; a = await step("a")\nreturn a\n',  # a docstring with more on its line
    ],
    ids=["parenthesized", "fstring-first", "fstring-alone", "docstring", "bytes", "one-line"],
)
def test_only_a_str_constant_first_statement_is_a_docstring(body: str, tmp_path: Path) -> None:
    """CPython's rule (ast.get_docstring): a first statement that is a `str`
    constant; everything else is evaluated."""
    equivalent(body, tmp_path, [])


def test_a_docstring_is_not_a_state() -> None:
    """Evaluating it does nothing: no state holds it."""
    text = generated(module('"""doc""" "more"\nreturn await step("a")\n'))
    assert "doc" not in text and "# state 0, line 10: await" in text


@pytest.mark.parametrize(
    "target", ['d[await step("k")]', "d[[v async for v in it][0]]"], ids=["await", "async-for"]
)
def test_an_await_in_an_async_for_target(target: str) -> None:
    """`async for d[await k] in it` evaluates `await k` at every step (a
    plain `for` target that awaits is supported); the check pass reported
    `no state evaluates await 0` (an InternalError), also for the implicit
    `__anext__` of an async comprehension there."""
    generated(module(f"d = {{}}\nasync for {target} in it:\n    pass\n"))


ASYNC_FOR_TARGETS = PRELUDE + textwrap.dedent(
    """\
    import types
    from dataclasses import dataclass

    NS = types.SimpleNamespace(d={})


    @dataclass
    class Countdown:
        n: int

        def __aiter__(self):
            return self

        async def __anext__(self):
            if self.n <= 0:
                raise StopAsyncIteration
            self.n -= 1
            return await step("next", self.n)


    @resumable.function
    async def f(a):
        d = {}
        async for d[await step("k", len(d))] in Countdown(a):
            if len(d) == 2:
                continue
            d["body"] = await step("body", len(d))
            if len(d) > 5:
                break
        else:
            d["else"] = 1
        async for x, d[await step("x", x)] in Countdown(a):
            pass
        async for NS.d[[v async for v in Countdown(2)][0] + await step("y")] in Countdown(a):
            pass
        return d, NS.d
    """
)


@pytest.mark.parametrize("a", [0, 1, 4])
def test_an_await_in_an_async_for_target_runs_at_every_step(a: int, tmp_path: Path) -> None:
    """After `__anext__`, as a `for` target: a subscript, a tuple unpacked
    first (`x` bound before `d[await step("x", x)]`), an attribute's
    subscript holding an async comprehension; with continue, break, else."""
    fn = load(ASYNC_FOR_TARGETS, tmp_path)
    assert_equivalent(fn, a)


def test_an_async_for_targets_await_is_fingerprinted_after_the_iterable() -> None:
    """The target's await runs after the iterable and `__anext__`: a changed
    iterable changes the fingerprint of the target's await (a run standing
    there holds the old iterator), a changed body does not."""

    def sites(iterable: str, body: str = "pass") -> dict[int, str]:
        text = generated(
            module(f"d = {{}}\nasync for d[await step('k')] in {iterable}:\n    {body}\n")
        )
        namespace: dict[str, object] = {}
        exec(compile(text, "<generated>", "exec", dont_inherit=True), namespace)
        machine: Any = cast(dict[str, Any], namespace["MACHINES"])["f"]
        return dict(machine.sites.values())  # ordinal -> fingerprint

    before = sites("a")
    assert len(before) == 2  # `__anext__` (ordinal 0), then the target's await
    assert sites("a", "d = 1") == before
    after = sites("G")
    assert after[0] != before[0] and after[1] != before[1]


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
    left an operand that is a plain name unspilled (`L.c < L._t2` after
    the walrus), so it compared `1 < 1` and skipped the await; the same for a
    name in the middle of the chain. A name operand is now spilled when a
    later operand of the chain may rebind it. A single comparison (`c < (c := await
    t)`), an operand that is not a name (`(c + 1) < (c := 5) <= await t`), a
    binary operator, and a call rebinding `c` through `nonlocal` are right.
    The property test's grammar (tests/grammar.py, `_test`) steers clear of it."""
    assert equivalent(body, tmp_path, 1) is value


@pytest.mark.parametrize(
    "body",
    [
        'i = 4\nawait step("a")\nwith contextlib.suppress(ValueError):\n    raise ValueError(5)\n'
        "return i\n",
        'i = 4\nawait step("a")\nwith contextlib.suppress(KeyError):\n    if a:\n'
        '        raise KeyError(a)\n    i = 9\nreturn i, await step("b")\n',
    ],
    ids=["raise-in-body", "raise-on-a-branch"],
)
def test_a_with_that_suppresses_a_raise_keeps_what_is_live_after_it(
    body: str, tmp_path: Path
) -> None:
    """A `with` whose `__exit__` suppresses the exception its body raised
    goes on after the with. Liveness took the body's `raise` as the end of
    the flow, so `i`, read after the with, was dead at the await before it:
    it was left out of the checkpoint, and the compiled function raised
    UnboundLocalError (found by the 20,000-example property run, seed 6)."""
    assert equivalent("import contextlib\n" + body, tmp_path, 1) is not None


def test_a_default_kept_when_a_with_suppresses_the_assignment(tmp_path: Path) -> None:
    """`x = default; with suppress(KeyError): x = d[k]`: when the lookup
    raises, x keeps its default after the with, so x is live at an await
    before it (the with's body assigning x does not make it dead there)."""
    body = (
        'x = "default"\nd = {}\nawait step("a")\n'
        "with contextlib.suppress(KeyError):\n    x = d[a]\n"
        'return x, await step("b")\n'
    )
    assert equivalent("import contextlib\n" + body, tmp_path, 1)[0] == "default"  # type: ignore[index]
