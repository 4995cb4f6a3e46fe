"""Tracebacks of compiled code name the user's file, line and function.

A generated state notes the source line of each statement it holds in a
comment (`# line 47: charge(...)`). When a machine is bound, its states are
compiled again from the generated module's syntax tree with every node moved
to that source line (shifted when the function has moved since it was
compiled), the file name set to the source file and the code named after the
function, so a traceback reads

    File "shop/orders.py", line 47, in checkout
        receipt = await charge(card, total)

instead of pointing into `__resumable__/`. Lines of code kept verbatim inside
a statement (the body of an `if` without awaits) keep their own line when
the generated line is the source line with locals rewritten (`L.x`); other
generated lines (temporaries, jumps) take the line of their statement.
Column ranges cover the whole source line, so no carets point at parts of it.
"""

from __future__ import annotations

import ast
import copy
import re
import types
from collections.abc import Sequence
from typing import Any

from .source import source_lines as numbered_lines

__all__ = ["located_states"]

_LINE = re.compile(r"\s*# (?:state \d+, )?line (\d+)\b")


def located_states(
    text: str,
    tree: ast.Module,
    names: Sequence[str],
    source_lines: Sequence[str],
    shift: int,
    filename: str,
    flags: int = 0,
) -> dict[str, types.CodeType]:
    """Code of the state functions `names` of generated module `text`
    (parsed as `tree`), located in the source file: name -> code. `flags`:
    the source module's `__future__` features (`from __future__ import
    annotations`), and only those."""
    lines = numbered_lines(text)  # not str.splitlines: a U+2028 in a string ends no line
    wanted = set(names)
    body: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in wanted:
            fn = copy.deepcopy(node)
            _relocate(fn, _line_map(fn, lines, source_lines, shift), source_lines)
            body.append(fn)
    module = compile(
        ast.Module(body=body, type_ignores=[]), filename, "exec", flags=flags, dont_inherit=True
    )
    return {
        c.co_name: c
        for c in module.co_consts
        if isinstance(c, types.CodeType) and c.co_name in wanted
    }


def _line_map(
    fn: ast.FunctionDef, lines: Sequence[str], source_lines: Sequence[str], shift: int
) -> dict[int, int]:
    """Generated line -> source line (as the source is now) within `fn`."""
    locals_name = fn.args.args[1].arg if len(fn.args.args) > 1 else "L"
    prefix = re.compile(rf"\b{re.escape(locals_name)}\.")
    header = _LINE.match(lines[fn.lineno - 2]) if fn.lineno >= 2 else None
    base = int(header.group(1)) if header else 1
    base_at = fn.lineno
    out = {fn.lineno: base + shift}
    for i in range(fn.lineno + 1, (fn.end_lineno or fn.lineno) + 1):
        text = lines[i - 1]
        comment = _LINE.match(text)
        if comment:
            base, base_at = int(comment.group(1)), i
            continue
        here = base + (i - base_at - 1) + shift
        same = 0 < here <= len(source_lines) and (
            prefix.sub("", text).strip() == source_lines[here - 1].strip()
        )
        out[i] = here if same and text.strip() else base + shift
    return out


def _relocate(fn: ast.FunctionDef, where: dict[int, int], source_lines: Sequence[str]) -> None:
    first = where[fn.lineno]
    for item in ast.walk(fn):
        node: Any = item  # statements, expressions, arguments...: all with positions
        if getattr(node, "lineno", None) is None:
            continue
        line = where.get(node.lineno, first)
        text = source_lines[line - 1] if 0 < line <= len(source_lines) else ""
        stripped = text.rstrip()
        start = len(stripped.encode()) - len(stripped.lstrip().encode())
        node.lineno = node.end_lineno = line
        node.col_offset = start
        node.end_col_offset = max(len(stripped.encode()), start)
