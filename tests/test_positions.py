"""parse records positions only inside the top-level statements holding
decorated functions (parse._positions): each must be the one libcst's
PositionProvider gives for the whole module, whichever way it was found
(the statement's text found in the source, or the statements before it
rendered: a text found twice, a carriage return)."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from resumable_compiler.parse import _aliases, _Decorated, _positions, _positions_by_rendering

REPO = Path(__file__).resolve().parent.parent

FLOW = '''\
"""A module."""

import resumable

X = """
@resumable.function
async def f(a):
    return await g(a)
"""


class Plain:
    def m(self):
        return (1,
                2)
    # a comment at the end of the class


@resumable.function
async def f(a):
    # a comment
    return await g(a)


def outer():
    @resumable.function
    async def inner():
        pass


class Shop:
    @resumable.function
    async def buy(self, x):
        try:
            await g(x)
        except KeyError:
            pass
        finally:
            await g(2)
        return x  # trailing


@resumable.function
async def f(a):
    # a comment
    return await g(a)
'''

SOURCES = {
    "flow": FLOW,
    "crlf": FLOW.replace("\n", "\r\n"),
    "cr": FLOW.replace("\n", "\r"),
    "no-final-newline": FLOW.rstrip("\n"),
    "once": "async def h(a)".join(FLOW.rsplit("async def f(a)", 1)),
    "examples": (REPO / "examples" / "checkout.py").read_text(),
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_positions_are_libcsts(name: str) -> None:
    source = SOURCES[name]
    module = cst.parse_module(source)
    finder = _Decorated(*_aliases(module))
    finder.module(module)
    assert finder.tops
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    for found in (
        _positions(module, source, finder.tops),
        _positions_by_rendering(module, finder.tops),
    ):
        inside = [n for i in sorted(finder.tops) for n in _nodes(module.body[i])]
        assert set(found) == set(inside)
        assert all(found[n] == expected[n] for n in inside)


def _nodes(node: cst.CSTNode) -> list[cst.CSTNode]:
    out = [node]
    for child in node.children:
        out += _nodes(child)
    return out
