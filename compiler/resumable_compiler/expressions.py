"""Lowering of expressions that contain awaits: one function per kind.

Each `lower_<kind>(b, e)` emits whatever must happen before `e`'s value is
known (earlier states, awaits, spills) and returns an expression computing
it in the current state. Sub-expressions evaluated *before* an
await-containing sibling are spilled into hidden temporaries, in CPython's
order, so nothing is evaluated twice or out of order:

    y = f(a(), await b(), c)     state 0:  L._t1 = a()            # f: looked up after
                                 state 1:  return b()             # await state
                                 state 2:  L.y = f(L._t1, m.sent, L.c)

Not spilled: constants, temporaries, and plain locals not reassigned later in
the expression (they cannot change during the await). A method or subscript
callee is spilled as its receiver; the attribute is looked up after the await,
since bound methods cannot be checkpointed. `and`/`or`, conditional
expressions and comparison chains whose later operands await become branches
with a result temporary, keeping short-circuiting and single evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from .builder import Lowering
from .rewrite import attr, expand_debug

__all__ = [
    "lower_attribute",
    "lower_await",
    "lower_binary",
    "lower_boolean",
    "lower_call",
    "lower_comparison",
    "lower_comprehension",
    "lower_concatenated",
    "lower_dict",
    "lower_elements",
    "lower_fstring",
    "lower_ifexp",
    "lower_named",
    "lower_subscript",
    "lower_unary",
]


def lower_await(b: Lowering, e: cst.Await) -> cst.BaseExpression:
    operand = b.settle(b.value(e.expression))
    return b.w.await_(e, operand)


# -- calls, attributes, subscripts ------------------------------------------------


def lower_call(b: Lowering, e: cst.Call) -> cst.BaseExpression:
    # CPython evaluates the callee, the positional arguments (a `*x` is
    # iterated at its place, unless it is the only one), then the keyword
    # arguments (a `**x` is merged at its place).
    positional = [a for a in e.args if a.keyword is None and a.star != "**"]
    keywords = [a for a in e.args if a.keyword is not None or a.star == "**"]
    ordered = positional + keywords
    lone_star = len(positional) == 1 and positional[0].star == "*"
    func = e.func
    head: list[cst.BaseExpression]
    if isinstance(func, cst.Attribute):
        head = [func.value]
    elif isinstance(func, cst.Subscript):
        head = [func.value, *slice_parts(func)]
    else:
        head = [func]
    parts: list[tuple[cst.BaseExpression, str]] = [(h, "") for h in head]
    parts += [(a.value, "" if lone_star and a.star == "*" else a.star) for a in ordered]
    last = max((i for i, (p, _) in enumerate(parts) if b.has_await(p)), default=-1)
    values: list[cst.BaseExpression] = []
    for i, (part, star) in enumerate(parts):
        lowered = b.value(part)
        if i < last:
            if star == "**":
                merge = cst.Call(attr(b.w.m, "mapping"), [cst.Arg(lowered), *_callee(func, values)])
                lowered = b.spill(merge, part)
            else:
                later = [p for p, _ in parts[i + 1 :]]
                lowered = b.stabilize(lowered, part, star, later)
        values.append(lowered)
    n = len(head)
    new_func: cst.BaseExpression
    if isinstance(func, cst.Attribute):
        new_func = func.with_changes(value=values[0])
    elif isinstance(func, cst.Subscript):
        new_func = func.with_changes(value=values[0], slice=rebuild_slices(func, values[1:n]))
    else:
        new_func = values[0]
    args = [a.with_changes(value=v) for a, v in zip(ordered, values[n:], strict=True)]
    return e.with_changes(func=new_func, args=args)


def _callee(func: cst.BaseExpression, values: list[cst.BaseExpression]) -> list[cst.Arg]:
    """What names the callee in CPython's `f() argument after ** ...` message
    (evaluated only if that error happens)."""
    if isinstance(func, cst.Attribute):
        return [
            cst.Arg(values[0]),
            cst.Arg(cst.SimpleString(repr(func.attr.value)), keyword=cst.Name("attribute")),
        ]
    if (
        isinstance(func, cst.Subscript)
        and len(values) == 2
        and isinstance(func.slice[0].slice, cst.Index)
    ):
        return [cst.Arg(values[0]), cst.Arg(values[1], keyword=cst.Name("item"))]
    if isinstance(func, cst.Subscript):
        return []
    return [cst.Arg(values[0])]


def lower_attribute(b: Lowering, e: cst.Attribute) -> cst.BaseExpression:
    return e.with_changes(value=b.value(e.value))


def lower_subscript(b: Lowering, e: cst.Subscript) -> cst.BaseExpression:
    values = b.operands([(e.value, ""), *[(s, "") for s in slice_parts(e)]])
    assert values[0] is not None
    return e.with_changes(value=values[0], slice=rebuild_slices(e, values[1:]))


# -- operators ----------------------------------------------------------------------


def lower_binary(b: Lowering, e: cst.BinaryOperation) -> cst.BaseExpression:
    left, right = b.operands([(e.left, ""), (e.right, "")])
    return e.with_changes(left=left, right=right)


def lower_unary(b: Lowering, e: cst.UnaryOperation) -> cst.BaseExpression:
    return e.with_changes(expression=b.value(e.expression))


def lower_boolean(b: Lowering, e: cst.BooleanOperation) -> cst.BaseExpression:
    if not b.has_await(e.right):
        return e.with_changes(left=b.value(e.left), right=b.rw.expression(e.right))
    # result = left; if it decides (falsy for `and`, truthy for `or`), done.
    w = b.w
    result = b.result_var(e)
    end = w.new_label()
    w.assign(result, b.value(e.left))
    w.jump_if(w.local(result), end, when=isinstance(e.operator, cst.Or))
    w.assign(result, b.value(e.right))
    w.mark(end)
    return w.local(result).with_changes(lpar=e.lpar, rpar=e.rpar)


def lower_ifexp(b: Lowering, e: cst.IfExp) -> cst.BaseExpression:
    if not (b.has_await(e.body) or b.has_await(e.orelse)):
        return e.with_changes(
            test=b.value(e.test),
            body=b.rw.expression(e.body),
            orelse=b.rw.expression(e.orelse),
        )
    w = b.w
    result = b.result_var(e)
    orelse, end = w.new_label(), w.new_label()
    b.jump_if(e.test, orelse, when=False)
    w.assign(result, b.value(e.body))
    w.jump(end)
    w.mark(orelse)
    w.assign(result, b.value(e.orelse))
    w.mark(end)
    return w.local(result)


def lower_comparison(b: Lowering, e: cst.Comparison) -> cst.BaseExpression:
    comparisons = list(e.comparisons)
    if not any(b.has_await(c.comparator) for c in comparisons):
        return e.with_changes(
            left=b.value(e.left),
            comparisons=[
                c.with_changes(comparator=b.rw.expression(c.comparator)) for c in comparisons
            ],
        )
    w = b.w
    result = b.result_var(e)
    end = w.new_label()
    left_original: cst.BaseExpression = e.left
    left = b.value(e.left)
    for i, c in enumerate(comparisons):
        rest = comparisons[i:]
        if not any(b.has_await(r.comparator) for r in rest):
            tail = cst.Comparison(
                left=left,
                comparisons=[
                    r.with_changes(comparator=b.rw.expression(r.comparator)) for r in rest
                ],
            )
            w.assign(result, tail)
            break
        # Operands are evaluated left to right: `left` first, whatever
        # happens to the right of it (an await, or a spill).
        later = [r.comparator for r in rest]  # a walrus there may rebind a name operand
        left = b.stabilize(left, left_original, later=later)
        right = b.value(c.comparator)
        if i == len(comparisons) - 1:
            w.assign(
                result,
                cst.Comparison(left=left, comparisons=[c.with_changes(comparator=right)]),
            )
            break
        right = b.stabilize(right, c.comparator, later=later[1:])
        w.assign(result, cst.Comparison(left=left, comparisons=[c.with_changes(comparator=right)]))
        w.jump_if(w.local(result), end, when=False)
        left, left_original = right, c.comparator
    w.mark(end)
    return w.local(result)


def lower_named(b: Lowering, e: cst.NamedExpr) -> cst.BaseExpression:
    value = b.value(e.value)
    rewritten = b.rw.expression(e.with_changes(value=cst.Name("None")))
    if isinstance(rewritten, cst.Call):  # m.let(L, 'x', None)
        args = list(rewritten.args)
        args[-1] = args[-1].with_changes(value=value)
        return rewritten.with_changes(args=args)
    assert isinstance(rewritten, cst.NamedExpr)
    return rewritten.with_changes(value=value)


# -- displays --------------------------------------------------------------------


def lower_elements(b: Lowering, e: cst.Tuple | cst.List | cst.Set) -> cst.BaseExpression:
    elements = list(e.elements)
    values = b.operands(
        [(el.value, "*" if isinstance(el, cst.StarredElement) else "") for el in elements]
    )
    return e.with_changes(
        elements=[el.with_changes(value=v) for el, v in zip(elements, values, strict=True)]
    )


def lower_dict(b: Lowering, e: cst.Dict) -> cst.BaseExpression:
    parts: list[tuple[cst.BaseExpression | None, str]] = []
    for el in e.elements:
        if isinstance(el, cst.DictElement):
            parts += [(el.key, ""), (el.value, "")]
        else:
            parts.append((el.value, "**"))
    values = iter(b.operands(parts))
    elements: list[cst.BaseDictElement] = []
    for el in e.elements:
        if isinstance(el, cst.DictElement):
            elements.append(el.with_changes(key=next(values), value=next(values)))
        else:
            elements.append(el.with_changes(value=next(values)))
    return e.with_changes(elements=elements)


def lower_comprehension(
    b: Lowering, e: cst.ListComp | cst.SetComp | cst.DictComp | cst.GeneratorExp
) -> cst.BaseExpression:
    # Only the first iterable awaits (comprehensions.py lowers the others;
    # analyze rejected a generator expression awaiting elsewhere): it is
    # evaluated in the enclosing scope, before the comprehension runs.
    iterable = b.value(e.for_in.iter)
    rewritten = b.rw.expression(e)
    assert isinstance(rewritten, cst.ListComp | cst.SetComp | cst.DictComp | cst.GeneratorExp)
    return rewritten.with_changes(for_in=rewritten.for_in.with_changes(iter=iterable))


# -- strings --------------------------------------------------------------------------


def lower_concatenated(b: Lowering, e: cst.ConcatenatedString) -> cst.BaseExpression:
    # An atom becomes a sum: parenthesized, it keeps its grouping wherever it
    # stands (`("a" + f"{m.sent}").upper()`, `(...)[i]`, `(...)(x)`).
    left, right = b.operands([(e.left, ""), (e.right, "")])
    assert left is not None and right is not None
    lpar, rpar = (e.lpar, e.rpar) if e.lpar else ([cst.LeftParen()], [cst.RightParen()])
    return cst.BinaryOperation(left=left, operator=cst.Add(), right=right, lpar=lpar, rpar=rpar)


def lower_fstring(b: Lowering, e: cst.FormattedString) -> cst.BaseExpression:
    pending: list[cst.BaseFormattedStringContent] = []
    for original in e.parts:
        if not b.has_await(original):
            out = original.visit(b.rw)
            if isinstance(out, cst.FlattenSentinel):
                pending.extend(out.nodes)
            else:
                assert isinstance(out, cst.BaseFormattedStringContent)
                pending.append(out)
            continue
        assert isinstance(original, cst.FormattedStringExpression)
        if any(isinstance(p, cst.FormattedStringExpression) for p in pending):
            # Earlier fields are formatted before this one's await.
            prefix = b.spill(e.with_changes(parts=pending, lpar=[], rpar=[]), e)
            pending = [cst.FormattedStringExpression(expression=prefix)]
        field: cst.BaseFormattedStringContent = original
        if original.equal is not None:
            text, field = expand_debug(original, original)
            pending.append(text)
        assert isinstance(field, cst.FormattedStringExpression)
        pending.append(_format_field(b, field, original))
    return e.with_changes(parts=pending)


def _format_field(
    b: Lowering, field: cst.FormattedStringExpression, original: cst.FormattedStringExpression
) -> cst.FormattedStringExpression:
    """One `{expr!conv:spec}` whose expression or spec awaits. CPython
    evaluates the expression, then the spec's fields left to right, then
    converts and formats: the value is kept raw until then."""
    spec = list(original.format_spec or [])
    fields = [s for s in spec if isinstance(s, cst.FormattedStringExpression)]
    values = b.operands([(original.expression, ""), *[(f.expression, "") for f in fields]])
    value, rest = values[0], iter(values[1:])
    assert value is not None
    new_spec: list[cst.BaseFormattedStringContent] | None = None
    if original.format_spec is not None:
        new_spec = []
        for part in spec:
            if isinstance(part, cst.FormattedStringExpression):
                lowered = next(rest)
                assert lowered is not None
                new_spec.append(part.with_changes(expression=lowered))
            else:
                out = part.visit(b.rw)
                assert isinstance(out, cst.BaseFormattedStringContent)
                new_spec.append(out)
    return field.with_changes(expression=value, format_spec=new_spec)


# -- helpers --------------------------------------------------------------------------


def slice_parts(e: cst.Subscript) -> list[cst.BaseExpression]:
    """The expressions of a subscript's slices, in evaluation order."""
    out: list[cst.BaseExpression] = []
    for element in e.slice:
        s = element.slice
        if isinstance(s, cst.Index):
            out.append(s.value)
        else:
            assert isinstance(s, cst.Slice)
            out += [x for x in (s.lower, s.upper, s.step) if x is not None]
    return out


def rebuild_slices(
    e: cst.Subscript, values: Sequence[cst.BaseExpression | None]
) -> list[cst.SubscriptElement]:
    it = iter(values)
    elements = []
    for element in e.slice:
        s = element.slice
        if isinstance(s, cst.Index):
            new: cst.BaseSlice = s.with_changes(value=next(it))
        else:
            assert isinstance(s, cst.Slice)
            new = s.with_changes(
                lower=next(it) if s.lower is not None else None,
                upper=next(it) if s.upper is not None else None,
                step=next(it) if s.step is not None else None,
            )
        elements.append(element.with_changes(slice=new))
    return elements
