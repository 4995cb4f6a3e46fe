"""Build hash, run fingerprint and site fingerprints: what changes them and
what does not."""

from __future__ import annotations

import hashlib
import re
import textwrap
from typing import Any

import libcst as cst
import libcst.matchers as m
import pytest

from resumable import __version__
from resumable.source import build_hash, function_block
from resumable_compiler import fingerprint as fp
from resumable_compiler.analyze import analyze
from resumable_compiler.build import compile_source
from resumable_compiler.check import check
from resumable_compiler.fingerprint import run_fingerprint
from resumable_compiler.ir import Lowered
from resumable_compiler.liveness import liveness
from resumable_compiler.lower import lower
from resumable_compiler.parse import parse

from .conftest import case_path

BASE = """
    async def f(a, b=1):
        x = await g(a)  # fetch
        if x > b:
            return x + 1
        return (b)
"""

SAME = [
    pytest.param(
        """
        async def f(a, b = 1):
            # a comment
            x = await g( a )


            if (x > b):
                return x+1
            return b
        """,
        id="whitespace-comments-parentheses",
    ),
    pytest.param(
        """


        async def f(a, b=1):
            x = await g(a)
            if x > b:
                return x + 1
            return b
        """,
        id="moved-down",
    ),
    pytest.param(
        """
        async def f(a, b=1):
            x = await g(a)
            if x > b:
                return x + 1
            return b  # 'quotes' do not matter either
        """,
        id="trailing-comment",
    ),
]

DIFFERENT = [
    pytest.param(BASE.replace("x + 1", "x + 2"), id="constant"),
    pytest.param(BASE.replace("x > b", "x >= b"), id="operator"),
    pytest.param(BASE.replace("g(a)", "h(a)"), id="callee"),
    pytest.param(BASE.replace("b=1", "b=2"), id="default"),
    pytest.param(
        BASE.replace("x = await g(a)", "x = await g(a)\n        y = 0"), id="added-statement"
    ),
    pytest.param(
        """
        async def f(a, b=1):
            if (x := await g(a)) > b:
                return x + 1
            return b
        """,
        id="restructured",
    ),
]


def fingerprint(src: str) -> str:
    module = cst.parse_module(textwrap.dedent(src))
    [fn] = [n for n in module.body if isinstance(n, cst.FunctionDef)]
    return run_fingerprint(fn)


@pytest.mark.parametrize("src", SAME)
def test_run_fingerprint_ignores_formatting(src: str) -> None:
    assert fingerprint(src) == fingerprint(BASE)


@pytest.mark.parametrize("src", DIFFERENT)
def test_run_fingerprint_sees_changes(src: str) -> None:
    assert fingerprint(src) != fingerprint(BASE)


def test_string_quotes_are_normalized() -> None:
    assert fingerprint("async def f():\n    return 'a'\n") == fingerprint(
        'async def f():\n    return "a"\n'
    )
    assert fingerprint("async def f():\n    return 'a'\n") != fingerprint(
        "async def f():\n    return 'b'\n"
    )


def test_build_hash_is_the_exact_block_and_version() -> None:
    lines = textwrap.dedent(
        """
        import resumable

        @resumable.function
        async def f(a):
            return await g(a)

        x = 1
        """
    ).splitlines(keepends=True)
    block = function_block(lines, 4)
    assert block.startswith("@resumable.function\nasync def f(a):")
    assert "x = 1" not in block
    assert build_hash(block, __version__) == build_hash(block, __version__)
    assert build_hash(block, __version__) != build_hash(block.replace("g(a)", "g(a) "), __version__)
    assert build_hash(block, __version__) != build_hash(block, __version__ + ".post1")


# -- site fingerprints ------------------------------------------------------------

SITES = """
    import resumable


    async def g(v):
        return v


    @resumable.function
    async def f(a, b=1):
        x = await g(a)
        y = await g(x + b)
        if y > b:
            y = await g(y)
        return x + y
"""


def machine(src: str, name: str = "f") -> Any:
    """The generated class of `name` in module source `src`."""
    text, _, errors = compile_source("mod.py", textwrap.dedent(src))
    assert text is not None, errors
    namespace: dict[str, Any] = {}
    exec(compile(text, "<generated>", "exec"), namespace)
    return namespace["MACHINES"][name]


