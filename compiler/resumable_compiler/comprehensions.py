"""Lowering of list, set and dict comprehensions with awaits past their
first iterable (in the element, a condition, or a later `for` clause).

CPython runs a comprehension as a function of its own: the first iterable
is evaluated, and its iterator taken, in the enclosing scope; then the
clauses run as nested loops appending to a new list. The lowering does the
same with explicit loops over checkpointable cursors (like a for-loop whose
body awaits, branches.py), appending to a hidden accumulator:

    ys = [await g(x) for x in xs if x]   L._c1 = m.loop(L.xs, 3, 'comprehension')
                                         L._a1 = []
                                 head:   if not L._c1.step(): return <end>
                                         L._v1 = L._c1.value          (except -> cleanup)
                                         if not L._v1: return <head>
                                         return g(L._v1)              (await state)
                                         L._a1.append(m.sent)
                                         return <head>
                                 cleanup: m.drop(L, '_a1', '_c1', '_v1')
                                         return m.throw(L._x1)
                                 end:    m.drop(L, '_c1', '_v1')
                                         L.ys = L._a1

- Scope: each name the `for` clauses bind is one hidden variable of the
  comprehension (`x` -> `_v1`), so it neither leaks nor clobbers a local of
  the same name, and nested comprehensions have their own. A walrus still
  binds in the function (PEP 572). When the comprehension ends, its
  variables and cursors are deleted; when an exception leaves it, its
  accumulator too (ScopeEntry routes the exception through that cleanup).
  The accumulator is the comprehension's value, a temporary like any other.
- A `for` clause after which nothing awaits (its conditions, the clauses
  after it, the element) runs as a native `for` statement in one state.
- A dict comprehension evaluates the key before the value (CPython 3.8+).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import libcst as cst

from .branches import loop_iterable
from .builder import Lowering, is_constant
from .contexts import next_item, start_async_loop
from .control import ScopeEntry
from .expressions import lower_comprehension as lower_first_iterable
from .rewrite import attr, call, code

__all__ = ["lower_comprehension"]

Comprehension = cst.ListComp | cst.SetComp | cst.DictComp

_KINDS: dict[type, str] = {cst.ListComp: "list", cst.SetComp: "set", cst.DictComp: "dict"}


@dataclass
class _Scope:
    """One comprehension being lowered."""

    node: Comprehension
    clauses: list[cst.CompFor]
    accumulator: str
    #: The comprehension's variables: source name -> hidden variable.
    names: dict[str, str] = field(default_factory=dict)
    cursors: list[str] = field(default_factory=list)

    def element(self) -> list[cst.BaseExpression]:
        return _element(self.node)

    def hidden(self) -> list[str]:
        """The scope's hidden variables, but not its accumulator."""
        return [*self.cursors, *self.names.values()]


def _element(e: Comprehension) -> list[cst.BaseExpression]:
    return [e.key, e.value] if isinstance(e, cst.DictComp) else [e.elt]


def _awaits_after_iterable(
    b: Lowering, e: Comprehension, clauses: list[cst.CompFor], i: int
) -> bool:
    """Does anything clause `i` evaluates after its iterable await: its
    `__anext__` (an `async for`), its conditions, the later clauses, the element?"""
    if any(c.asynchronous is not None for c in clauses[i:]):
        return True
    parts: list[cst.CSTNode] = [c.test for c in clauses[i].ifs]
    for later in clauses[i + 1 :]:
        parts += [later.iter, *(c.test for c in later.ifs)]
    return any(b.has_await(p) for p in [*parts, *_element(e)])


