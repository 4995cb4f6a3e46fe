"""docs/semantics.md's table of constructs ("Construct by construct") against
Python's own `ast`:

    test_every_node_kind_is_in_the_table    each statement, expression, pattern,
                                            handler and part kind of `ast` is a
                                            row (fails for a kind a new Python adds)
    test_the_table_names_only_node_kinds    no typos in the `ast` node column
    test_rows_are_well_formed               five cells, a known status
    test_the_tests_a_row_names_exist        every file, function, case and test
                                            id in the tests column exists

and the checks of the rows whose tests are here (the positions no other test
shows).
"""

from __future__ import annotations

import _ast
import ast
import fnmatch
import importlib.util
import re
import sys
import textwrap
from pathlib import Path

import pytest

from resumable import Function
from resumable.testing import assert_equivalent
from resumable_compiler.build import compile_file, compile_source

TESTS = Path(__file__).parent
DOCS = TESTS.parent / "docs" / "semantics.md"
SECTION = "## Construct by construct"
STATUSES = ("supported", "deviation (", "rejected (E", "bug", "n/a")

#: Families of `ast` nodes whose kinds appear in a function body, one row or more each.
FAMILIES = (ast.stmt, ast.expr, ast.pattern, ast.excepthandler)
#: Single kinds that are parts of those.
PARTS = (ast.comprehension, ast.arguments, ast.arg, ast.keyword, ast.alias, ast.withitem,
         ast.match_case)  # fmt: skip
#: Families covered by the rows of the nodes using them (they hold no
#: expressions), or not in a function body (`mod`, `type_ignore`).
COVERED = (ast.expr_context, ast.boolop, ast.operator, ast.unaryop, ast.cmpop, ast.mod,
           ast.type_ignore)  # fmt: skip
#: Node classes of the interpreter; `ast.Num`, `ast.Index`, `ast.slice` and the
#: other deprecated aliases are defined only in ast.py.
REAL = {v for v in vars(_ast).values() if isinstance(v, type) and issubclass(v, ast.AST)}


def _subclasses(cls: type) -> set[type]:
    out: set[type] = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


def node_kinds() -> set[str]:
    kinds = {c for family in FAMILIES for c in _subclasses(family)} | set(PARTS)
    return {c.__name__ for c in kinds if c in REAL}


def rows() -> list[list[str]]:
    text = DOCS.read_text(encoding="utf-8")
    assert SECTION in text, f"{DOCS.name} has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    assert lines and lines[0].startswith("| `ast` node |"), "the table's header moved"
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[1:]]


def listed() -> set[str]:
    return {name for row in rows() for name in re.findall(r"`(\w+)`", row[0])}


def test_every_family_of_nodes_is_accounted_for() -> None:
    """A new family of nodes (3.12's `type_param`) needs a decision here."""
    families = {c for c in ast.AST.__subclasses__() if c in REAL}
    assert families == set(FAMILIES) | set(PARTS) | set(COVERED)


def test_every_node_kind_is_in_the_table() -> None:
    missing = sorted(node_kinds() - listed())
    assert not missing, f"docs/semantics.md ({SECTION[3:]}) lists no row for {missing}"


def test_the_table_names_only_node_kinds() -> None:
    unknown = sorted(listed() - node_kinds())
    assert not unknown, f"not `ast` node kinds of a function body: {unknown}"


def test_rows_are_well_formed() -> None:
    for row in rows():
        assert len(row) == 5, row
        assert row[2].startswith(STATUSES), f"unknown status {row[2]!r} in {row}"
        assert re.fullmatch(r"(`\w+`(, )?)+", row[0]), f"the node column of {row}"


def _names_in(path: Path) -> set[str]:
    """Functions, test ids and lowering case names defined in a test file."""
    text = path.read_text(encoding="utf-8")
    return set(re.findall(r'(?:def |id="|\[case )([\w\-]+)', text))


def test_the_tests_a_row_names_exist() -> None:
    """`cases/x.py` f, g*; `test_y.py` test_z; `lowering/w.test` caseName."""
    for row in rows():
        for segment in filter(None, (s.strip() for s in row[4].split(";"))):
            found = re.fullmatch(r"`([\w/.]+)`(.*)", segment)
            assert found, f"a tests segment names no file: {segment!r} in {row}"
            path = TESTS / found.group(1)
            assert path.is_file(), f"no such test file {path} ({row})"
            names = _names_in(path)
            for name in filter(None, (n.strip() for n in found.group(2).split(","))):
                assert fnmatch.filter(names, name), f"{path.name} has no {name} ({row})"


# -- the rows shown here ----------------------------------------------------------------------


PRELUDE = "import resumable\nfrom resumable.testing import step\n\nG = None\n\n\n"


def module(body: str) -> str:
    return f"{PRELUDE}@resumable.function\nasync def f(a):\n" + textwrap.indent(
        textwrap.dedent(body), "    "
    )


def codes_of(body: str) -> list[str]:
    text, _, errors = compile_source("mod.py", module(body))
    assert errors or text is not None
    return [e.code for e in errors]


def load(source: str, folder: Path, name: str) -> Function:
    path = folder / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    result = compile_file(str(path))
    assert not result.errors, "\n".join(str(e) for e in result.errors)
    spec = importlib.util.spec_from_file_location(f"constructs_{name}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    fn = mod.f
    assert isinstance(fn, Function)
    return fn


@pytest.mark.parametrize("keyword", ["except", "except*"])
def test_except_as_a_global_name(keyword: str, tmp_path: Path) -> None:
    body = f"""\
        global G
        try:
            await step("a")
            raise ValueError(a)
        {keyword} ValueError as G:
            x = repr(G) + str(await step("b"))
        return x, "G" in globals()  # bound in the handler, then deleted, as in CPython
        """
    fn = load(module(body), tmp_path, "except_as_global" + keyword[6:].replace("*", "_star"))
    assert_equivalent(fn, 1)


def test_await_in_an_except_star_type(tmp_path: Path) -> None:
    body = """\
        out = []
        try:
            raise ExceptionGroup("g", [ValueError(a), KeyError(a)])
        except* (await step("t") and ValueError) as e:
            out.append(repr(e))
        except* KeyError:
            out.append("k")
        return out
        """
    fn = load(module(body), tmp_path, "except_star_type")
    assert_equivalent(fn, 1)


def test_nested_async_def(tmp_path: Path) -> None:
    assert codes_of("async def h(x: (await step('a'))):\n    pass\n") == ["E12"]
    assert codes_of("async def h() -> (await step('a')):\n    pass\n") == ["E12"]
    # Its header runs where it stands; its own awaits are not the function's.
    body = """\
        async def h(x=await step("d")):
            return x + await step("h")
        return await h() + await h(1)
        """
    fn = load(module(body), tmp_path, "nested_async_def")
    assert_equivalent(fn, 1)


def test_await_in_a_class_keyword(tmp_path: Path) -> None:
    body = """\
        class C(metaclass=(await step("m") and type)):
            pass
        return C.__name__
        """
    fn = load(module(body), tmp_path, "class_keyword")
    assert_equivalent(fn, 1)


def test_await_in_an_async_with_target() -> None:
    assert codes_of("d = {}\nasync with m as d[await step('k')]:\n    pass\n") == ["E12"]
