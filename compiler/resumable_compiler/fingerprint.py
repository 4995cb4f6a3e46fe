"""Fingerprints embedded in generated code.

- build hash (resumable.source.build_hash): the function's exact source block
  and resumable's version; a different hash at run time means stale code.
- run fingerprint: a hash of the function's canonical form -- node types and
  names, literal values -- without comments, whitespace, parentheses or line
  numbers, so reformatting does not change it but any change to a statement
  or the order of statements does. It is computed from libcst's tree, not
  from `ast.dump` (whose output changes between Python versions).
- site fingerprint, one per await: the canonical form up to the end of that
  await, and the locals live at its checkpoint. A run checkpointed at an await
  may resume under changed code whose await of the same ordinal has the same
  site fingerprint: nothing before the await and no stored variable changed.
  "Before" is the order awaits run: the canonical form puts the clauses of a
  comprehension that awaits before its element, and the guard of a case
  that awaits before its body (`_fields`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Collection, Iterable, Sequence

import libcst as cst

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


def canonical(node: cst.CSTNode, awaits: list[tuple[cst.Await, int]] | None = None) -> str:
    """A formatting-independent text form of `node`. Given `awaits`, every
    Await in `node` is appended to it in pre-order, with the length of the
    text up to the end of its subtree."""
    out: list[str] = []
    size = 0
    found: list[tuple[cst.Await, int]] = []
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
        if isinstance(item, cst.SimpleString):
            stack.append(f"SimpleString({item.evaluated_value!r})")
            continue
        assert isinstance(item, cst.CSTNode)
        if isinstance(item, cst.Await):
            found.append((item, -1))
            stack.append(len(found) - 1)
        parts: list[object] = [type(item).__name__, "("]
        for f in _fields(item):
            if f.name in _SKIPPED_FIELDS or f.name.startswith("whitespace"):
                continue
            value = getattr(item, f.name)
            if isinstance(value, cst.CSTNode):
                if not isinstance(value, _WHITESPACE):
                    parts += [f.name, "=", value, " "]
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
        stack.extend(reversed(parts))
    if awaits is not None:
        awaits += found
    return "".join(out)


def _fields(item: cst.CSTNode) -> list[dataclasses.Field[object]]:
    """The fields of `item` in the order its awaits run: a comprehension that
    awaits past its first iterable runs its clauses before its element, and a
    case whose guard or body awaits tests its guard before its body. (Only
    for those, which were refused before: the text of others, and so their
    fingerprints, stay as they were.)"""
    fields = list(dataclasses.fields(item))
    first: tuple[str, ...] = ()
    if isinstance(item, cst.ListComp | cst.SetComp | cst.DictComp):
        if any(_has_await(c) for c in item.children if c is not item.for_in) or _has_await(
            item.for_in, skip=item.for_in.iter
        ):
            first = ("for_in",)
    elif isinstance(item, cst.MatchCase) and _has_await(item):
        first = ("pattern", "guard")
    return sorted(fields, key=lambda f: first.index(f.name) if f.name in first else len(first))


def _has_await(node: cst.CSTNode, skip: cst.CSTNode | None = None) -> bool:
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Await):
            return True
        stack.extend(c for c in n.children if c is not skip)
    return False


def run_fingerprint(fn: cst.FunctionDef) -> str:
    """Fingerprint of a function's parameters and body (not its decorators)."""
    text = canonical(fn.params) + "\n" + canonical(fn.body)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def own_awaits(fn: cst.FunctionDef, awaiting: Collection[int]) -> tuple[cst.Await, ...]:
    """The function's awaits in the pre-order of `canonical`: an await's index
    is its ordinal, by which the runtime finds it again in changed code. Those
    of nested functions, lambdas and classes are not the function's; analyze
    left them out of `awaiting`."""
    awaits: list[tuple[cst.Await, int]] = []
    canonical(fn.body, awaits)
    return tuple(a for a, _ in awaits if id(a) in awaiting)


def site_fingerprints(
    fn: cst.FunctionDef, sites: Sequence[tuple[cst.Await, Iterable[str]]]
) -> list[str]:
    """`"<code>.<live>"` for each (await, locals live at its checkpoint): the
    hash of the parameters and the body up to the end of that await (its
    operand included, what follows it not), and of the sorted live locals."""
    awaits: list[tuple[cst.Await, int]] = []
    body = canonical(fn.body, awaits)
    ends = dict(awaits)
    head = f"{LOWERING_VERSION}\n{canonical(fn.params)}\n"
    return [
        _sha256(head + body[: ends[node]])[:12] + "." + _sha256(",".join(sorted(live)))[:8]
        for node, live in sites
    ]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
