"""Lowering of `if`, `while` and `for` statements that contain awaits.

Each reads as its control flow. A `for` loop whose body awaits iterates a
checkpointable cursor (runtime/resumable/loops.py) held in a hidden local:

    for x in xs:            L._c1 = m.loop(L.xs, 3)
        await g(x)          head: if not L._c1.step(): return <end>
                                  L.x = L._c1.value
                                  ... the body, inside LoopEntry(end, head)
                                  return <head>
                            end:

A statement whose only await is in its first expression (an `if` test, a
`for` iterable, a `with` item) runs unchanged, with that value lowered.
"""

from __future__ import annotations

import libcst as cst

from .builder import Lowering
from .control import Label, LoopEntry
from .rewrite import attr, call, target_names
from .statements import assign_to

__all__ = ["loop_body", "lower_for", "lower_if", "lower_while", "replace_first"]

_LAZY_ITERABLES = ("enumerate", "zip", "reversed")


def lower_if(b: Lowering, node: cst.If) -> None:
    w = b.w
    if not any(b.has_await(part) for part in _branches(node)):
        # Only the first test awaits: the statement itself runs unchanged.
        replace_first(b, node, b.value(node.test), "test")
        return
    end = w.new_label()
    orelse = w.new_label() if node.orelse is not None else end
    b.jump_if(node.test, orelse, when=False)
    b.body(node.body)
    if node.orelse is None:
        w.mark(end)
        return
    w.jump(end)
    w.mark(orelse)
    if isinstance(node.orelse, cst.If):
        w.note(node.orelse)
        if b.has_await(node.orelse):
            lower_if(b, node.orelse)
        else:
            b.verbatim(node.orelse)
    else:
        b.body(node.orelse.body)
    w.mark(end)


def replace_first(
    b: Lowering, node: cst.If | cst.For | cst.With, value: cst.BaseExpression, field: str
) -> None:
    """Emit `node` unchanged except for its first expression, already lowered."""
    b.w.ensure_open()
    [rewritten] = b.rw.statement(node)
    if isinstance(rewritten, cst.With):
        first = rewritten.items[0].with_changes(item=value)
        b.w.emit(rewritten.with_changes(items=[first, *rewritten.items[1:]]))
    else:
        b.w.emit(rewritten.with_changes(**{field: value}))


def lower_while(b: Lowering, node: cst.While) -> None:
    w = b.w
    head, end = w.new_label(), w.new_label()
    orelse = w.new_label() if node.orelse is not None else end
    w.mark(head)
    if not _always_true(node.test):
        b.jump_if(node.test, orelse, when=False)
    loop_body(b, node.body, end, head)
    if node.orelse is not None:
        w.mark(orelse)
        b.body(node.orelse.body)
    w.mark(end)


def loop_body(
    b: Lowering,
    body: cst.BaseSuite,
    end: Label,
    head: Label,
    bound: set[str] | frozenset[str] = frozenset(),
) -> None:
    """A loop's body: break goes to `end`, continue and the end of the body to `head`."""
    with b.w.inside(LoopEntry(brk=end, cont=head)):
        b.body(body, bound)
    b.w.jump(head)


def lower_for(b: Lowering, node: cst.For) -> None:
    w = b.w
    if not (b.has_await(node.body) or b.has_await(node.orelse) or b.has_await(node.target)):
        replace_first(b, node, b.value(node.iter), "iter")
        return
    line = w.line
    cursor = w.hidden_var("c", f"the position of the for-loop at line {line}")
    iterable = loop_iterable(b, node.iter)
    w.assign(cursor, call(attr(w.m, "loop"), iterable, cst.Integer(str(line))))
    head, end = w.new_label(), w.new_label()
    orelse = w.new_label() if node.orelse is not None else end
    w.mark(head)
    w.jump_if(call(cst.Attribute(w.local(cursor), cst.Name("step"))), orelse, when=False)
    item: cst.BaseExpression = cst.Attribute(w.local(cursor), cst.Name("value"))
    if b.has_await(node.target):  # the cursor keeps its position, not its value
        item = b.spill(item, node.target)
    assign_to(b, node.target, item)
    loop_body(b, node.body, end, head, bound=target_names(node.target))
    if node.orelse is not None:
        w.mark(orelse)
        b.body(node.orelse.body)
    w.mark(end)


def loop_iterable(b: Lowering, e: cst.BaseExpression) -> cst.BaseExpression:
    """The iterable of a for-loop that awaits; `enumerate(...)`, `zip(...)`
    and `reversed(...)` become `m.lazy(...)` so the runtime can build a
    cursor over what they wrap."""
    if not _is_lazy(b, e):
        return b.value(e)
    assert isinstance(e, cst.Call)
    args = [a for a in e.args if a.keyword is None and a.star != "**"] + [
        a for a in e.args if a.keyword is not None or a.star == "**"
    ]
    parts: list[cst.BaseExpression] = [e.func, *[a.value for a in args]]
    stars = ["", *[a.star for a in args]]
    last = max((i for i, p in enumerate(parts) if b.has_await(p)), default=-1)
    values: list[cst.BaseExpression] = []
    for i, (part, star) in enumerate(zip(parts, stars, strict=True)):
        v = loop_iterable(b, part) if not star and _is_lazy(b, part) else b.value(part)
        if i < last:
            v = b.stabilize(v, part, star)
        values.append(v)
    lazy_args = [cst.Arg(values[0])] + [
        a.with_changes(value=v) for a, v in zip(args, values[1:], strict=True)
    ]
    return cst.Call(attr(b.w.m, "lazy"), lazy_args)


def _is_lazy(b: Lowering, e: cst.BaseExpression) -> bool:
    return (
        isinstance(e, cst.Call)
        and isinstance(e.func, cst.Name)
        and e.func.value in _LAZY_ITERABLES
        and e.func.value not in b.analysis.locals
        and e.func.value not in b.analysis.parsed.module_names
    )


def _branches(node: cst.If) -> list[cst.CSTNode]:
    out: list[cst.CSTNode] = [node.body]
    if node.orelse is not None:
        out.append(node.orelse)
    return out


def _always_true(test: cst.BaseExpression) -> bool:
    return (isinstance(test, cst.Name) and test.value == "True") or (
        isinstance(test, cst.Integer) and test.value not in ("0", "0x0", "0o0", "0b0")
    )
