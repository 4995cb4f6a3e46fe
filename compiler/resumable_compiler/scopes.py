"""Nested scopes of a decorated function: which of their names are the function's locals.

    async def f(items, k):                  captured = {
        key = lambda p: p * k                   id(<lambda>):   {"k"},
        def bump():                             id(<def bump>): {"k"},
            nonlocal k                          id(<class C>):  {"items"},
            k += 1                          }
        class C:
            n = len(items)

A lambda, nested function or class reads and writes the function's locals
through the locals object (`L.k`), as the function itself does: so it sees
their current values when it runs (late binding), its `nonlocal` writes are
the function's, and several closures share one set of variables. Which names
those are comes from stdlib `symtable`: a name free in a nested scope is the
function's when no scope between them binds it (a class scope never does:
functions nested in a class skip it, as in CPython).

`captured` has an entry for every lambda, nested function and class in the
function (at any depth), possibly empty. Each libcst node is matched with its
symbol table by kind, name and line (and parameters, for functions).

`rebound` are the function's locals some nested scope declares `nonlocal`:
a closure called while the function awaits may change them, so the lowering
reads them before an await where CPython does (builder.stabilize).
"""

from __future__ import annotations

import symtable
from collections.abc import Iterator, Mapping, Sequence

import libcst as cst

from resumable.errors import InternalError

from .ir import ParsedModule

__all__ = ["captured_names"]

_COMPREHENSIONS: Mapping[type, str] = {
    cst.ListComp: "listcomp",
    cst.SetComp: "setcomp",
    cst.DictComp: "dictcomp",
    cst.GeneratorExp: "genexpr",
}
_Scope = (
    cst.FunctionDef
    | cst.Lambda
    | cst.ClassDef
    | cst.ListComp
    | cst.SetComp
    | cst.DictComp
    | cst.GeneratorExp
)


def captured_names(
    parsed: ParsedModule,
    node: cst.FunctionDef,
    table: symtable.SymbolTable,
    local_names: frozenset[str],
) -> tuple[dict[int, frozenset[str]], frozenset[str]]:
    """(captured, rebound): id(nested lambda, def or class node) -> its
    names that are the function's locals (read, written with `nonlocal`, or
    passed through to a scope inside it); and the function's locals that a
    nested scope declares `nonlocal`."""
    out: dict[int, frozenset[str]] = {}
    rebound: set[str] = set()

    def visit(
        parts: Sequence[cst.CSTNode], t: symtable.SymbolTable, chain: list[symtable.SymbolTable]
    ) -> None:
        children = list(t.get_children())
        taken = [False] * len(children)
        for scope in _direct_scopes(parts):
            i = _match(parsed, scope, children, taken)
            if i is None:
                raise InternalError(
                    f"compiling {node.name.value}: no symbol table for the "
                    f"{type(scope).__name__} on line {_line(parsed, scope)} "
                    "(this is a bug in resumable, please report it)"
                )
            taken[i] = True
            inner = children[i]
            if not isinstance(scope, tuple(_COMPREHENSIONS)):
                names = frozenset(
                    s.get_name()
                    for s in inner.get_symbols()
                    if s.is_free() and _resolves_to_function(s.get_name(), chain, local_names)
                )
                out[id(scope)] = names
                rebound.update(n for n in names if inner.lookup(n).is_nonlocal())
            visit(_own_parts(scope), inner, [*chain, inner])

    visit([node.body], table, [])
    return out, frozenset(rebound)


def _resolves_to_function(
    name: str, chain: Sequence[symtable.SymbolTable], local_names: frozenset[str]
) -> bool:
    """Does a name free in a nested scope resolve to the function's local?
    `chain`: the scopes between the function and it, outermost first."""
    for t in reversed(chain):
        if t.get_type() == "class":
            continue  # class scopes are skipped by the functions inside them
        try:
            symbol = t.lookup(name)
        except KeyError:
            continue
        if symbol.is_local():
            return False  # bound in a scope between (a function, or a comprehension's variable)
    return name in local_names


def _direct_scopes(parts: Sequence[cst.CSTNode]) -> Iterator[_Scope]:
    """The scopes directly inside `parts` (code of one scope), in source order.
    What a scope evaluates in its enclosing scope (decorators, defaults,
    bases, a comprehension's first iterable) is searched too."""
    stack: list[cst.CSTNode] = list(reversed(parts))
    while stack:
        n = stack.pop()
        if isinstance(n, _Scope):
            yield n
            stack.extend(reversed(_enclosing_parts(n)))
            continue
        stack.extend(reversed(n.children))


def _enclosing_parts(n: cst.CSTNode) -> list[cst.CSTNode]:
    """Parts of scope node `n` evaluated in the enclosing scope."""
    if isinstance(n, cst.FunctionDef):
        return [*n.decorators, n.params, *([n.returns] if n.returns else [])]
    if isinstance(n, cst.Lambda):
        return [n.params]
    if isinstance(n, cst.ClassDef):
        return [*n.decorators, *n.bases, *n.keywords]
    assert isinstance(n, cst.ListComp | cst.SetComp | cst.DictComp | cst.GeneratorExp)
    return [n.for_in.iter]


def _own_parts(n: cst.CSTNode) -> list[cst.CSTNode]:
    """Parts of scope node `n` that run in its own scope."""
    if isinstance(n, cst.FunctionDef | cst.Lambda | cst.ClassDef):
        return [n.body]
    assert isinstance(n, cst.ListComp | cst.SetComp | cst.DictComp | cst.GeneratorExp)
    for_in = n.for_in
    parts: list[cst.CSTNode] = [for_in.target, *for_in.ifs]
    if for_in.inner_for_in is not None:
        parts.append(for_in.inner_for_in)
    parts += [c for c in n.children if c is not for_in]
    return parts


def _kind(n: cst.CSTNode) -> tuple[str, str]:
    if isinstance(n, cst.FunctionDef):
        return "function", n.name.value
    if isinstance(n, cst.ClassDef):
        return "class", n.name.value
    if isinstance(n, cst.Lambda):
        return "function", "lambda"
    return "function", _COMPREHENSIONS[type(n)]


def _line(parsed: ParsedModule, n: cst.CSTNode) -> int:
    if isinstance(n, cst.FunctionDef | cst.ClassDef):
        return parsed.line_of(n.name)
    return parsed.line_of(n)


def _params(n: cst.CSTNode) -> tuple[str, ...] | None:
    if not isinstance(n, cst.FunctionDef | cst.Lambda):
        return None
    p = n.params
    names = [x.name.value for x in (*p.posonly_params, *p.params, *p.kwonly_params)]
    if isinstance(p.star_arg, cst.Param):
        names.append(p.star_arg.name.value)
    if p.star_kwarg is not None:
        names.append(p.star_kwarg.name.value)
    return tuple(sorted(names))


def _match(
    parsed: ParsedModule,
    scope: cst.CSTNode,
    children: Sequence[symtable.SymbolTable],
    taken: Sequence[bool],
) -> int | None:
    """The index of `scope`'s symbol table among `children` (not yet taken):
    the first of its kind and name on its line, else the first of its kind
    and name (a lambda inside parentheses that start on an earlier line)."""
    kind, name = _kind(scope)
    params = _params(scope)
    line = _line(parsed, scope)
    fallback = None
    for i, t in enumerate(children):
        if taken[i] or t.get_type() != kind or t.get_name() != name:
            continue
        if params is not None:
            assert isinstance(t, symtable.Function)
            if tuple(sorted(t.get_parameters())) != params:
                continue
        if t.get_lineno() == line:
            return i
        if fallback is None:
            fallback = i
    return fallback
