"""Fingerprints embedded in generated code.

- build hash (resumable.source.build_hash): the function's exact source block
  and resumable's version; a different hash at run time means stale code.
- run fingerprint: a hash of the function's canonical form -- node types and
  names, literal values -- without comments, whitespace, parentheses or line
  numbers, so reformatting does not change it but any change to a statement
  or the order of statements does. It is computed from libcst's tree, not
  from `ast.dump` (whose output changes between Python versions).
- site fingerprint, one per await (implicit awaits of `async with` and
  `async for` included): the canonical form up to the end of that await, and
  the locals live at its checkpoint. A run checkpointed at an await
  may resume under changed code whose await of the same ordinal has the same
  site fingerprint: nothing before the await and no stored variable changed.
  "Before" is the order awaits run: the canonical form puts the clauses of a
  comprehension that awaits before its element, the guard of a case that
  awaits before its body, and the iterable of an `async for` before a
  target that awaits (`_fields`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections import Counter
from collections.abc import Collection, Iterable, Sequence

import libcst as cst

from . import tree
from .ir import AwaitSite, ImplicitAwait
from .tree import children

__all__ = ["LOWERING_VERSION", "canonical", "own_awaits", "run_fingerprint", "site_fingerprints"]

#: Part of every site fingerprint. Bump it whenever a change to the lowering
#: could change what hidden temporaries hold or how states resume: checkpoints
#: of older code then no longer resume under the new one.
LOWERING_VERSION = 1

_SKIPPED_FIELDS = {
    "lpar", "rpar", "leading_lines", "lines_after_decorators", "header", "footer",
    "comma", "semicolon", "indent", "newline", "trailing_whitespace", "empty_lines",
}  # fmt: skip
_WHITESPACE = (
    cst.BaseParenthesizableWhitespace,
    cst.EmptyLine,
    cst.TrailingWhitespace,
    cst.Comment,
    cst.Newline,
    cst.LeftParen,
    cst.RightParen,
)


class _Implicit:
    """Where an implicit await stands in the canonical text (see `canonical`)."""

    __slots__ = ("site",)

    def __init__(self, site: ImplicitAwait) -> None:
        self.site = site


def canonical(node: cst.CSTNode, sites: list[tuple[AwaitSite, int]] | None = None) -> str:
    """A formatting-independent text form of `node`. Given `sites`, every
    await in `node` is appended to it in source order, with the length of the
    text up to its end: an `await` expression where it starts (pre-order),
    with the end of its subtree; an implicit await (ir.ImplicitAwait) where
    the language reference's expansion awaits it: an `async with` item's
    `__aenter__` after the item's expression, its `__aexit__` after the whole
    statement (innermost item first), an `async for`'s (or an async
    comprehension's) `__anext__` after its iterable."""
    known = _canonical.get(node)
    if known is None:
        known = _canonical[node] = _canonical_text(node)
    if sites is not None:
        sites += known[1]
    return known[0]


#: node -> (its canonical text, its awaits): analyze, then render, ask for
#: the same function's body and parameters (tree.forget empties it).
_canonical: dict[cst.CSTNode, tuple[str, tuple[tuple[AwaitSite, int], ...]]] = tree.table()


def _canonical_text(node: cst.CSTNode) -> tuple[str, tuple[tuple[AwaitSite, int], ...]]:
    out: list[str] = []
    size = 0
    found: list[tuple[AwaitSite, int]] = []
    #: WithItems of `async with` statements being walked.
    async_items: set[int] = set()
    stack: list[object] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            size += len(item)
            continue
        if isinstance(item, int):  # the end of found[item]'s subtree
            found[item] = (found[item][0], size)
            continue
        if isinstance(item, _Implicit):
            found.append((item.site, size))
            continue
        if isinstance(item, cst.SimpleString):
            stack.append(f"SimpleString({item.evaluated_value!r})")
            continue
        assert isinstance(item, cst.CSTNode)
        if isinstance(item, cst.Await):
            found.append((item, -1))
            stack.append(len(found) - 1)
        # After a field's value: the implicit await that follows its evaluation.
        after: dict[str, ImplicitAwait] = {}
        if isinstance(item, cst.With) and item.asynchronous is not None:
            async_items.update(id(i) for i in item.items)
        elif isinstance(item, cst.WithItem) and id(item) in async_items:
            after["item"] = ImplicitAwait(item, "__aenter__")
        elif isinstance(item, cst.For | cst.CompFor) and item.asynchronous is not None:
            after["iter"] = ImplicitAwait(item, "__anext__")
        parts: list[object] = [type(item).__name__, "("]
        for f in _fields(item):
            if f.name in _SKIPPED_FIELDS or f.name.startswith("whitespace"):
                continue
            value = getattr(item, f.name)
            if isinstance(value, cst.CSTNode):
                if not isinstance(value, _WHITESPACE):
                    parts += [f.name, "=", value, " "]
                    if f.name in after:
                        parts.insert(len(parts) - 1, _Implicit(after[f.name]))
            elif isinstance(value, list | tuple):
                nodes = [
                    v
                    for v in value
                    if isinstance(v, cst.CSTNode) and not isinstance(v, _WHITESPACE)
                ]
                parts += [f.name, "=["]
                for v in nodes:
                    parts += [v, ","]
                parts.append("] ")
            elif isinstance(value, str | int | bool) or value is None:
                parts.append(f"{f.name}={value!r} ")
        parts.append(")")
        if isinstance(item, cst.With) and item.asynchronous is not None:
            parts += [_Implicit(ImplicitAwait(i, "__aexit__")) for i in reversed(item.items)]
        stack.extend(reversed(parts))
    return "".join(out), tuple(found)


