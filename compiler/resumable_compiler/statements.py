"""Lowering of simple statements that contain awaits: one function per kind.

The value is lowered first (its awaits become earlier states), then the
statement runs in the current state with the lowered value in its place:

    total += await price(x)      state 2: return price(L.x)     (await state)
                                 state 3: L.total += m.sent

Targets keep CPython's order: the value is computed before any target part,
and an augmented target's parts and current value before the value's await.
"""

from __future__ import annotations

from typing import Any, cast

import libcst as cst

from .builder import Lowering, is_constant, walrus_targets
from .control import JumpKind
from .rewrite import attr, call

__all__ = [
    "lower_ann_assign",
    "lower_assert",
    "lower_assign",
    "lower_aug_assign",
    "lower_del",
    "lower_expression_statement",
    "lower_raise",
    "lower_return",
    "lower_simple_line",
]


def lower_simple_line(b: Lowering, line: cst.SimpleStatementLine) -> None:
    for small in line.body:
        b.statement(small)


def lower_expression_statement(b: Lowering, small: cst.Expr) -> None:
    value = b.value(small.value)
    if not (value in b.w.sent_nodes or b.is_hidden(value)):
        b.w.emit_small(cst.Expr(value))


def lower_assign(b: Lowering, small: cst.Assign) -> None:
    targets = [t.target for t in small.targets]
    if not any(b.has_await(t) for t in targets):
        value = b.value(small.value)
        b.w.emit_small(cst.Assign([_target(b.rw.expression(t)) for t in targets], value))
        return
    # The value is computed first, then each target from left to right.
    value = b.spill(b.value(small.value), small.value)
    for target in targets:
        assign_to(b, target, value)