def sites(src: str) -> list[str]:
    """The site fingerprint of each await of `f`, by ordinal."""
    table = machine(src).sites
    assert sorted(ordinal for ordinal, _ in table.values()) == list(range(len(table)))
    return [p for _, p in sorted(table.values())]


def test_site_fingerprint_format() -> None:
    prints = sites(SITES)
    assert len(prints) == 3
    assert all(re.fullmatch(r"[0-9a-f]{12}\.[0-9a-f]{8}", p) for p in prints)
    assert len(set(prints)) == 3


SITES_SAME = [
    pytest.param(
        SITES.replace("return x + y", "print(x, y)\n        return x + y"), 3, id="statement-after"
    ),
    pytest.param(SITES.replace("g(y)", "g(y + 1)"), 2, id="later-operand"),
    pytest.param(
        """
        import resumable


        async def g(v):
            return v


        @resumable.function
        async def f(a, b = 1):
            # fetch
            x = await g( a )
            y = (await g((x + b)))  # again

            if (y > b):
                y = await g(y)
            return x+y
        """,
        3,
        id="reformatted-comments",
    ),
    pytest.param(
        SITES.replace("@resumable.function", "z = 1\n\n\n    @resumable.function"),
        3,
        id="moved-down",
    ),
]


@pytest.mark.parametrize(("src", "unchanged"), SITES_SAME)
def test_site_fingerprint_ignores_what_follows_and_formatting(src: str, unchanged: int) -> None:
    """The first `unchanged` awaits keep their site fingerprints."""
    assert sites(src)[:unchanged] == sites(SITES)[:unchanged]


SITES_DIFFERENT = [
    pytest.param(
        SITES.replace("x = await g(a)", "x = await g(a)\n        x += 1"), 1, id="statement-before"
    ),
    pytest.param(SITES.replace("g(x + b)", "g(x - b)"), 1, id="own-operand"),
    pytest.param(SITES.replace("y > b", "y >= b"), 2, id="enclosing-test"),
    pytest.param(SITES.replace("b=1", "b=2"), 0, id="parameter-default"),
    pytest.param(SITES.replace("(a, b=1)", "(a, b=1, c=2)"), 0, id="parameter-added"),
]


@pytest.mark.parametrize(("src", "first_changed"), SITES_DIFFERENT)
def test_site_fingerprint_sees_what_precedes(src: str, first_changed: int) -> None:
    """Awaits before `first_changed` keep their site fingerprints, the others change."""
    old, new = sites(SITES), sites(src)
    assert new[:first_changed] == old[:first_changed]
    assert all(o != n for o, n in zip(old[first_changed:], new[first_changed:], strict=True))


def test_site_fingerprint_sees_the_live_locals() -> None:
    """`a`, read at the end, becomes live at awaits 1 and 2 (it already is at
    await 0): only the second part of their fingerprints changes."""
    old, new = sites(SITES), sites(SITES.replace("return x + y", "return x + y + a"))
    assert new[0] == old[0]
    for o, n in zip(old[1:], new[1:], strict=True):
        assert o.split(".")[0] == n.split(".")[0]
        assert o.split(".")[1] != n.split(".")[1]


def test_live_part_hashes_the_sorted_live_locals_hidden_ones_included() -> None:
    cls = machine(
        """
        import resumable


        async def g(v):
            return v


        @resumable.function
        async def f(b, a):
            return len([a]) + await g(b) + await g(a)
        """
    )
    assert any(name in cls.hidden for _, live in cls.awaits.values() for name in live)
    for state, (_, site) in cls.sites.items():
        names = ",".join(sorted(cls.awaits[state][1]))
        assert site.split(".")[1] == hashlib.sha256(names.encode()).hexdigest()[:8]


def test_lowering_version_changes_every_site(monkeypatch: pytest.MonkeyPatch) -> None:
    module = cst.parse_module("async def f(a):\n    return await g(a) + await g(a)\n")
    fn = module.body[0]
    assert isinstance(fn, cst.FunctionDef)
    awaits = [(a, ("a",)) for a in fp.own_awaits(fn, {id(a) for a in m.findall(fn, m.Await())})]
    before = fp.site_fingerprints(fn, awaits)
    monkeypatch.setattr(fp, "LOWERING_VERSION", fp.LOWERING_VERSION + 1)
    after = fp.site_fingerprints(fn, awaits)
    assert len(set(before)) == 2
    assert all(b != a for b, a in zip(before, after, strict=True))


