"""Fingerprints embedded in generated code.

- build hash (resumable.source.build_hash): the function's exact source block
  and resumable's version; a different hash at run time means stale code.
- run fingerprint: a hash of the function's canonical form -- node types and
  names, literal values -- without comments, whitespace, parentheses or line
  numbers, so reformatting does not change it but any change to a statement
  or the order of statements does. It is computed from libcst's tree, not
  from `ast.dump` (whose output changes between Python versions).
"""

from __future__ import annotations

import dataclasses
import hashlib

import libcst as cst

__all__ = ["canonical", "run_fingerprint"]

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


def canonical(node: cst.CSTNode) -> str:
    """A formatting-independent text form of `node`."""
    out: list[str] = []
    stack: list[object] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        if isinstance(item, cst.SimpleString):
            out.append(f"SimpleString({item.evaluated_value!r})")
            continue
        assert isinstance(item, cst.CSTNode)
        parts: list[object] = [type(item).__name__, "("]
        for f in dataclasses.fields(item):
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
    return "".join(out)


def run_fingerprint(fn: cst.FunctionDef) -> str:
    """Fingerprint of a function's parameters and body (not its decorators)."""
    text = canonical(fn.params) + "\n" + canonical(fn.body)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
