"""Lowering of `try/except*` statements that contain awaits.

The body raises into `_x1`; then each clause, in order, evaluates its type,
takes its part of what is left (`m.star_match`, CPython's own matching) and,
if it matched anything, runs its handler. An exception leaving a handler is
recorded and the next clause runs. At the end `m.star_outcome` runs an
await-free skeleton of the statement, so CPython itself combines what the
handlers raised with what no clause matched (runtime/resumable/groups.py):

    try:                        body:    (on_error -> dispatch, L._x1)
        await a()               clause:  L._t2 = ValueError
    except* ValueError as e:             L._t3, L._t1 = m.star_match(L._t1, L._t2)
        await b(e)                       if L._t3 is None: return <next clause>
                                handler: (handling _t3; on_error -> cleanup, L._t4)
                                end:     L._t9 = m.star_outcome(L._x1, ...)
                                         if L._t9 is not None: return m.throw(L._t9)
"""

from __future__ import annotations

import functools

import libcst as cst

from .builder import Lowering
from .control import DispatchEntry, Label, StarHandlerEntry, TryEntry
from .exceptions import Complete, try_finally
from .rewrite import attr, call

__all__ = ["lower_try_star"]


def lower_try_star(b: Lowering, node: cst.TryStar) -> None:
    final = node.finalbody
    if final is None:
        _try_star(b, node)
    else:
        try_finally(b, lambda complete: _try_star(b, node, complete), lambda: b.body(final.body))


def _try_star(b: Lowering, node: cst.TryStar, complete: Complete | None = None) -> None:
    w = b.w
    after: Label | None = None
    if complete is None:
        after = w.new_label()
        complete = functools.partial(w.jump, after)
    line = w.line
    exc = w.hidden_var("x", f"the exception handled by the try/except* at line {line}")
    rest = w.hidden_var("t", f"what the except* clauses of line {line} have not matched yet")
    dispatch = w.new_label()
    with w.inside(TryEntry(dispatch=dispatch, var=exc)):
        b.body(node.body)
    if node.orelse is not None:
        b.body(node.orelse.body)
    complete()
    specs, matches, raised = [], [], []
    for handler in node.handlers:
        at = b.analysis.parsed.line_of(handler)
        specs.append(w.hidden_var("t", f"the type of the except* clause at line {at}"))
        matches.append(w.hidden_var("t", f"what the except* clause at line {at} handles"))
        raised.append(w.hidden_var("t", f"what left the except* clause at line {at}"))
    with w.inside(DispatchEntry(var=exc), start=dispatch):
        w.assign(rest, w.local(exc))
        for r in raised:
            w.assign(r, cst.Name("None"))
    for handler, spec, matched, out in zip(node.handlers, specs, matches, raised, strict=True):
        _clause(b, handler, exc, rest, spec, matched, out)
    end = w.new_label()
    with w.inside(DispatchEntry(var=exc)):
        result = w.hidden_var("t", f"the exception leaving the try/except* at line {line}")

        def names(xs: list[str]) -> cst.Tuple:
            return cst.Tuple([cst.Element(w.local(x)) for x in xs])

        args = (w.local(exc), names(specs), names(matches), names(raised))
        w.assign(result, call(attr(w.m, "star_outcome"), *args))
        w.if_then(
            cst.Comparison(w.local(result), [cst.ComparisonTarget(cst.IsNot(), cst.Name("None"))]),
            [w.throw(w.local(result))],
        )
        w.jump(end)
    w.mark(end)
    complete()
    if after is not None:
        w.mark(after)


def _clause(
    b: Lowering,
    handler: cst.ExceptStarHandler,
    exc: str,
    rest: str,
    spec: str,
    matched: str,
    out: str,
) -> None:
    """One `except*` clause: match, then the handler if anything matched."""
    w = b.w
    w.note(handler)
    name = (
        handler.name.name.value
        if handler.name is not None and isinstance(handler.name.name, cst.Name)
        else None
    )
    body, cleanup, following = w.new_label(), w.new_label(), w.new_label()
    with w.inside(DispatchEntry(var=exc)):
        w.assign(spec, b.value(handler.type))
        pair = cst.Tuple([cst.Element(w.local(matched)), cst.Element(w.local(rest))])
        split = call(attr(w.m, "star_match"), w.local(rest), w.local(spec))
        w.emit_small(cst.Assign([cst.AssignTarget(pair)], split))
        w.jump_if(
            cst.Comparison(w.local(matched), [cst.ComparisonTarget(cst.Is(), cst.Name("None"))]),
            following,
            when=True,
        )
        if name is not None:
            w.emit_small(cst.Assign([cst.AssignTarget(b.name_target(name))], w.local(matched)))
        w.jump(body)
    entry = StarHandlerEntry(var=matched, outcome=out, cleanup=cleanup, name=name)
    with w.inside(entry, start=body):
        b.body(handler.body)
        if name is not None and not w.current.closed:
            b.unbind(name)
        w.jump(following)
    with w.inside(DispatchEntry(var=exc), start=cleanup):
        if name is not None:
            b.unbind(name)
        w.jump(following)
    w.mark(following)
