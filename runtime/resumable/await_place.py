"""Where a run stands, as the code that wrote its checkpoint saw it.

After a deploy, the line a checkpoint names may hold other code in the new
source. `resumable runs show` reads the function's generated module as text
(it is parsed, never executed, and no user module is imported): when the
fingerprint of the await state the checkpoint names is still the one the
checkpoint carries, the generated code's own comment gives that await's
source text; the source file's line is compared with it, and any difference
is said. When the fingerprint differs, the code up to that await changed
since the checkpoint was written, and that is said instead.
"""

from __future__ import annotations

import ast
import functools
import linecache
import os
import re
from typing import Any

from .ids import shown
from .source import display_path, generated_path

__all__ = ["await_place"]

_LINE_COMMENT = re.compile(r"^\s*# line (\d+): (.*)$")


def await_place(
    source: str, function_id: str, line: int, document: dict[str, Any], *, active: bool = True
) -> str:
    """`file:line: text` of the await a checkpoint stands at, with what
    changed (`active`: the run may still resume from it, after a retry too)."""
    where = f"{display_path(source)}:{line}"
    now = linecache.getline(source, line).strip() if source else ""
    state, fp = document.get("state"), document.get("fp")
    machine = _machine(generated_path(source), function_id) if source else None
    if machine is None or not isinstance(state, int):
        return where + (f": {shown(now)}" if now else "")
    site = machine["sites"].get(state)
    if site is None or site[1] != fp:
        then = (
            "resuming will tell whether it still fits"
            if active
            else "the run has ended, nothing resumes from it"
        )
        return (
            f"{where} of the code that wrote the checkpoint; the code up to that await has "
            f"changed since (compiled again): {then}"
            + (f"; line {line} now reads: {shown(now)}" if now else "")
        )
    then = machine["comments"].get(state)
    if then is None:
        return where + (f": {shown(now)}" if now else "")
    compiled_line, text = then
    place = f"{display_path(source)}:{compiled_line}: {shown(text)}"
    if now != text.strip() and linecache.getline(source, compiled_line).strip() != text.strip():
        place += " (the source file has changed since it was compiled: run `resumable compile`)"
    return place


def _machine(path: str, function_id: str) -> dict[str, Any] | None:
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return None
    return _read(path, stamp).get(function_id)


@functools.lru_cache(maxsize=32)
def _read(path: str, stamp: int) -> dict[str, dict[str, Any]]:
    """function id -> its machine's `sites` and the line comment of each
    await state, read from the generated module's text."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        tree = ast.parse(text)
    except (OSError, SyntaxError, ValueError):
        return {}
    lines = text.splitlines()
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    found: dict[str, dict[str, Any]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        attrs: dict[str, Any] = {}
        for item in node.body:
            if isinstance(item, ast.Assign) and len(item.targets) == 1:
                target = item.targets[0]
                if isinstance(target, ast.Name):
                    attrs[target.id] = item.value
        try:
            function_id = ast.literal_eval(attrs["function_id"])
            sites = ast.literal_eval(attrs["sites"])
            states = [e.id for e in attrs["states"].elts if isinstance(e, ast.Name)]
        except (KeyError, ValueError, AttributeError, TypeError):
            continue
        comments = {}
        for state in sites:
            fn = functions.get(states[state]) if 0 <= state < len(states) else None
            if fn is None:
                continue
            for source_line in lines[fn.lineno : fn.end_lineno or fn.lineno]:
                match = _LINE_COMMENT.match(source_line)
                if match:
                    comments[state] = (int(match.group(1)), match.group(2))
                    break
        found[str(function_id)] = {"sites": sites, "comments": comments}
    return found
