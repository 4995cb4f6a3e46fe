"""Every construct the compiler rejects: its error code, position, message and fix.

Each rejected case also checks that no generated module text comes out: a bad
construct must be an error, never a silent miscompile. Valid neighbors of each
rejected construct must compile.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from resumable.errors import CompileError
from resumable_compiler.build import compile_file, compile_source

HEADER = """\
import inspect
import sys

import resumable


@resumable.function
async def f(xs, d, k):
"""


def in_function(body: str) -> str:
    """A module whose decorated `f(xs, d, k)` has `body` as its body."""
    return HEADER + textwrap.indent(textwrap.dedent(body), "    ")


def position(source: str, at: str) -> tuple[int, int]:
    """(1-based line, 0-based column) of the first occurrence of `at`."""
    index = source.index(at)
    line = source.count("\n", 0, index) + 1
    return line, index - (source.rfind("\n", 0, index) + 1)


def errors_of(source: str) -> list[CompileError]:
    text, _, errors = compile_source("mod.py", source)
    assert errors, "compiled without errors"
    assert text is None, "a module with errors must not produce generated code"
    return errors


def assert_error(
    error: CompileError, source: str, code: str, at: str, words: tuple[str, ...]
) -> None:
    line, column = position(source, at)
    assert (error.code, error.line, error.column) == (code, line, column), str(error)
    assert error.path == "mod.py"
    assert error.source_line.rstrip("\n") == source.splitlines()[line - 1]
    assert error.message and error.fix and error.construct
    for word in words:
        assert word.lower() in error.message.lower(), (word, error.message)
    assert str(error).startswith(f"mod.py:{line}:{column + 1}: error[{code}]: {error.message}")
    assert str(error).endswith(f"fix: {error.fix}")


# (code, function body, where the error points, words the message must contain)
FUNCTION_ERRORS = [
    # E01: async generators
    pytest.param("E01", "yield 1", "yield", ("yield",), id="E01-yield"),
    pytest.param("E01", "await g()\nx = yield", "yield", ("yield",), id="E01-yield-expr"),
    # E02: await in a generator expression
    pytest.param(
        "E02",
        "return sum(await g(x) for x in xs)",
        "await g(x) for",
        ("generator expression",),
        id="E02-genexp",
    ),
    pytest.param(
        "E02",
        "return list(x for x in xs if await g(x))",
        "x for x",
        ("generator expression",),
        id="E02-genexp-condition",
    ),
    pytest.param(
        "E02",
        "return list(x async for x in g())",
        "x async for",
        ("generator expression",),
        id="E02-genexp-async-for",
    ),
    pytest.param(
        "E02",
        "return [sum(await g(y) for y in x) for x in xs]",
        "await g(y) for",
        ("generator expression",),
        id="E02-genexp-inside-listcomp",
    ),
    # E03: frame access
    pytest.param("E03", "await g()\nreturn locals()", "locals()", ("locals()",), id="E03-locals"),
    pytest.param("E03", "return vars()", "vars()", ("vars()",), id="E03-vars"),
    pytest.param("E03", "return dir()", "dir()", ("dir()",), id="E03-dir"),
    pytest.param("E03", "return eval('xs')", "eval(", ("eval()", "namespace"), id="E03-eval"),
    pytest.param("E03", "exec('y = 1')", "exec(", ("exec()", "namespace"), id="E03-exec"),
    pytest.param(
        "E03", "return sys._getframe()", "sys._getframe", ("sys._getframe()",), id="E03-getframe"
    ),
    pytest.param(
        "E03",
        "return inspect.currentframe()",
        "inspect.currentframe",
        ("inspect.currentframe()",),
        id="E03-currentframe",
    ),
    pytest.param(
        "E03", "return super().x", "super()", ("super()", "outside a method"), id="E03-super"
    ),
    pytest.param(
        "E03", "return __class__", "__class__", ("__class__", "not a method"), id="E03-__class__"
    ),
    # E05: a class defined in the function, live across an await
    pytest.param(
        "E05",
        "class K:\n    pass\nawait g()\nreturn K()",
        "K:",
        ("`K`", "class", "line 11"),
        id="E05-class",
    ),
    pytest.param(
        "E05",
        "class K:\n    y = k\nfor x in xs:\n    await g(K.y)",
        "K:",
        ("`K`", "class", "line 12"),
        id="E05-class-in-loop",
    ),
    # E08: a for-loop over a generator expression whose body awaits
    pytest.param(
        "E08",
        "for x in (y for y in xs):\n    await g(x)",
        "y for y",
        ("generator expression",),
        id="E08-for-genexp",
    ),
    pytest.param(
        "E08",
        "for x in (y for y in xs):\n    pass\nelse:\n    await g()",
        "y for y",
        ("generator expression",),
        id="E08-for-genexp-else",
    ),
    # E09: async comprehensions
    # E14: a lambda over the variables of a comprehension that awaits
    pytest.param(
        "E14",
        "return [(await g(x), lambda: x) for x in xs]",
        "lambda: x",
        ("lambda", "comprehension", "`x`"),
        id="E14-lambda-in-comprehension-that-awaits",
    ),
    # E12: await in positions the lowering does not support
    pytest.param(
        "E12",
        "def h(x: await g()):\n    return x\nreturn h(1)",
        "def h",
        ("annotations",),
        id="E12-def-annotation",
    ),
    pytest.param(
        "E12",
        "@deco\ndef h() -> (await g()):\n    pass",
        "def h",
        ("annotations",),
        id="E12-def-return-annotation",
    ),
    pytest.param(
        "E12",
        "with open('a') as (await g()).x:\n    pass",
        " as (await g()).x",
        ("`with ... as` target",),
        id="E12-with-as-target",
    ),
    pytest.param(
        "E12",
        "return [1 for (await g()).a in xs]",
        "(await g()).a",
        ("comprehension", "target"),
        id="E12-comprehension-target",
    ),
    # E13: dunder local names (reported at the first occurrence of the name)
    pytest.param("E13", "__foo__ = 1\nreturn __foo__", "__foo__", ("`__foo__`",), id="E13-assign"),
    pytest.param(
        "E13", "for __x__ in xs:\n    await g()", "__x__", ("`__x__`",), id="E13-for-target"
    ),
    pytest.param(
        "E13",
        "try:\n    await g()\nexcept Exception as __e__:\n    pass",
        "__e__",
        ("`__e__`",),
        id="E13-except-name",
    ),
]


@pytest.mark.parametrize(("code", "body", "at", "words"), FUNCTION_ERRORS)
def test_rejected_in_function(code: str, body: str, at: str, words: tuple[str, ...]) -> None:
    source = in_function(body)
    [error] = errors_of(source)
    assert_error(error, source, code, at, words)


SPELLINGS = [
    pytest.param("import resumable", "@resumable.function", id="resumable.function"),
    pytest.param("import resumable", "@resumable.function(retry=None)", id="resumable.function()"),
    pytest.param("import resumable as r", "@r.function", id="r.function"),
    pytest.param("import resumable as r", "@r.function(retry=None)", id="r.function()"),
    pytest.param("from resumable import function", "@function", id="function"),
    pytest.param("from resumable import function as rf", "@rf", id="rf"),
    pytest.param("from resumable import function as rf", "@rf(retry=None)", id="rf()"),
    pytest.param("import os, resumable", "@resumable.function", id="import-list"),
]

# (module text with {imports} and {decorator}, where the error points, message words)
MISPLACED = [
    pytest.param(
        "{imports}\n\n\ndef outer():\n    {decorator}\n    async def f():\n        pass\n",
        "f():",
        ("`outer.f`", "module-level"),
        id="nested",
    ),
    pytest.param(
        "{imports}\n\n\ndef outer():\n    class C:\n        {decorator}\n"
        "        async def f(self):\n            pass\n",
        "f(self)",
        ("`outer.C.f`", "method of class `C`", "inside function `outer`", "module-level"),
        id="method-of-a-local-class",
    ),
    pytest.param(
        "{imports}\n\n\nclass C:\n    def outer(self):\n        {decorator}\n"
        "        async def f():\n            pass\n",
        "f():",
        ("`C.outer.f`", "inside function `outer`", "module-level"),
        id="nested-in-a-method",
    ),
    pytest.param(
        "{imports}\n\n\nclass C:\n    {decorator}\n    def f(self):\n        pass\n",
        "f(self)",
        ("`C.f`", "async def"),
        id="method-not-async",
    ),
    pytest.param(
        "{imports}\n\n\n{decorator}\ndef f():\n    pass\n",
        "f():",
        ("`f`", "async def"),
        id="not-async",
    ),
]


@pytest.mark.parametrize(("imports", "decorator"), SPELLINGS)
@pytest.mark.parametrize(("template", "at", "words"), MISPLACED)
def test_e04_misplaced_decorator(
    imports: str, decorator: str, template: str, at: str, words: tuple[str, ...]
) -> None:
    source = template.format(imports=imports, decorator=decorator)
    [error] = errors_of(source)
    assert_error(error, source, "E04", at, words)


def test_e05_names_a_class_of_a_method_by_its_mangled_variable() -> None:
    source = (
        "import resumable\n\n\nclass C:\n    @resumable.function\n    async def m(self):\n"
        "        class __K:\n            pass\n        await g()\n        return __K()\n"
    )
    [error] = errors_of(source)
    assert (error.code, (error.line, error.column)) == ("E05", position(source, "__K:"))
    assert "`_C__K`" in error.message


@pytest.mark.parametrize(("imports", "decorator"), SPELLINGS)
def test_every_spelling_is_recognized(imports: str, decorator: str) -> None:
    source = f"{imports}\n\n\n{decorator}\nasync def f(x):\n    y = await g(x)\n    return y\n"
    text, count, errors = compile_source("mod.py", source)
    assert errors == []
    assert count == 1
    assert text is not None and "class f(Machine):" in text
    # ... and invalid code under that spelling is rejected, not skipped.
    bad = f"{imports}\n\n\n{decorator}\nasync def f(x):\n    yield x\n"
    assert [e.code for e in errors_of(bad)] == ["E01"]


@pytest.mark.parametrize(
    ("source", "at", "words"),
    [
        pytest.param(
            "import resumable\n\n\n@resumable.function\nasync def f(__x__):\n    return __x__\n",
            "__x__",
            ("`__x__`",),
            id="E13-parameter",
        ),
    ],
)
def test_rejected_in_module(source: str, at: str, words: tuple[str, ...]) -> None:
    [error] = errors_of(source)
    assert_error(error, source, "E13", at, words)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("x = (\n", id="unclosed-paren"),
        pytest.param("import resumable\n\ndef f(:\n    pass\n", id="invalid-syntax"),
        pytest.param("def f():\n\tif 1:\n        pass\n", id="tabs-and-spaces"),
        pytest.param("async def f():\n    return [x async for x in y\n", id="unclosed-bracket"),
        pytest.param("import resumable\nx = 1 +\n", id="incomplete-expression"),
        pytest.param("def f():\n    nonlocal x\n", id="symtable-error"),
    ],
)
def test_e00_syntax_error_is_cpythons(source: str) -> None:
    with pytest.raises(SyntaxError) as info:
        compile(source, "mod.py", "exec")
    [error] = errors_of(source)
    assert error.code == "E00"
    assert error.message == info.value.msg
    assert (error.line, error.column) == (info.value.lineno, (info.value.offset or 1) - 1)
    assert error.fix


def test_e00_position_and_format() -> None:
    [error] = errors_of("import resumable\nx = (\n")
    assert (error.line, error.column) == (2, 4)
    assert str(error) == (
        "mod.py:2:5: error[E00]: '(' was never closed\n"
        "    x = (\n"
        "        ^\n"
        "  fix: fix the syntax error; the file is not valid Python"
    )


# Valid neighbors of rejected constructs: each must compile.
ACCEPTED = [
    pytest.param("return [x for x in await g(xs)]", id="listcomp-await-in-outermost-iterable"),
    pytest.param("return {x for x in await g(xs)}", id="setcomp-await-in-outermost-iterable"),
    pytest.param("return {x: 1 for x in await g(xs)}", id="dictcomp-await-in-outermost-iterable"),
    pytest.param("return sum(x for x in await g(xs))", id="genexp-await-in-outermost-iterable"),
    pytest.param("return [[y for y in x] for x in await g(xs)]", id="nested-comp-outer-await"),
    pytest.param("return [await g(x) for x in xs]", id="listcomp-await-in-element"),
    pytest.param("return {await g(x) for x in xs}", id="setcomp-await-in-element"),
    pytest.param("return {x: await g(x) for x in xs}", id="dictcomp-await-in-value"),
    pytest.param("return [x for x in xs if await g(x)]", id="listcomp-await-in-condition"),
    pytest.param("return [y for x in xs for y in await g(x)]", id="listcomp-await-inner-iterable"),
    pytest.param(
        "return [[await g(y) for y in x] for x in xs]", id="listcomp-await-in-nested-listcomp"
    ),
    pytest.param(
        "return [(await g(x), lambda x=x: x) for x in xs]", id="lambda-default-in-comprehension"
    ),
    pytest.param("return [(await g(x), lambda y: y) for x in xs]", id="lambda-own-parameter"),
    pytest.param(
        "return [await g(x) + sum(y * x for y in xs) for x in xs]",
        id="genexp-inside-comprehension-that-awaits",
    ),
    pytest.param("match xs:\n    case [a]:\n        await g(a)", id="match-await-in-case-body"),
    pytest.param("match await g():\n    case 1:\n        pass", id="match-await-in-subject"),
    pytest.param("match xs:\n    case [a] if await g(a):\n        pass", id="match-await-in-guard"),
    pytest.param("await g()\nreturn dir(xs), vars(d)", id="dir-vars-with-argument"),
    pytest.param("await g()\nreturn eval('xs', {'xs': xs})", id="eval-with-namespace"),
    pytest.param("exec('y = 1', {})\nawait g()", id="exec-with-namespace"),
    pytest.param("await g()\nreturn super(int, 1)", id="super-with-arguments"),
    pytest.param("h = lambda: locals()\nawait g()", id="locals-inside-lambda"),
    pytest.param("def h():\n    yield 1\nreturn list(h()) + [await g()]", id="yield-in-nested-def"),
    pytest.param("async def h():\n    await g()\nreturn await g()", id="await-in-nested-def"),
    pytest.param("h = lambda x: x\nh(1)\nawait g()", id="lambda-dead-before-await"),
    # Closures (E11 and the function values of E05, retired): stored by their definition.
    pytest.param("h = lambda x: x + k\nreturn h(1)", id="lambda-reads-local"),
    pytest.param("def h():\n    return k\nreturn h()", id="def-reads-local"),
    pytest.param("def h():\n    nonlocal k\n    k = 1\nh()", id="def-writes-nonlocal"),
    pytest.param("class C:\n    y = k\nreturn C", id="class-reads-local"),
    pytest.param("def h(x):\n    return x\nawait g()\nreturn h(1)", id="def-live-across-await"),
    pytest.param("h = lambda x: x + k\nawait g()\nreturn h(1)", id="lambda-live-across-await"),
    pytest.param("class C:\n    y = k\nv = C.y\nawait g()\nreturn v", id="class-dead-at-await"),
    # Awaits in a definition's header (E12 before): lowered where it stands.
    pytest.param("def h(x=await g()):\n    return x\nreturn h()", id="def-default-awaits"),
    pytest.param("@(await g())\ndef h():\n    pass", id="def-decorator-awaits"),
    pytest.param("h = (lambda x=await g(): x)\nreturn h()", id="lambda-default-awaits"),
    pytest.param("class C(await g()):\n    pass", id="class-base-awaits"),
    pytest.param("await g()\nh = lambda x: x\nreturn h(1)", id="lambda-after-await"),
    pytest.param("def h(x=k):\n    return x\nawait g()", id="def-default-reads-local"),
    pytest.param(
        "h = lambda x, k=k: x + k\nreturn h(1) + await g()", id="lambda-default-reads-local"
    ),
    pytest.param("with await g() as x:\n    pass", id="await-in-first-with-item"),
    pytest.param("with open('x') as fh:\n    pass\nawait g()", id="with-without-await"),
    # E06 retired: `with` blocks that await, `async with`, `async for`
    pytest.param("with open('x') as fh:\n    await g(fh)", id="with-body-awaits"),
    pytest.param("with open('a'), await g():\n    pass", id="await-in-later-with-item"),
    pytest.param("async with g() as x:\n    pass", id="async-with"),
    pytest.param("async with g() as x, g() as (y, z):\n    await g(x, y)", id="async-with-items"),
    pytest.param("async for x in g():\n    pass", id="async-for"),
    pytest.param(
        "async for x in g():\n    await g(x)\n    break\nelse:\n    pass", id="async-for-else"
    ),
    pytest.param("for x in (y for y in xs):\n    print(x)\nawait g()", id="for-genexp-no-await"),
    pytest.param("for x in (y for y in await g()):\n    print(x)", id="for-genexp-await-in-iter"),
    pytest.param("match xs:\n    case [a]:\n        pass\nawait g()", id="match-without-await"),
    pytest.param(
        "try:\n    pass\nexcept* ValueError:\n    pass\nawait g()", id="try-star-without-await"
    ),
    pytest.param("return f'{await g()!r:>10}'", id="fstring-await-outside-format-spec"),
    pytest.param("global G\nG = await g()", id="global"),
    pytest.param("x: int = await g()\nreturn x", id="annotated-assignment"),
    pytest.param("return __name__, await g()", id="reads-module-dunder"),
]


@pytest.mark.parametrize("body", ACCEPTED)
def test_accepted(body: str) -> None:
    source = in_function(body)
    text, count, errors = compile_source("mod.py", source)
    assert errors == [], "\n".join(map(str, errors))
    assert count == 1
    assert text is not None
    compile(text, "generated.py", "exec")


def test_all_errors_of_one_function_are_reported_sorted() -> None:
    source = in_function(
        """\
        x = yield 1
        async with g() as (await h()).y:
            pass
        y = locals()
        """
    )
    errors = errors_of(source)
    assert [e.code for e in errors] == ["E01", "E12", "E03"]
    assert [(e.line, e.column) for e in errors] == [
        position(source, "yield"),
        position(source, " as (await h()).y"),
        position(source, "locals()"),
    ]


MANY_FUNCTIONS = """\
import resumable


