"""Build hash and run fingerprint: what changes them and what does not."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from resumable import __version__
from resumable.source import build_hash, function_block
from resumable_compiler.fingerprint import run_fingerprint

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
