"""Pass 3, lower: an analyzed function -> Lowered (a flat list of states).

A statement without an await is emitted unchanged (names rewritten, see
rewrite.py) inside the current state, so its semantics are CPython's own. A
statement with an await is taken apart by the function lowering its kind:

    async def f(xs):                 state 0: L._c1 = m.loop(L.xs, 3)
        total = 0                             L.total = 0          (order kept)
        for x in xs:                 state 1: if not L._c1.step(): return 4
            total += await g(x)               L.x = L._c1.value
        return total                 state 2: return g(L.x)         (await: checkpoint first)
                                     state 3: L.total += m.sent; return 1
                                     state 4: return m.done(L.total)

This module only dispatches: the tables below say which function lowers
each kind of node. Start reading at builder.py (the object they all work
on), then states.py (the listing) and control.py (where break, continue,
return and exceptions go). To add a construct: write its `lower_<kind>` in
the module for its family and add it to a table here.
"""

from __future__ import annotations

from typing import Any

import libcst as cst

from . import (
    branches,
    comprehensions,
    contexts,
    definitions,
    exceptions,
    expressions,
    groups,
    matching,
    statements,
)
from .builder import Lowering, Tables
from .conditions import lower_condition
from .ir import Analysis, Lowered
from .numbering import number_states

__all__ = ["lower"]


def _for(b: Lowering, node: cst.For) -> None:
    """`for` and `async for` are one node type."""
    if node.asynchronous is not None:
        contexts.lower_async_for(b, node)
    else:
        branches.lower_for(b, node)


_STATEMENTS: dict[type, Any] = {
    cst.SimpleStatementLine: statements.lower_simple_line,
    cst.Expr: statements.lower_expression_statement,
    cst.Assign: statements.lower_assign,
    cst.AnnAssign: statements.lower_ann_assign,
    cst.AugAssign: statements.lower_aug_assign,
    cst.Return: statements.lower_return,
    cst.Raise: statements.lower_raise,
    cst.Assert: statements.lower_assert,
    cst.Del: statements.lower_del,
    cst.If: branches.lower_if,
    cst.While: branches.lower_while,
    cst.For: _for,
    cst.With: contexts.lower_with,
    cst.Try: exceptions.lower_try,
    cst.TryStar: groups.lower_try_star,
    cst.Match: matching.lower_match,
    cst.FunctionDef: definitions.lower_definition,
    cst.ClassDef: definitions.lower_definition,
}

_EXPRESSIONS: dict[type, Any] = {
    cst.Await: expressions.lower_await,
    cst.Call: expressions.lower_call,
    cst.Attribute: expressions.lower_attribute,
    cst.Subscript: expressions.lower_subscript,
    cst.BinaryOperation: expressions.lower_binary,
    cst.UnaryOperation: expressions.lower_unary,
    cst.BooleanOperation: expressions.lower_boolean,
    cst.IfExp: expressions.lower_ifexp,
    cst.Comparison: expressions.lower_comparison,
    cst.NamedExpr: expressions.lower_named,
    cst.Tuple: expressions.lower_elements,
    cst.List: expressions.lower_elements,
    cst.Set: expressions.lower_elements,
    cst.Dict: expressions.lower_dict,
    cst.ListComp: comprehensions.lower_comprehension,
    cst.SetComp: comprehensions.lower_comprehension,
    cst.DictComp: comprehensions.lower_comprehension,
    cst.GeneratorExp: expressions.lower_comprehension,
    cst.ConcatenatedString: expressions.lower_concatenated,
    cst.FormattedString: expressions.lower_fstring,
    cst.Lambda: definitions.lower_lambda,
}

_TABLES = Tables(_STATEMENTS, _EXPRESSIONS, lower_condition)


def lower(analysis: Analysis) -> Lowered:
    b = Lowering(analysis, _TABLES)
    body = list(analysis.statements(analysis.function.node.body))
    if body and _is_docstring(body[0]):
        body = body[1:]  # evaluating it does nothing
    b.block(body)
    w = b.w
    if not w.current.closed:
        w.emit_small(w.finish_with(cst.Name("None")))
        w.close()
    return Lowered(
        analysis=analysis,
        states=number_states(w.drafts, w.marked, w.placeholders, analysis.awaits),
        hidden=dict(w.hidden),
        errors=tuple(b.errors),
    )


def _is_docstring(stmt: cst.BaseStatement) -> bool:
    """CPython's rule: a first statement that is a `str` constant (plain
    strings, implicitly concatenated or not; never bytes, never an f-string,
    which is evaluated). A line holding more than the string is kept whole:
    evaluating the string there does nothing."""
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and _is_str_constant(stmt.body[0].value)
    )


def _is_str_constant(e: cst.BaseExpression) -> bool:
    if isinstance(e, cst.ConcatenatedString):
        return _is_str_constant(e.left) and _is_str_constant(e.right)
    return isinstance(e, cst.SimpleString) and "b" not in e.prefix.lower()
