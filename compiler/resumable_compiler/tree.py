"""The children of libcst nodes, each list computed once.

    children(node)  ->  (decorators, params, body, ...) in source order

libcst computes `node.children` afresh at every call, by running a visitor
over the node's fields; the passes ask for the same nodes' children many
times (liveness walks each state's statements at every round of its fixed
point). Nodes are immutable, so a computed list stays right: it is kept in
a table keyed by the node itself (identity; a strong reference, so an id is
never reused). `build.compile_source` empties the table after each module
(`forget`), and it is emptied when it grows past `LIMIT` entries, for
callers that run the passes themselves.
"""

from __future__ import annotations

import libcst as cst

__all__ = ["LIMIT", "children", "forget"]

#: Entries kept at most before the table is emptied.
LIMIT = 1_000_000

_children: dict[cst.CSTNode, tuple[cst.CSTNode, ...]] = {}


def children(node: cst.CSTNode) -> tuple[cst.CSTNode, ...]:
    """`node.children`, as a tuple, computed once per node."""
    found = _children.get(node)
    if found is None:
        if len(_children) >= LIMIT:
            _children.clear()
        found = _children[node] = tuple(node.children)
    return found


def forget() -> None:
    """Empty the table (the nodes it holds may be freed)."""
    _children.clear()