@resumable.function
async def a(xs):
    return [x async for x in g(xs)]


@resumable.function
async def ok(x):
    return await g(x)


@resumable.function
async def b():
    class H:
        pass
    await g()
    return H()


@resumable.function
async def c():
    yield 1
"""


def test_errors_in_one_function_do_not_hide_errors_in_another() -> None:
    text, count, errors = compile_source("mod.py", MANY_FUNCTIONS)
    assert text is None
    assert count == 4
    found = [(e.code, e.line, e.column) for e in errors]  # the async comprehension compiles
    expected = [
        ("E05", *position(MANY_FUNCTIONS, "H:")),
        ("E01", *position(MANY_FUNCTIONS, "yield")),
    ]
    assert sorted(found) == sorted(expected)


def test_errors_across_functions_are_sorted_by_position() -> None:
    source = (
        "import resumable\n\n\n@resumable.function\nasync def a():\n    yield 1\n\n\n"
        "@resumable.function\ndef b():\n    pass\n"
    )
    errors = errors_of(source)
    assert [e.code for e in errors] == ["E01", "E04"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("await g()\nreturn eval('xs', None)", id="eval-globals-None"),
        pytest.param("await g()\nexec('print(xs)', None, None)", id="exec-globals-None"),
    ],
)
def test_eval_with_none_namespace_is_rejected(body: str) -> None:
    [error] = errors_of(in_function(body))
    assert error.code == "E03"


def test_await_in_with_target_is_e12() -> None:
    [error] = errors_of(in_function("with open('a') as d[await g()]:\n    pass"))
    assert error.code == "E12"


def test_e05_column_of_a_class_named_like_a_keyword_letter() -> None:
    source = in_function("class s:\n    pass\nawait g()\nreturn s()")
    [error] = errors_of(source)
    assert (error.line, error.column) == position(source, "s:")


def test_e05_points_at_the_first_binding_of_the_class() -> None:
    source = in_function("class H:\n    a = 1\nawait g()\nH()\nclass H:\n    a = 2\nreturn H()")
    [error] = errors_of(source)
    assert (error.line, error.column) == position(source, "H:")


# -- which functions are compiled at all ------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("x = 1\n", id="plain"),
        pytest.param("import resumable\n\n\nasync def f():\n    yield 1\n", id="undecorated"),
        pytest.param(
            "import other\n\n\n@other.function\nasync def f():\n    yield 1\n",
            id="other-module-function",
        ),
        pytest.param(
            "from mylib import function\n\n\n@function\nasync def f():\n    yield 1\n",
            id="function-from-elsewhere",
        ),
        pytest.param(
            "import resumable\n\n\n@resumable.other\nasync def f():\n    yield 1\n",
            id="other-attribute",
        ),
        pytest.param(
            "import resumable\n\n\nclass C:\n    async def m(self):\n        return locals()\n",
            id="undecorated-method",
        ),
    ],
)
def test_undecorated_code_is_not_touched(tmp_path: Path, source: str) -> None:
    path = tmp_path / "mod.py"
    path.write_text(source)
    result = compile_file(str(path))
    assert (result.status, result.functions, result.errors) == ("none", 0, [])
    assert not (tmp_path / "__resumable__").exists()
    assert compile_source("mod.py", source) == (None, 0, [])


def test_decorated_functions_in_module_level_blocks_are_found(tmp_path: Path) -> None:
    path = tmp_path / "mod.py"
    path.write_text(
        textwrap.dedent(
            """\
            from typing import TYPE_CHECKING

            try:
                import resumable as r
            except ImportError:
                r = None

            if TYPE_CHECKING:
                pass
            else:

                @r.function
                async def in_else(x):
                    return await g(x)

            try:

                @r.function
                async def in_try(x):
                    return await g(x)

            except NameError:
                pass
            """
        )
    )
    result = compile_file(str(path))
    assert (result.status, result.functions, result.errors) == ("written", 2, [])
    text = Path(result.output).read_text()
    assert "class in_else(Machine):" in text
    assert "class in_try(Machine):" in text


def test_bad_function_in_module_level_block_is_rejected() -> None:
    source = "import resumable\n\nif True:\n\n    @resumable.function\n    async def f():\n        yield 1\n"
    [error] = errors_of(source)
    assert (error.code, error.line, error.column) == ("E01", *position(source, "yield"))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("h = lambda: await g()\nreturn h", id="await-in-lambda"),
        pytest.param("def h():\n    await g()\nreturn h", id="await-in-nested-def"),
        pytest.param("break", id="break-outside-loop"),
    ],
)
def test_compile_time_syntax_errors_are_e00(body: str) -> None:
    source = in_function(body)
    with pytest.raises(SyntaxError) as info:
        compile(source, "mod.py", "exec")
    [error] = errors_of(source)
    assert (error.code, error.message, error.line) == ("E00", info.value.msg, info.value.lineno)


def test_docs_table_lists_the_registry() -> None:
    """docs/semantics.md's table of codes is the registry's: same codes, same
    summaries and fixes, in order."""
    import re
    from pathlib import Path

    from resumable_compiler.codes import CODES

    docs = (Path(__file__).parent.parent / "docs" / "semantics.md").read_text()
    rows = re.findall(r"^\| (E\d\d) \| (.*) \| (.*) \|$", docs, re.M)
    table = [(code, summary, fix) for code, summary, fix in rows]
    assert table == [
        (c.code, f"retired: {c.summary}" if c.retired else c.summary, c.fix) for c in CODES
    ]