def assign_to(b: Lowering, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
    """Store `value` (already computed) into `target`, whose parts may await."""
    w = b.w
    if not b.has_await(target):
        w.emit_small(cst.Assign([_target(b.rw.expression(target))], value))
    elif isinstance(target, cst.Attribute):
        obj = b.value(target.value)
        w.emit_small(cst.Assign([_target(target.with_changes(value=obj))], value))
    elif isinstance(target, cst.Subscript):
        sub = b.value(target)
        w.emit_small(cst.Assign([_target(sub)], value))
    elif isinstance(target, cst.Tuple | cst.List):
        # Unpack into temporaries first (CPython unpacks before any store).
        names: list[tuple[cst.BaseExpression, cst.Attribute]] = []
        elements: list[cst.BaseElement] = []
        for el in target.elements:
            name = w.hidden_var("t", f"an unpacked value (line {w.line})")
            local = w.local(name)
            names.append((el.value, local))
            elements.append(
                cst.StarredElement(local)
                if isinstance(el, cst.StarredElement)
                else cst.Element(local)
            )
        w.emit_small(cst.Assign([cst.AssignTarget(cst.Tuple(elements))], value))
        for sub_target, local in names:
            assign_to(b, sub_target, local)
    else:
        b.unsupported(target, "this assignment target")


def lower_ann_assign(b: Lowering, small: cst.AnnAssign) -> None:
    # Annotations of a function's variables are never evaluated.
    if small.value is not None:
        lower_assign(b, cst.Assign([cst.AssignTarget(small.target)], small.value))
        return
    # Without a value CPython still evaluates (and discards) the parts of an
    # attribute or subscript target, in order: `o.a: T` evaluates `o`;
    # `d[i]: T` evaluates `d`, then `i` (a slice's bounds and a tuple's
    # elements one by one: no slice or tuple is built, nothing is looked up).
    target = small.target
    if isinstance(target, cst.Attribute):
        _evaluate(b, target.value)
    elif isinstance(target, cst.Subscript):
        _evaluate(b, target.value)
        for element in target.slice:
            _evaluate_subscript(b, element.slice)


def _evaluate_subscript(b: Lowering, part: cst.BaseSlice | cst.BaseExpression) -> None:
    """CPython's check_ann_subscr: a subscript's parts of an annotated target."""
    if isinstance(part, cst.Slice):
        for bound in (part.lower, part.upper, part.step):
            if bound is not None:
                _evaluate(b, bound)
    elif isinstance(part, cst.Index):
        _evaluate_subscript(b, part.value)
    elif isinstance(part, cst.Tuple):  # `d[(a, b)]` is `d[a, b]`
        for el in part.elements:
            _evaluate_subscript(b, el.value)
    else:
        assert isinstance(part, cst.BaseExpression)
        _evaluate(b, part)


def _evaluate(b: Lowering, e: cst.BaseExpression) -> None:
    """Evaluate `e` for its effects only (CPython's `e; POP_TOP`)."""
    value = b.value(e)
    if is_constant(e) or value in b.w.sent_nodes or b.is_hidden(value):
        return
    if isinstance(e, cst.Name):
        if e.value not in b.analysis.locals or b.maybe_unbound(e.value):
            b.touch(value)  # an unbound local, a missing global
        return
    b.w.emit_small(cst.Expr(value))


def lower_aug_assign(b: Lowering, small: cst.AugAssign) -> None:
    target, w = small.target, b.w
    later = [small.value]
    if isinstance(target, cst.Name):
        rewritten = b.rw.expression(target)
        # Read after the await, unless the value or a closure (`nonlocal`,
        # called during the await) may rebind it.
        if target.value not in walrus_targets(later) and target.value not in b.analysis.rebound:
            if target.value in b.analysis.locals and b.maybe_unbound(target.value):
                b.touch(rewritten)  # an unbound name fails before the await
            w.emit_small(small.with_changes(target=rewritten, value=b.value(small.value)))
            return
        place: cst.BaseExpression = rewritten  # rebound in the value: read it first
    elif isinstance(target, cst.Attribute):
        obj = b.value(target.value)
        place = target.with_changes(value=obj)
    elif isinstance(target, cst.Subscript):
        place = b.value(target)
    else:
        b.unsupported(target, "this augmented assignment target")
        return
    if not b.has_await(small.value):
        w.emit_small(small.with_changes(target=place, value=b.rw.expression(small.value)))
        return
    # The target's parts and its current value are read before the await.
    if isinstance(place, cst.Attribute) and isinstance(target, cst.Attribute):
        place = place.with_changes(value=b.stabilize(place.value, target.value, later=later))
    elif isinstance(place, cst.Subscript) and isinstance(target, cst.Subscript):
        place = _stable_subscript(b, place, target, later)
    current = b.spill(place, target)
    w.emit_small(small.with_changes(target=current, value=b.value(small.value)))
    w.emit_small(cst.Assign([_target(place)], current))


def _stable_subscript(
    b: Lowering, place: cst.Subscript, original: cst.Subscript, later: list[cst.BaseExpression]
) -> cst.Subscript:
    def stable(lowered: cst.BaseExpression | None, orig: cst.BaseExpression | None) -> Any:
        if lowered is None or orig is None:
            return lowered
        return b.stabilize(lowered, orig, later=later)

    value = stable(place.value, original.value)
    elements = []
    for element, orig in zip(place.slice, original.slice, strict=True):
        s, o = element.slice, orig.slice
        if isinstance(s, cst.Index):
            assert isinstance(o, cst.Index)
            s = s.with_changes(value=stable(s.value, o.value))
        else:
            assert isinstance(s, cst.Slice) and isinstance(o, cst.Slice)
            s = s.with_changes(
                lower=stable(s.lower, o.lower),
                upper=stable(s.upper, o.upper),
                step=stable(s.step, o.step),
            )
        elements.append(element.with_changes(slice=s))
    return place.with_changes(value=value, slice=elements)


def lower_return(b: Lowering, small: cst.Return) -> None:
    value = b.value(small.value) if small.value is not None else cst.Name("None")
    for line in _lines(b.w.jump_code(JumpKind.RETURN, value)):
        b.w.emit_small(*line)


def lower_raise(b: Lowering, small: cst.Raise) -> None:
    cause = small.cause.item if small.cause is not None else None
    exc, cause_value = b.operands([(small.exc, ""), (cause, "")])
    new_cause = small.cause.with_changes(item=cause_value) if small.cause is not None else None
    b.w.emit_small(small.with_changes(exc=exc, cause=new_cause))


def lower_assert(b: Lowering, small: cst.Assert) -> None:
    w = b.w
    end = w.new_label()
    w.jump_if(cst.Name("__debug__"), end, when=False)
    b.jump_if(small.test, end, when=True)
    error = attr(w.m, "AssertionError")
    exc: cst.BaseExpression = error if small.msg is None else call(error, b.value(small.msg))
    w.emit_small(cst.Raise(exc))
    w.mark(end)


def lower_del(b: Lowering, small: cst.Del) -> None:
    targets = small.target.elements if isinstance(small.target, cst.Tuple | cst.List) else None
    for target in [el.value for el in targets] if targets is not None else [small.target]:
        if not b.has_await(target):
            b.w.emit_small(_del(b.rw.expression(target)))
        elif isinstance(target, cst.Subscript | cst.Attribute):
            b.w.emit_small(_del(b.value(target)))
        else:
            b.unsupported(target, "this del target")


def _lines(smalls: list[cst.BaseSmallStatement]) -> list[list[cst.BaseSmallStatement]]:
    """One line per small statement, except `e = None; del e` kept together."""
    out: list[list[cst.BaseSmallStatement]] = []
    for s in smalls:
        if isinstance(s, cst.Del) and out and isinstance(out[-1][-1], cst.Assign):
            out[-1].append(s)
        else:
            out.append([s])
    return out


def _target(e: cst.BaseExpression) -> cst.AssignTarget:
    """An assignment target (the lowering only builds valid ones)."""
    return cst.AssignTarget(cast(cst.BaseAssignTargetExpression, e))


def _del(e: cst.BaseExpression) -> cst.Del:
    return cst.Del(cast(cst.BaseDelTargetExpression, e))