@functools.cache
def _kind_fields(kind: type[cst.CSTNode]) -> tuple[dataclasses.Field[object], ...]:
    return dataclasses.fields(kind)


def _fields(item: cst.CSTNode) -> list[dataclasses.Field[object]]:
    """The fields of `item` in the order its awaits run: a comprehension that
    awaits past its first iterable runs its clauses before its element, a
    case whose guard or body awaits tests its guard before its body, and an
    `async for` whose target awaits gets its item before the target. (Only
    for those, which were refused before: the text of others, and so their
    fingerprints, stay as they were.)"""
    fields = list(_kind_fields(type(item)))
    first: tuple[str, ...] = ()
    if isinstance(item, cst.ListComp | cst.SetComp | cst.DictComp):
        if any(_has_await(c) for c in children(item) if c is not item.for_in) or _has_await(
            item.for_in, skip=item.for_in.iter
        ):
            first = ("for_in",)
    elif isinstance(item, cst.MatchCase) and _has_await(item):
        first = ("pattern", "guard")
    elif isinstance(item, cst.For) and item.asynchronous is not None and holds_await(item.target):
        first = ("iter",)  # each step awaits `__anext__`, then the target's awaits
    return sorted(fields, key=lambda f: first.index(f.name) if f.name in first else len(first))


def holds_await(node: cst.CSTNode) -> bool:
    """An await, or an async comprehension's `__anext__`, in `node`."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Await) or (isinstance(n, cst.CompFor) and n.asynchronous):
            return True
        stack.extend(children(n))
    return False


def _has_await(node: cst.CSTNode, skip: cst.CSTNode | None = None) -> bool:
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Await):
            return True
        stack.extend(c for c in children(n) if c is not skip)
    return False


def run_fingerprint(fn: cst.FunctionDef) -> str:
    """Fingerprint of a function's parameters and body (not its decorators)."""
    text = canonical(fn.params) + "\n" + canonical(fn.body)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def own_awaits(
    fn: cst.FunctionDef, awaiting: Collection[int], future_annotations: bool = False
) -> tuple[AwaitSite, ...]:
    """The function's awaits in the source order of `canonical`: a site's
    index is its ordinal, by which the runtime finds it again in changed
    code. Those of nested functions, lambdas and classes are not the
    function's: analyze left their `await` expressions out of `awaiting`,
    and their `async with` and `async for` are not walked; nor are those of
    annotations that are never evaluated (`_own_nodes`)."""
    sites: list[tuple[AwaitSite, int]] = []
    canonical(fn.body, sites)
    own = _own_nodes(fn.body, future_annotations)
    return tuple(
        s
        for s, _ in sites
        if (id(s) in awaiting if isinstance(s, cst.Await) else id(s.node) in own)
    )


def _own_nodes(body: cst.CSTNode, future_annotations: bool) -> set[int]:
    """id() of the nodes the function itself evaluates: not those inside a
    nested function, lambda or class body, nor a local's annotation (CPython
    never evaluates it); but a nested definition's header, which runs where
    the definition stands: decorators, defaults, a class's bases and
    keywords, and a nested function's annotations (unless `from __future__
    import annotations` makes them strings)."""
    own: set[int] = set()
    stack: list[cst.CSTNode] = [body]
    while stack:
        n = stack.pop()
        own.add(id(n))
        if isinstance(n, cst.FunctionDef | cst.Lambda):
            p = n.params
            params = [*p.posonly_params, *p.params, *p.kwonly_params]
            params += [x for x in (p.star_arg, p.star_kwarg) if isinstance(x, cst.Param)]
            stack.extend(x.default for x in params if x.default is not None)
            if isinstance(n, cst.FunctionDef):
                stack.extend(n.decorators)
                if not future_annotations:
                    stack.extend(x.annotation for x in params if x.annotation is not None)
                    stack.extend([n.returns] if n.returns is not None else [])
        elif isinstance(n, cst.ClassDef):
            stack.extend([*n.decorators, *n.bases, *n.keywords])
        elif isinstance(n, cst.AnnAssign):
            stack.extend([n.target, *([n.value] if n.value is not None else [])])
        else:
            stack.extend(children(n))
    return own


def site_fingerprints(
    fn: cst.FunctionDef, sites: Sequence[tuple[AwaitSite, Iterable[str]]]
) -> list[str]:
    """`"<code>.<live>"` for each (site, locals live at its checkpoint): the
    hash of the parameters and the body up to the end of that await (its
    operand included, what follows it not), and of the sorted live locals.
    An implicit await also hashes its method and its rank among the implicit
    awaits of that method ending at the same place (the `__aexit__` of each
    item of one `async with`), so no two sites share a fingerprint."""
    found: list[tuple[AwaitSite, int]] = []
    body = canonical(fn.body, found)
    ends = dict(found)
    suffixes: dict[AwaitSite, str] = {}
    ranks: Counter[tuple[int, str]] = Counter()
    for site, end in found:
        if isinstance(site, ImplicitAwait):
            suffixes[site] = f"\n{site.method} {ranks[end, site.method]}"
            ranks[end, site.method] += 1
    head = f"{LOWERING_VERSION}\n{canonical(fn.params)}\n"
    return [
        _sha256(head + body[: ends[site]] + suffixes.get(site, ""))[:12]
        + "."
        + _sha256(",".join(sorted(live)))[:8]
        for site, live in sites
    ]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
