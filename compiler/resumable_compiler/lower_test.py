"""Lowering of conditions that contain awaits (part of pass 3).

`jump_if(test, label, when)` jumps to `label` when `bool(test) == when` and
falls through otherwise. Like CPython's compilation of a condition, `and`,
`or`, `not` and comparison chains become jumps, so `__bool__` runs once per
operand and an operand that is not needed is never evaluated:

    if a and await b():        if not L.a: return 5
        ...                    return b()                  # await state
                               if not m.sent: return 5
"""

from __future__ import annotations

import libcst as cst

from .lower_expr import Expressions

__all__ = ["Tests"]


class Tests:
    def __init__(self, x: Expressions) -> None:
        self.x = x
        self.em = x.em

    def jump_if(self, test: cst.BaseExpression, label: object, *, when: bool) -> None:
        from .emitter import Label

        assert isinstance(label, Label)
        x, em = self.x, self.em
        if not x.has_await(test):
            em.jump_if(x.rw.expression(test), label, when=when)
        elif isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
            self.jump_if(test.expression, label, when=not when)
        elif isinstance(test, cst.BooleanOperation) and x.has_await(test.right):
            decides = isinstance(test.operator, cst.Or)  # the left value that settles it
            if when == decides:
                self.jump_if(test.left, label, when=when)
                self.jump_if(test.right, label, when=when)
            else:
                skip = em.new_label()
                self.jump_if(test.left, skip, when=decides)
                self.jump_if(test.right, label, when=when)
                em.mark(skip)
        elif isinstance(test, cst.Comparison) and any(
            x.has_await(c.comparator) for c in test.comparisons
        ):
            self._chain(test, label, when)
        else:
            em.jump_if(x.value(test), label, when=when)

    def _chain(self, test: cst.Comparison, label: object, when: bool) -> None:
        from .emitter import Label

        assert isinstance(label, Label)
        x, em = self.x, self.em
        comparisons = list(test.comparisons)
        skip = em.new_label() if when else None
        left_original: cst.BaseExpression = test.left
        left = x.value(test.left)
        for i, c in enumerate(comparisons):
            rest = comparisons[i:]
            if not any(x.has_await(r.comparator) for r in rest):
                tail = cst.Comparison(
                    left=left,
                    comparisons=[
                        r.with_changes(comparator=x.rw.expression(r.comparator)) for r in rest
                    ],
                )
                em.jump_if(tail, label, when=when)
                break
            left = x.stabilize(left, left_original)  # evaluated before anything to its right
            right = x.value(c.comparator)
            if i == len(comparisons) - 1:
                last = cst.Comparison(left=left, comparisons=[c.with_changes(comparator=right)])
                em.jump_if(last, label, when=when)
                break
            right = x.stabilize(right, c.comparator)
            one = cst.Comparison(left=left, comparisons=[c.with_changes(comparator=right)])
            if when:
                assert skip is not None
                em.jump_if(one, skip, when=False)
            else:
                em.jump_if(one, label, when=False)
            left, left_original = right, c.comparator
        if skip is not None:
            em.mark(skip)
