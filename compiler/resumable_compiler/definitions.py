"""Lowering of definitions whose header awaits: a lambda's defaults, a nested
function's decorators and defaults, a class's decorators, bases and keywords.

CPython evaluates a header where the definition stands, in order -- the
decorators top to bottom, then the defaults of positional parameters, then
those of keyword-only ones (for a class: its decorators, then its bases and
keywords) -- and only then makes the function or class. So the parts before
an await are spilled, and the definition is emitted unchanged after it, with
the lowered parts in place (its body rewritten as any nested body is):

    @deco                          state 0:  L._t1 = L.deco
    def add(x, n=await g()):       state 1:  return g()                (await)
        return x + n + k           state 2:  @L._t1
                                             def add(x, n=m.sent):
                                                 return x + n + L.k
                                             L.add = add

An await in an annotation is not supported (E12).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import libcst as cst

from .builder import Lowering

__all__ = ["lower_definition", "lower_lambda"]


def lower_lambda(b: Lowering, e: cst.Lambda) -> cst.BaseExpression:
    values = iter(b.operands([(p.default, "") for p in _defaulted(e.params)]))
    made = b.rw.expression(e)
    assert isinstance(made, cst.Lambda)
    return made.with_changes(params=_with_defaults(made.params, values))


def lower_definition(b: Lowering, stmt: cst.FunctionDef | cst.ClassDef) -> None:
    parts: list[tuple[cst.BaseExpression | None, str]]
    parts = [(d.decorator, "") for d in stmt.decorators]
    if isinstance(stmt, cst.FunctionDef):
        parts += [(p.default, "") for p in _defaulted(stmt.params)]
    else:
        parts += [(a.value, a.star) for a in (*stmt.bases, *stmt.keywords)]
    values = iter(b.operands(parts))
    made, *after = b.rw.statement(stmt)
    assert isinstance(made, cst.FunctionDef | cst.ClassDef)
    decorators = [d.with_changes(decorator=next(values)) for d in made.decorators]
    if isinstance(made, cst.FunctionDef):
        made = made.with_changes(decorators=decorators, params=_with_defaults(made.params, values))
    else:
        made = made.with_changes(
            decorators=decorators,
            bases=[a.with_changes(value=next(values)) for a in made.bases],
            keywords=[a.with_changes(value=next(values)) for a in made.keywords],
        )
    b.w.ensure_open()
    for out in (made, *after):
        b.w.emit(out)


def _defaulted(params: cst.Parameters) -> list[cst.Param]:
    """The parameters with a default, in the order CPython evaluates them."""
    return [p for p in _all(params) if p.default is not None]


def _all(params: cst.Parameters) -> Sequence[cst.Param]:
    return [*params.posonly_params, *params.params, *params.kwonly_params]


def _with_defaults(
    params: cst.Parameters, values: Iterator[cst.BaseExpression | None]
) -> cst.Parameters:
    def put(group: Sequence[cst.Param]) -> list[cst.Param]:
        return [p if p.default is None else p.with_changes(default=next(values)) for p in group]

    return params.with_changes(
        posonly_params=put(params.posonly_params),
        params=put(params.params),
        kwonly_params=put(params.kwonly_params),
    )