def lower_comprehension(b: Lowering, e: Comprehension) -> cst.BaseExpression:
    clauses = _clauses(e.for_in)
    if not _awaits_after_iterable(b, e, clauses, 0):
        return lower_first_iterable(b, e)  # runs unchanged, its first iterable lowered
    w = b.w
    line = b.analysis.parsed.line_of(e) or w.line
    # The first iterable: evaluated, and its iterator taken, in the enclosing scope.
    if clauses[0].asynchronous is not None:
        cursor = start_async_loop(b, b.value(clauses[0].iter))
    else:
        first = loop_iterable(b, clauses[0].iter)
        cursor = _cursor(b, clauses[0], line)
        w.assign(cursor, _loop_call(b, first, clauses[0]))
    accumulator = w.hidden_var("a", f"the {_KINDS[type(e)]} built on line {line}")
    scope = _Scope(e, clauses, accumulator, cursors=[cursor])
    for clause in clauses:
        for name in _bound_names(clause.target):
            if name not in scope.names:
                scope.names[name] = w.hidden_var(
                    "v", f"the comprehension variable `{name}` (line {line})"
                )
    w.assign(accumulator, _empty(b, e))
    cleanup = w.new_label()
    exc = w.hidden_var("x", f"the exception leaving the comprehension on line {line}")
    with b.rw.renaming(scope.names), w.inside(ScopeEntry(cleanup=cleanup, var=exc)):
        _loop(b, scope, 0, cursor)
    end = w.new_label()
    w.jump(end)
    w.mark(cleanup)
    w.emit_small(_drop(b, [scope.accumulator, *scope.hidden()]))
    w.emit_small(w.throw(w.local(exc)))
    w.mark(end)
    w.emit_small(_drop(b, scope.hidden()))
    return w.local(scope.accumulator)


def _loop(b: Lowering, scope: _Scope, i: int, cursor: str) -> None:
    """Clause `i` over its cursor: the target, the conditions, then the rest."""
    w = b.w
    clause = scope.clauses[i]
    head, done = w.new_label(), w.new_label()
    w.mark(head)
    item: cst.BaseExpression
    if clause.asynchronous is not None:  # `cursor` holds the async iterator
        item = next_item(b, clause, cursor, done)
    else:
        w.jump_if(call(cst.Attribute(w.local(cursor), cst.Name("step"))), done, when=False)
        item = cst.Attribute(w.local(cursor), cst.Name("value"))
    target = cast(cst.BaseAssignTargetExpression, b.rw.expression(clause.target))
    w.emit_small(cst.Assign([cst.AssignTarget(target)], item))
    for condition in clause.ifs:
        b.jump_if(condition.test, head, when=False)  # a false condition: the next item
    if i + 1 < len(scope.clauses):
        _clause(b, scope, i + 1)
    else:
        _store(b, scope)
    w.jump(head)
    w.mark(done)


def _clause(b: Lowering, scope: _Scope, i: int) -> None:
    """A `for` clause after the first, in the comprehension's scope."""
    w = b.w
    clause = scope.clauses[i]
    if not _awaits_after_iterable(b, scope.node, scope.clauses, i):
        iterable = b.value(clause.iter)
        w.ensure_open()
        w.emit(_native(b, scope, i, iterable))
        return
    line = b.analysis.parsed.line_of(clause) or w.line
    if clause.asynchronous is not None:
        cursor = start_async_loop(b, b.value(clause.iter))
    else:
        cursor = _cursor(b, clause, line)
        w.assign(cursor, _loop_call(b, loop_iterable(b, clause.iter), clause))
    scope.cursors.append(cursor)
    _loop(b, scope, i, cursor)


def _native(b: Lowering, scope: _Scope, i: int, iterable: cst.BaseExpression) -> cst.For:
    """Clause `i` and everything after it as `for` and `if` statements (no await)."""
    clause = scope.clauses[i]
    body: list[cst.BaseStatement]
    if i + 1 < len(scope.clauses):
        inner = scope.clauses[i + 1]
        body = [_native(b, scope, i + 1, b.rw.expression(inner.iter))]
    else:
        key_value = [b.rw.expression(x) for x in scope.element()]
        body = [cst.SimpleStatementLine(s) for s in _stores(b, scope, key_value, True)]
    for condition in reversed(clause.ifs):
        body = [cst.If(test=b.rw.expression(condition.test), body=cst.IndentedBlock(body))]
    target = cast(cst.BaseAssignTargetExpression, b.rw.expression(clause.target))
    return cst.For(target=target, iter=iterable, body=cst.IndentedBlock(body))