def test_awaits_of_nested_scopes_are_not_the_functions() -> None:
    cls = machine(
        """
        import resumable


        async def g(v):
            return v


        @resumable.function
        async def f(a):
            async def inner():
                return await g(1)

            ys = [y + 1 for y in await g([a])]  # the first iterable is f's
            return await g(ys)
        """
    )
    assert sorted(ordinal for ordinal, _ in cls.sites.values()) == [0, 1]


def lowered(case: str, name: str) -> Lowered:
    with open(case_path(case), encoding="utf-8") as f:
        parsed = parse(case_path(case), f.read())
    [fn] = [fn for fn in parsed.functions if fn.qualname == name]
    return check(liveness(lower(analyze(parsed, fn))))


def label(e: cst.BaseExpression) -> str | None:
    """ "x" of `step("x", ...)`."""
    if isinstance(e, cst.Call) and e.args and isinstance(e.args[0].value, cst.SimpleString):
        value = e.args[0].value.evaluated_value
        return value if isinstance(value, str) else None
    return None


@pytest.mark.parametrize(
    ("case", "name"),
    [
        ("control_flow", "while_else"),
        ("control_flow", "for_iterable_and_body_await"),
        ("exceptions", "try_all_blocks_await"),
        ("exceptions", "nested_try"),
        ("await_expressions", "binary_operators"),
        ("await_expressions", "comparison_all_awaits"),
    ],
)
def test_ordinals_are_the_awaits_in_source_order(case: str, name: str) -> None:
    """One await state per await of the source, its ordinal in source order,
    and it evaluates that await's operand."""
    machine = lowered(case, name)
    parsed, awaits = machine.analysis.parsed, machine.analysis.awaits
    assert len(awaits) == len(m.findall(machine.analysis.function.node, m.Await())) > 1
    positions = [parsed.position(a) for a in awaits]
    assert positions == sorted(positions)
    states = [s for s in machine.states if s.is_await]
    assert sorted(s.site for s in states if s.site is not None) == list(range(len(awaits)))
    for s in states:
        assert s.site is not None
        [line] = s.body
        assert isinstance(line, cst.SimpleStatementLine)
        returned = line.body[0]
        assert isinstance(returned, cst.Return) and returned.value is not None
        assert label(returned.value) == label(awaits[s.site].expression) is not None


COMPREHENSION = """
    import resumable


    async def g(v):
        return v


    @resumable.function
    async def f(xs):
        ys = [await g(x) for x in xs if x > 0]
        return ys, await g(ys)
"""

MATCH = """
    import resumable


    async def g(v):
        return v


    @resumable.function
    async def f(a):
        match a:
            case [x] if x > 0:
                y = await g(x)
            case _:
                y = 0
        return await g(y)
"""


@pytest.mark.parametrize(
    "src",
    [
        pytest.param(COMPREHENSION.replace("x > 0", "x > 1"), id="comprehension-condition"),
        pytest.param(COMPREHENSION.replace("in xs", "in xs[1:]"), id="comprehension-iterable"),
        pytest.param(MATCH.replace("x > 0", "x > 1"), id="case-guard"),
        pytest.param(MATCH.replace("[x]", "[x, *_]"), id="case-pattern"),
    ],
)
def test_site_fingerprint_sees_what_ran_before_the_await(src: str) -> None:
    """A comprehension runs its clauses before its element, and a case its
    pattern and guard before its body: a change to them changes the site of
    the await that follows, although it is written after it."""
    old = sites(COMPREHENSION if "ys =" in src else MATCH)
    assert all(o != n for o, n in zip(old, sites(src), strict=True))


def test_site_fingerprint_of_an_await_in_a_case_ignores_later_cases() -> None:
    old, new = sites(MATCH), sites(MATCH.replace("y = 0", "y = -1"))
    assert new[0] == old[0]
