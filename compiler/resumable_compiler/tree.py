"""The children of libcst nodes, each list computed once.

    children(node)  ->  (decorators, params, body, ...) in source order

libcst computes `node.children` afresh at every call, by running a visitor
over the node's fields; the passes ask for the same nodes' children many
times (liveness walks each state's statements at every round of its fixed
point). Nodes are immutable, so a computed list stays right: it is kept in
a table keyed by the node itself (identity; a strong reference, so an id is
never reused). `build.compile_source` empties the table after each module
(`forget`), and it is emptied when it grows past `LIMIT` entries, for
callers that run the passes themselves. Other passes keep their own facts
about nodes the same way (`table`: fingerprint.canonical's texts).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import libcst as cst

__all__ = ["LIMIT", "children", "field_names", "forget", "table"]

#: Entries kept at most before the table is emptied.
LIMIT = 1_000_000

_children: dict[cst.CSTNode, tuple[cst.CSTNode, ...]] = {}
#: Tables of other passes keyed by nodes, emptied with this one (`table`).
_tables: list[dict[Any, Any]] = [_children]


def children(node: cst.CSTNode) -> tuple[cst.CSTNode, ...]:
    """`node.children`, as a tuple, computed once per node."""
    found = _children.get(node)
    if found is None:
        if len(_children) >= LIMIT:
            forget()
        found = _children[node] = tuple(node.children)
    return found


@functools.cache
def field_names(kind: type[cst.CSTNode]) -> tuple[str, ...]:
    """The names of a kind of node's fields (libcst nodes are dataclasses)."""
    return tuple(f.name for f in dataclasses.fields(kind))


def table() -> dict[Any, Any]:
    """A new table of facts about nodes, emptied by `forget`."""
    new: dict[Any, Any] = {}
    _tables.append(new)
    return new


def forget() -> None:
    """Empty the tables (the nodes they hold may be freed)."""
    for t in _tables:
        t.clear()