def _store(b: Lowering, scope: _Scope) -> None:
    """Add the element to the accumulator (lowered: it may await)."""
    values = b.operands([(x, "") for x in scope.element()])
    lowered = [v for v in values if v is not None]
    b.w.ensure_open()
    for small in _stores(b, scope, lowered, False):
        b.w.emit_small(*small)


def _stores(
    b: Lowering, scope: _Scope, values: Sequence[cst.BaseExpression], native: bool
) -> list[list[cst.BaseSmallStatement]]:
    """The lines adding `values` (the element, or the key and the value) to
    the accumulator."""
    w = b.w
    acc = w.local(scope.accumulator)
    if not isinstance(scope.node, cst.DictComp):
        method = "append" if isinstance(scope.node, cst.ListComp) else "add"
        return [[cst.Expr(call(cst.Attribute(acc, cst.Name(method)), values[0]))]]
    key, value = values
    lines: list[list[cst.BaseSmallStatement]] = []
    if not (_pure(b, scope.node.key, key) or _pure(b, scope.node.value, value)):
        # `acc[k] = v` evaluates v first: the key goes into a temporary.
        line = b.analysis.parsed.line_of(scope.node.key) or w.line
        name = w.hidden_var("t", f"the value of `{_short(scope.node.key)}` (line {line})")
        lines.append([cst.Assign([cst.AssignTarget(w.local(name))], key)])
        key = w.local(name)
    lines.append([cst.Assign([cst.AssignTarget(cst.Subscript(acc, [_index(key)]))], value)])
    return lines


def _pure(b: Lowering, original: cst.BaseExpression, lowered: cst.BaseExpression) -> bool:
    """Does evaluating `lowered` have no effect and raise nothing?"""
    return is_constant(original) or b.is_hidden(lowered) or lowered in b.w.sent_nodes


def _cursor(b: Lowering, clause: cst.CompFor, line: int) -> str:
    target = _short(clause.target)
    return b.w.hidden_var(
        "c", f"the position of `for {target} in ...` in the comprehension on line {line}"
    )


def _loop_call(b: Lowering, iterable: cst.BaseExpression, clause: cst.CompFor) -> cst.Call:
    line = b.analysis.parsed.line_of(clause.iter) or b.w.line
    return call(
        attr(b.w.m, "loop"),
        iterable,
        cst.Integer(str(line)),
        cst.SimpleString("'comprehension'"),
    )


def _empty(b: Lowering, e: Comprehension) -> cst.BaseExpression:
    if isinstance(e, cst.ListComp):
        return cst.List([])
    if isinstance(e, cst.DictComp):
        return cst.Dict([])
    return call(attr(b.w.m, "empty_set"))


def _drop(b: Lowering, names: Sequence[str]) -> cst.Expr:
    strings = [cst.SimpleString(repr(n)) for n in names]
    return cst.Expr(call(attr(b.w.m, "drop"), cst.Name(b.w.L), *strings))


def _clauses(for_in: cst.CompFor | None) -> list[cst.CompFor]:
    out = []
    while for_in is not None:
        out.append(for_in)
        for_in = for_in.inner_for_in
    return out


def _bound_names(target: cst.BaseExpression) -> list[str]:
    """Names a `for` target binds, in source order (`x, (y, *z)` -> x, y, z)."""
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, cst.Tuple | cst.List):
        return [n for el in target.elements for n in _bound_names(el.value)]
    if isinstance(target, cst.StarredElement):
        return _bound_names(target.value)
    return []  # an attribute or a subscript binds no name


def _index(e: cst.BaseExpression) -> cst.SubscriptElement:
    return cst.SubscriptElement(cst.Index(e))


def _short(node: cst.CSTNode) -> str:
    text = code(node).strip().replace("\n", " ")
    return text[:37] + "..." if len(text) > 40 else text
