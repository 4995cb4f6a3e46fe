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
function (at any depth) that has a symbol table, possibly empty (one in an
annotation under `from __future__ import annotations` has none: it is never
run). Each libcst node is paired with its symbol table by position: a
table's children are the scopes inside it in the order CPython's symtable
enters them, and `_Walk` walks the libcst tree in that same order
(Python/symtable.c's, not the source's: a scope's header -- defaults,
annotations, decorators, bases, a comprehension's outermost iterable -- is
visited before the scope is entered; a conditional expression's test before
its body; a dict display's keys before its values; a call's positional
arguments before its keyword ones; in 3.11, a `try`'s `else` before its
handlers). The kind, name, parameters and line of each pair are checked, so
a walk that strays is a loud InternalError, never a closure given another's
names (tests/test_scopes.py checks the walk against the running CPython).

`rebound` are the function's locals some nested scope declares `nonlocal`:
a closure called while the function awaits may change them, so the lowering
reads them before an await where CPython does (builder.stabilize).
"""

from __future__ import annotations

import symtable
import sys
from collections.abc import Iterator, Mapping, Sequence

import libcst as cst

from resumable.errors import InternalError

from .ir import ParsedModule
from .tree import children

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
    walk = _Walk(parsed.future_annotations)

    def visit(
        parts: Sequence[cst.CSTNode], t: symtable.SymbolTable, chain: list[symtable.SymbolTable]
    ) -> None:
        children = list(t.get_children())
        scopes = list(walk.scopes(parts))
        for i, scope in enumerate(scopes):
            inner = children[i] if i < len(children) else None
            if inner is None or not _pairs(parsed, scope, inner):
                raise InternalError(
                    f"compiling {node.name.value}: the {type(scope).__name__} on line "
                    f"{_line(parsed, scope)} does not match symbol table "
                    f"{_describe(inner)} (this is a bug in resumable, please report it)"
                )
            if not isinstance(scope, tuple(_COMPREHENSIONS)):
                names = frozenset(
                    s.get_name()
                    for s in inner.get_symbols()
                    if s.is_free() and _resolves_to_function(s.get_name(), chain, local_names)
                )
                out[id(scope)] = names
                rebound.update(n for n in names if inner.lookup(n).is_nonlocal())
            visit(walk.own_parts(scope), inner, [*chain, inner])
        if len(children) > len(scopes):
            raise InternalError(
                f"compiling {node.name.value}: symbol table {_describe(children[len(scopes)])} "
                "matches no scope (this is a bug in resumable, please report it)"
            )

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


#: Since CPython 3.12 symtable visits a definition's decorators before its
#: annotations, a class's decorators before its bases, and a `try`'s
#: handlers before its `else`; 3.11 visits them after.
_SINCE_312 = sys.version_info >= (3, 12)


class _Walk:
    """libcst nodes in the order CPython's symtable visits the AST's
    (symtable_visit_stmt, symtable_visit_expr, symtable_handle_comprehension
    in Python/symtable.c). Only the order of scopes matters: an order of
    other nodes is kept wherever no scope can tell it apart."""

    def __init__(self, future_annotations: bool) -> None:
        #: Under `from __future__ import annotations` an annotation gets a
        #: block of its own that is no table's child: its scopes have none.
        self.future_annotations = future_annotations

    def scopes(self, parts: Sequence[cst.CSTNode]) -> Iterator[_Scope]:
        """The scopes directly inside `parts` (code of one scope), in the
        order their tables are created. What a scope evaluates in its
        enclosing scope (its header) comes before it, and is searched too."""
        stack: list[cst.CSTNode | _Entered] = list(reversed(parts))
        while stack:
            n = stack.pop()
            if isinstance(n, _Scope):
                # The header is visited, then the scope entered: the scope
                # comes after the scopes in its header.
                stack.append(_Entered(n))
                stack.extend(reversed(self.header(n)))
            elif isinstance(n, _Entered):
                yield n.scope
            else:
                stack.extend(reversed(self.parts(n)))

    def parts(self, n: cst.CSTNode) -> Sequence[cst.CSTNode]:
        """The children of a node that is not a scope, in the visit order."""
        if isinstance(n, cst.Call):
            return [n.func, *_args(n.args)]
        if isinstance(n, cst.Dict):
            keys = [e.key for e in n.elements if isinstance(e, cst.DictElement)]
            return [*keys, *(e.value for e in n.elements)]
        if isinstance(n, cst.IfExp):
            return [n.test, n.body, n.orelse]
        if isinstance(n, cst.NamedExpr):
            return [n.value, n.target]
        if isinstance(n, cst.Try | cst.TryStar) and not _SINCE_312:
            rest = [x for x in (n.orelse, *n.handlers, n.finalbody) if x is not None]
            return [n.body, *rest]
        if isinstance(n, cst.AnnAssign):
            value = [n.value] if n.value is not None else []
            return [n.target, *self.annotation(n.annotation), *value]
        return children(n)

    def header(self, n: _Scope) -> list[cst.CSTNode]:
        """Parts of scope node `n` evaluated in the enclosing scope, in the
        visit order."""
        if isinstance(n, cst.FunctionDef):
            p = n.params
            annotations = [
                *self.annotation(*(x.annotation for x in (*p.posonly_params, *p.params))),
                *self.annotation(
                    p.star_arg.annotation if isinstance(p.star_arg, cst.Param) else None
                ),
                *self.annotation(p.star_kwarg.annotation if p.star_kwarg else None),
                *self.annotation(*(x.annotation for x in p.kwonly_params)),
                *self.annotation(n.returns),
            ]
            decorators = list(n.decorators)
            if _SINCE_312:
                return [*_defaults(p), *decorators, *annotations]
            return [*_defaults(p), *annotations, *decorators]
        if isinstance(n, cst.Lambda):
            return _defaults(n.params)
        if isinstance(n, cst.ClassDef):
            arguments = _args([*n.bases, *n.keywords])
            if _SINCE_312:
                return [*n.decorators, *arguments]
            return [*arguments, *n.decorators]
        return [n.for_in.iter]

    def own_parts(self, n: _Scope) -> list[cst.CSTNode]:
        """Parts of scope node `n` that run in its own scope, in the visit
        order: a comprehension's outermost target and conditions, its inner
        `for` clauses, then (a dict comprehension's value before its key)
        the element."""
        if isinstance(n, cst.FunctionDef | cst.Lambda | cst.ClassDef):
            return [n.body]
        for_in = n.for_in
        parts: list[cst.CSTNode] = [for_in.target, *for_in.ifs]
        if for_in.inner_for_in is not None:
            parts.append(for_in.inner_for_in)
        if isinstance(n, cst.DictComp):
            return [*parts, n.value, n.key]
        return [*parts, n.elt]

    def annotation(self, *annotations: cst.Annotation | None) -> list[cst.CSTNode]:
        if self.future_annotations:
            return []
        return [a.annotation for a in annotations if a is not None]


class _Entered:
    """On the walk's stack: the scope is entered here (after its header)."""

    __slots__ = ("scope",)

    def __init__(self, scope: _Scope) -> None:
        self.scope = scope


def _args(args: Sequence[cst.Arg]) -> list[cst.CSTNode]:
    """Values of call (or class) arguments as the AST orders them: the
    positional ones (`*` too) first, then the keyword ones (`**` too)."""
    keyword = [a.keyword is not None or a.star == "**" for a in args]
    positional = [a.value for a, k in zip(args, keyword, strict=True) if not k]
    return [*positional, *(a.value for a, k in zip(args, keyword, strict=True) if k)]


def _defaults(p: cst.Parameters) -> list[cst.CSTNode]:
    """A signature's default values: the positional parameters', then the
    keyword-only ones' (args.defaults, then args.kw_defaults)."""
    positional = [x.default for x in (*p.posonly_params, *p.params) if x.default is not None]
    return [*positional, *(x.default for x in p.kwonly_params if x.default is not None)]


def _kind(n: cst.CSTNode) -> tuple[str, str]:
    if isinstance(n, cst.FunctionDef):
        return "function", n.name.value
    if isinstance(n, cst.ClassDef):
        return "class", n.name.value
    if isinstance(n, cst.Lambda):
        return "function", "lambda"
    return "function", _COMPREHENSIONS[type(n)]


def _line(parsed: ParsedModule, n: cst.CSTNode) -> int:
    """The line CPython's symtable gives scope node `n`: of its `def`,
    `async`, `class` or `lambda` keyword, a comprehension's opening bracket
    (libcst's position of the node, without its parentheses or decorators)."""
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


def _pairs(parsed: ParsedModule, scope: cst.CSTNode, t: symtable.SymbolTable) -> bool:
    """Is `t` the symbol table of `scope`? Its kind, name, parameters and
    line agree. (A generator expression's line is not compared: the sole
    argument of a call `f(x for x in y)` starts at the call's parenthesis,
    which libcst's node does not hold.)"""
    kind, name = _kind(scope)
    if t.get_type() != kind or t.get_name() != name:
        return False
    params = _params(scope)
    if params is not None:
        assert isinstance(t, symtable.Function)
        if tuple(sorted(t.get_parameters())) != params:
            return False
    return isinstance(scope, cst.GeneratorExp) or t.get_lineno() == _line(parsed, scope)


def _describe(t: symtable.SymbolTable | None) -> str:
    if t is None:
        return "(none left)"
    return f"{t.get_type()} {t.get_name()!r} of line {t.get_lineno()}"
