"""Lowering of conditions that contain awaits (jump context).

`lower_condition(b, test, label, when)` jumps to `label` when
`bool(test) == when` and falls through otherwise. Like CPython's compilation
of a condition, `and`, `or`, `not` and comparison chains become jumps, so
`__bool__` runs once per operand and an operand that is not needed is never
evaluated:

    if a and await b():        if not L.a: return 5
        ...                    return b()                  # await state
                               if not m.sent: return 5
"""

from __future__ import annotations

import libcst as cst

from .builder import Lowering
from .control import Label

__all__ = ["lower_condition"]


def lower_condition(b: Lowering, test: cst.BaseExpression, label: Label, when: bool) -> None:
    w = b.w
    if not b.has_await(test):
        w.jump_if(b.rw.expression(test), label, when=when)
    elif isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        b.jump_if(test.expression, label, when=not when)
    elif isinstance(test, cst.BooleanOperation) and b.has_await(test.right):
        decides = isinstance(test.operator, cst.Or)  # the left value that settles it
        if when == decides:
            b.jump_if(test.left, label, when=when)
            b.jump_if(test.right, label, when=when)
        else:
            skip = w.new_label()
            b.jump_if(test.left, skip, when=decides)
            b.jump_if(test.right, label, when=when)
            w.mark(skip)
    elif isinstance(test, cst.Comparison) and any(
        b.has_await(c.comparator) for c in test.comparisons
    ):
        _chain(b, test, label, when)
    else:
        w.jump_if(b.value(test), label, when=when)


def _chain(b: Lowering, test: cst.Comparison, label: Label, when: bool) -> None:
    """`a < await x < c` in jump context: each comparison once, short-circuited."""
    w = b.w
    comparisons = list(test.comparisons)
    skip = w.new_label() if when else None
    left_original: cst.BaseExpression = test.left
    left = b.value(test.left)
    for i, c in enumerate(comparisons):
        rest = comparisons[i:]
        if not any(b.has_await(r.comparator) for r in rest):
            tail = cst.Comparison(
                left=left,
                comparisons=[
                    r.with_changes(comparator=b.rw.expression(r.comparator)) for r in rest
                ],
            )
            w.jump_if(tail, label, when=when)
            break
        left = b.stabilize(left, left_original)  # evaluated before anything to its right
        right = b.value(c.comparator)
        if i == len(comparisons) - 1:
            last = cst.Comparison(left=left, comparisons=[c.with_changes(comparator=right)])
            w.jump_if(last, label, when=when)
            break
        right = b.stabilize(right, c.comparator)
        one = cst.Comparison(left=left, comparisons=[c.with_changes(comparator=right)])
        if when:
            assert skip is not None
            w.jump_if(one, skip, when=False)
        else:
            w.jump_if(one, label, when=False)
        left, left_original = right, c.comparator
    if skip is not None:
        w.mark(skip)
