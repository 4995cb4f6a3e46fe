"""Pass 6, render: checked machines -> the text of the generated module.

jinja2 renders the module and class skeletons (templates/module.py.j2); each
state is a libcst function node rendered with `code_for_node`, so verbatim
statements keep their exact text (multi-line strings included). The output is
deterministic (same input, same bytes), compiles, and notes for every state
the source line it comes from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
import libcst as cst

from resumable import __version__
from resumable.errors import InternalError
from resumable.source import build_hash, function_block

from .fingerprint import LOWERING_VERSION, run_fingerprint, site_fingerprints
from .ir import Lowered, ParsedModule, State
from .rewrite import code
from .tree import children

__all__ = ["render"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("resumable_compiler", "templates"),
    keep_trailing_newline=True,
    trim_blocks=False,
    lstrip_blocks=False,
    autoescape=False,
    undefined=jinja2.StrictUndefined,
)
_ENV.filters["pyrepr"] = repr


@dataclass(frozen=True)
class _StateView:
    index: int
    name: str
    line: int
    summary: str
    code: str


def _render_state(lowered: Lowered, state: State, name: str) -> str:
    reserved = lowered.analysis.reserved
    body: list[cst.BaseStatement] = list(state.body)
    declared = lowered.analysis.declared_globals
    if declared:
        used = sorted(declared & _names(body))
        if used:
            body.insert(
                0, cst.SimpleStatementLine([cst.Global([cst.NameItem(cst.Name(n)) for n in used])])
            )
    params = cst.Parameters(
        [cst.Param(cst.Name(reserved.machine)), cst.Param(cst.Name(reserved.frame))]
    )
    fn = cst.FunctionDef(name=cst.Name(name), params=params, body=cst.IndentedBlock(body))
    return code(fn).rstrip("\n")


def _names(body: Sequence[cst.CSTNode]) -> set[str]:
    out: set[str] = set()
    stack = list(body)
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Name):
            out.add(n.value)
        stack.extend(children(n))
    return out


def _summary(state: State) -> str:
    if state.is_await:
        return f": await, resumes at state {state.resume}"
    return ""


def _machine(parsed: ParsedModule, lowered: Lowered, used: set[str]) -> dict[str, Any]:
    fn = lowered.analysis.function
    qualname = fn.qualname
    base = qualname.replace(".", "_")  # a method `Cart.add`: class Cart_add, states Cart_add_N
    class_name = _unique(base, used)
    states = []
    for state in lowered.states:
        name = _unique(f"{base}_{state.index}", used)
        states.append(
            _StateView(
                state.index, name, state.line, _summary(state), _render_state(lowered, state, name)
            )
        )
    params = re.sub(r"\s+", " ", code(fn.node.params)).strip()
    return {
        "qualname": qualname,
        "class_name": class_name,
        "signature": f"async def {qualname}({params})",
        "def_line": fn.def_line,
        "first_line": fn.first_line,
        "function_id": f"{parsed.module_name}:{qualname}",
        "build_hash": build_hash(function_block(parsed.lines, fn.first_line), __version__),
        "run_fingerprint": run_fingerprint(fn.node),
        "lowering_version": LOWERING_VERSION,
        "params": lowered.analysis.params,
        "imports": lowered.analysis.imports,
        "states": states,
        "lines": tuple(s.line for s in lowered.states),
        "awaits": [
            (s.index, s.resume, lowered.live[s.index]) for s in lowered.states if s.is_await
        ],
        "sites": _sites(lowered),
        "on_error": [(s.index, *s.on_error) for s in lowered.states if s.on_error is not None],
        "handled": [(s.index, s.handled) for s in lowered.states if s.handled],
        "hidden": sorted(lowered.hidden.items(), key=lambda kv: _hidden_order(kv[0])),
    }


def _sites(lowered: Lowered) -> list[tuple[int, int, str]]:
    """(await state, ordinal of its source await, site fingerprint)."""
    awaits = lowered.analysis.awaits
    sites = [(s.index, s.site) for s in lowered.states if s.site is not None]
    prints = site_fingerprints(
        lowered.analysis.function.node, [(awaits[k], lowered.live[i]) for i, k in sites]
    )
    return [(i, k, p) for (i, k), p in zip(sites, prints, strict=True)]


def _hidden_order(name: str) -> tuple[str, int]:
    match = re.match(r"^_*([a-z]+)(\d*)$", name)
    if not match:
        return (name, 0)
    return (match.group(1), int(match.group(2) or 0))


def _unique(name: str, used: set[str]) -> str:
    while name in used:
        name += "_"
    used.add(name)
    return name


def render(
    parsed: ParsedModule, machines: Sequence[Lowered], source_hash: str, compiler: str
) -> str:
    used = {"Machine", "MACHINES"}
    views = [_machine(parsed, m, used) for m in machines]
    source_name = parsed.path.replace("\\", "/").rsplit("/", 1)[-1]
    text = _ENV.get_template("module.py.j2").render(
        source_name=source_name,
        version=__version__,
        source_hash=source_hash,
        compiler=compiler,
        machines=views,
    )
    try:
        # As the loader compiles it: not under this module's own `from
        # __future__ import annotations` (under which an annotation with a
        # walrus, an await or a yield in a nested definition fails).
        compile(text, f"<generated from {source_name}>", "exec", dont_inherit=True)
    except SyntaxError as e:
        raise InternalError(
            f"generated code for {source_name} does not compile: {e} (this is a bug in resumable, please report it)"
        ) from None
    return text
