"""Lowering of `try` statements that contain awaits, and the try/finally
helper other constructs build on (mypyc's transform_try_finally_stmt).

Exceptions are routed by tables, never by Python's own `try`: a state inside
a try body lists the dispatch state in `on_error`, the runtime stores the
exception in the hidden variable and runs the dispatch:

    try:                      body:      (on_error -> dispatch, L._x1)
        await a()                        return a()
    except E as e:            dispatch:  if m.matches(L._x1, E):
        await b()                            L.e = L._x1; return <handler>
                                         return m.throw(L._x1)
                              handler:   return b()   (handled: _x1)
                                         L.e = None; del L.e; return <after>

A finally block runs with a record of what comes after it: None (go on), an
exception (raise it again), a state number (a break or continue that went
through it) or RETURN. The block's end re-issues what the record says.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import libcst as cst

from .builder import Lowering
from .control import (
    DispatchEntry,
    FinallyBodyEntry,
    FinallyEntry,
    HandlerEntry,
    Label,
    TryEntry,
    finally_record,
)
from .rewrite import attr, call

__all__ = ["lower_try", "try_except", "try_finally"]

#: Emits the code that leaves a protected body normally.
Complete = Callable[[], None]


def lower_try(b: Lowering, node: cst.Try) -> None:
    final = node.finalbody
    if final is None:
        try_except(b, node)
    else:
        try_finally(b, lambda complete: try_except(b, node, complete), lambda: b.body(final.body))


def try_finally(b: Lowering, body: Callable[[Complete], None], final: Callable[[], None]) -> None:
    """`try: <body> finally: <final>`. `body` gets the function that
    completes it normally (through the finally block) and must end every path
    it emits with a jump: that function, a raise, or a jump through the entry."""
    w = b.w
    record = w.hidden_var("f", f"what happens after the finally block of line {w.line}")
    fin = FinallyEntry(entry=w.new_label(), record=record)
    after = w.new_label()

    def complete() -> None:
        if not w.current.closed:
            w.assign(record, cst.Name("None"))
            w.jump(fin.entry)

    with w.inside(fin):
        body(complete)
        complete()
    with w.inside(FinallyBodyEntry(record), start=fin.entry):
        final()
        if not w.current.closed:
            _end_finally(b, fin, after)
    w.mark(after)


def _end_finally(b: Lowering, fin: FinallyEntry, after: Label) -> None:
    """Go on with what was pending when the finally block started."""
    w = b.w
    record = w.local(fin.record)
    w.if_then(
        cst.Comparison(record, [cst.ComparisonTarget(cst.Is(), cst.Name("None"))]),
        [cst.Return(w.ref(after))],
    )
    w.if_then(call(attr(w.m, "raising"), record), [w.throw(record)])
    for jump in list(fin.pending):
        test = cst.Comparison(record, [cst.ComparisonTarget(cst.Equal(), finally_record(w, jump))])
        w.if_then(test, w.leave(jump))
    w.emit_small(cst.Raise(call(attr(w.m, "bad_record"), record)))


def try_except(b: Lowering, node: cst.Try, complete: Complete | None = None) -> None:
    """The try statement's body, else and except clauses; `complete` leaves
    it normally (by default: to the statement after it)."""
    w = b.w
    after: Label | None = None
    if complete is None:
        after = w.new_label()
        complete = functools.partial(w.jump, after)

    exc = (
        w.hidden_var("x", f"the exception handled by the try at line {w.line}")
        if node.handlers
        else ""
    )
    dispatch = w.new_label()
    if node.handlers:
        with w.inside(TryEntry(dispatch=dispatch, var=exc)):
            b.body(node.body)
    else:
        b.body(node.body)
    if node.orelse is not None:
        b.body(node.orelse.body)
    complete()
    if node.handlers:
        labels = _dispatch(b, node, exc, dispatch)
        for handler, label in zip(node.handlers, labels, strict=True):
            _handler(b, handler, label, exc, complete)
    if after is not None:
        w.mark(after)


def _dispatch(b: Lowering, node: cst.Try, exc: str, dispatch: Label) -> list[Label]:
    """The state matching the exception in `exc` against the except clauses."""
    w = b.w
    labels = []
    with w.inside(DispatchEntry(var=exc), start=dispatch):
        for handler in node.handlers:
            label = w.new_label()
            labels.append(label)
            w.note(handler)
            body: list[cst.BaseSmallStatement] = []
            if handler.name is not None:
                name = handler.name.name
                assert isinstance(name, cst.Name)
                target = b.name_target(name.value)
                body.append(cst.Assign([cst.AssignTarget(target)], w.local(exc)))
            body.append(cst.Return(w.ref(label)))
            if handler.type is None:
                w.emit_small(*body)
                break
            test = call(attr(w.m, "matches"), w.local(exc), b.value(handler.type))
            w.emit(cst.If(test=test, body=cst.IndentedBlock([cst.SimpleStatementLine(body)])))
        if not w.current.closed:
            w.emit_small(w.throw(w.local(exc)))
    return labels


def _handler(
    b: Lowering, handler: cst.ExceptHandler, label: Label, exc: str, complete: Complete
) -> None:
    w = b.w
    name = (
        handler.name.name.value
        if handler.name is not None and isinstance(handler.name.name, cst.Name)
        else None
    )
    cleanup = w.new_label() if name is not None else None
    is_global = name is not None and name not in b.analysis.locals
    entry = HandlerEntry(var=exc, name=name, cleanup=cleanup, global_name=is_global)
    with w.inside(entry, start=label):
        b.body(handler.body)
        if not w.current.closed:
            if name is not None:
                b.unbind(name)
            complete()
    if cleanup is not None and name is not None:
        # An exception leaving the handler: CPython's `e = None; del e`, then on.
        w.mark(cleanup)
        b.unbind(name)
        w.emit_small(w.throw(w.local(exc)))
