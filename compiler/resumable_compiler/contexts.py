"""Lowering of `with` and `async with` statements, and of `async for` loops.

A `with` is lowered as the language reference expands it, on
`exceptions.try_finally` (as mypyc's transform_with builds on its try/finally):
the manager is a hidden local (`_w1`, held across checkpoints like any
other), `__enter__` and `__exit__` are looked up before `__enter__` is
called, and the block is protected by a finally whose record says how it
was left. The finally calls `__exit__` once, whichever way that was: with
the exception (type, value, traceback), suppressing it when the result is
true, or with `None, None, None` after the end of the block, a `return`, a
`break` or a `continue` (runtime/resumable/contexts.py has the helpers):

    with A() as a:              L._w1 = A()
        await step(a)           L._t1 = m.enter(L._w1)
                                  (protected: on_error -> finally, L._f1)
                                L.a = L._t1
                                return step(L.a)    ... L._f1 = None
                                  (finally, handling L._f1)
                                if m.exit(L._w1, L._f1): L._f1 = None
                                ... what the record says next

In an `async with`, the manager is checked for `__aenter__` and
`__aexit__` when it is stored (`m.async_manager`), and `__aenter__` and
`__aexit__` are await states of their own, the implicit awaits of the item (ir.ImplicitAwait): `__aexit__` is the
one await state of the finally, so every way out of the block reaches the
same site. Several items nest, in order. A `with` whose block does not
await stays as it is (only its first expression may be lowered): so does
the rest of a `with` from the first item after which nothing awaits.

An `async for` holds its iterator in a hidden local (`_i1`, checked at loop
entry to be storable) and awaits `__anext__` at the head of every step:

    async for x in xs:          L._i1 = m.aloop(L.xs, 3)
        ...                     head: return m.anext(L._i1)     (await state)
                                      if m.sent is m.STOP: return <else>
                                      L.x = m.sent      (a target that awaits:
                                                         `for`'s assign_to)
                                      ... the body (LoopEntry: break, continue)
                                      return <head>

`start_async_loop` and `next_item` are the pieces an async comprehension
builds on.
"""

from __future__ import annotations

from typing import cast

import libcst as cst

from .branches import loop_body, replace_first
from .builder import Lowering
from .control import FinallyBodyEntry, Label
from .exceptions import Complete, try_finally
from .rewrite import attr, call, target_names
from .statements import assign_to

__all__ = ["lower_async_for", "lower_with", "next_item", "start_async_loop"]


def lower_with(b: Lowering, node: cst.With) -> None:
    bound: set[str] = set()
    for item in node.items:
        if item.asname is not None:
            bound |= target_names(item.asname.name)
    _items(b, node, 0, bound)


def _items(b: Lowering, node: cst.With, i: int, bound: set[str]) -> None:
    """Items `i`, `i + 1`, ... of `node`, then its body."""
    if i == len(node.items):
        b.body(node.body, bound)
        return
    is_async = node.asynchronous is not None
    if not is_async and not (
        b.has_await(node.body) or any(b.has_await(x) for x in node.items[i + 1 :])
    ):
        # Nothing from here on awaits but this item's expression: it runs unchanged.
        rest = node if i == 0 else node.with_changes(items=node.items[i:])
        replace_first(b, rest, b.value(node.items[i].item), "items")
        return
    w = b.w
    item = node.items[i]
    line = w.line
    manager = w.hidden_var("w", f"the manager of the `with` on line {line}")
    value = b.value(item.item)
    w.assign(manager, call(attr(w.m, "async_manager"), value) if is_async else value)
    if is_async:
        site = b.analysis.implicit_await(item, "__aenter__")
        value = w.await_(site, call(attr(w.m, "aenter"), w.local(manager)))
    else:
        value = call(attr(w.m, "enter"), w.local(manager))
    # What __enter__ returned waits in a temporary: the `as` target is bound
    # inside the protected block (an exception binding it reaches __exit__).
    entered = ""
    if item.asname is not None:
        entered = w.hidden_var("t", f"what the manager of the `with` on line {line} entered")
        w.assign(entered, value)
    elif not is_async:
        w.emit_small(cst.Expr(value))

    def body(complete: Complete) -> None:
        if item.asname is not None:
            target = cast(cst.BaseAssignTargetExpression, b.rw.expression(item.asname.name))
            w.emit_small(cst.Assign([cst.AssignTarget(target)], w.local(entered)))
        _items(b, node, i + 1, bound)

    def final() -> None:
        w.note(node)  # __exit__ runs at the `with` line, as in CPython's tracebacks
        record = _record(b)
        if is_async:
            site = b.analysis.implicit_await(item, "__aexit__")
            w.await_(site, call(attr(w.m, "aexit"), w.local(manager), w.local(record)))
            test: cst.BaseExpression = cst.BooleanOperation(
                call(attr(w.m, "raising"), w.local(record)), cst.And(), w.sent()
            )
        else:
            test = call(attr(w.m, "exit"), w.local(manager), w.local(record))
        # A true result of __exit__ suppresses the exception: go on after the block.
        w.if_then(test, [cst.Assign([cst.AssignTarget(w.local(record))], cst.Name("None"))])

    try_finally(b, body, final)


def _record(b: Lowering) -> str:
    """The record of the finally block being lowered: how its block was left."""
    entry = b.w.entries[-1]
    assert isinstance(entry, FinallyBodyEntry)
    return entry.record


def lower_async_for(b: Lowering, node: cst.For) -> None:
    w = b.w
    iterator = start_async_loop(b, b.value(node.iter))
    head, end = w.new_label(), w.new_label()
    orelse = w.new_label() if node.orelse is not None else end
    w.mark(head)
    item = next_item(b, node, iterator, orelse)
    if b.has_await(node.target):
        # The target's awaits run at every step, after `__anext__` (as in a
        # `for`): the item waits in a temporary, `m.sent` is theirs then.
        assign_to(b, node.target, b.spill(item, node.target))
    else:
        target = cast(cst.BaseAssignTargetExpression, b.rw.expression(node.target))
        w.emit_small(cst.Assign([cst.AssignTarget(target)], item))
    loop_body(b, node.body, end, head, bound=target_names(node.target))
    if node.orelse is not None:
        w.mark(orelse)
        b.body(node.orelse.body)
    w.mark(end)


def start_async_loop(b: Lowering, iterable: cst.BaseExpression) -> str:
    """The hidden variable holding the iterator of an `async for` (or of an
    async comprehension's `for`) over `iterable`, already lowered: CPython's
    `__aiter__`, and the check that a checkpoint can hold the iterator."""
    w = b.w
    line = w.line
    iterator = w.hidden_var("i", f"the iterator of the `async for` on line {line}")
    w.assign(iterator, call(attr(w.m, "aloop"), iterable, cst.Integer(str(line))))
    return iterator


def next_item(
    b: Lowering, node: cst.For | cst.CompFor, iterator: str, exhausted: Label
) -> cst.Attribute:
    """The await of `__anext__` of `node`'s iterator (its implicit await):
    jumps to `exhausted` at the end of the iteration; returns the item."""
    w = b.w
    site = b.analysis.implicit_await(node, "__anext__")
    sent = w.await_(site, call(attr(w.m, "anext"), w.local(iterator)))
    stop = cst.Comparison(sent, [cst.ComparisonTarget(cst.Is(), attr(w.m, "STOP"))])
    w.jump_if(stop, exhausted, when=True)
    return w.sent()
