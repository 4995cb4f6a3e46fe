"""Lowering of expressions that contain awaits (part of pass 3).

`value(e)` emits whatever must happen before `e`'s value is known (earlier
states, awaits, spills) and returns an expression computing it in the
current state. Sub-expressions evaluated *before* an await-containing sibling
are spilled into hidden temporaries, in CPython's order, so nothing is
evaluated twice or out of order:

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

import builtins
from collections.abc import Sequence

import libcst as cst

from resumable.errors import CompileError

from . import codes
from .emitter import Emitter
from .ir import Analysis
from .rewrite import Rewriter, attr, code, expand_debug

__all__ = ["Expressions"]

_CONSTANTS = (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.Ellipsis)
_BUILTINS = frozenset(dir(builtins))


def _is_constant(e: cst.BaseExpression) -> bool:
    if isinstance(e, _CONSTANTS):
        return True
    if isinstance(e, cst.Name):
        return e.value in ("None", "True", "False")
    if isinstance(e, cst.UnaryOperation):
        return isinstance(e.operator, cst.Minus | cst.Plus) and _is_constant(e.expression)
    if isinstance(e, cst.ConcatenatedString):
        return _is_constant(e.left) and _is_constant(e.right)
    return False


def _walrus_targets(nodes: Sequence[cst.CSTNode | None]) -> set[str]:
    out: set[str] = set()
    stack = [n for n in nodes if n is not None]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.NamedExpr) and isinstance(n.target, cst.Name):
            out.add(n.target.value)
        stack.extend(n.children)
    return out


class Expressions:
    def __init__(self, em: Emitter, rw: Rewriter, analysis: Analysis) -> None:
        self.em = em
        self.rw = rw
        self.analysis = analysis
        self.errors: list[CompileError] = []
        #: Locals certainly bound here: assigned by an earlier top-level
        #: statement of the function body and never deleted.
        self.bound: set[str] = set(analysis.params) - set(analysis.maybe_unbound)

    def maybe_unbound(self, name: str) -> bool:
        return name in self.analysis.maybe_unbound and name not in self.bound

    def has_await(self, node: cst.CSTNode | None) -> bool:
        return self.analysis.has_await(node)

    # -- entry points ------------------------------------------------------------

    def value(self, e: cst.BaseExpression) -> cst.BaseExpression:
        """Lower `e` (value context); returns the expression to use in the current state."""
        if not self.has_await(e):
            return self.rw.expression(e)
        method = getattr(self, "_" + type(e).__name__, None)
        if method is None:
            self.errors.append(
                self.analysis.parsed.error(
                    e,
                    codes.AWAIT_POSITION,
                    f"await inside {type(e).__name__} is not supported yet",
                    "await into a variable first and use the variable",
                    "await position",
                )
            )
            return cst.Name("None")
        out: cst.BaseExpression = method(e)
        return out

    def operands(
        self, parts: Sequence[tuple[cst.BaseExpression | None, str]]
    ) -> list[cst.BaseExpression | None]:
        """Lower sibling expressions evaluated left to right; each `(expr, star)`
        with star "", "*" or "**" (an unpacking, done at its position)."""
        last = max((i for i, (p, _) in enumerate(parts) if self.has_await(p)), default=-1)
        out: list[cst.BaseExpression | None] = []
        for i, (part, star) in enumerate(parts):
            if part is None:
                out.append(None)
                continue
            lowered = self.value(part)
            if i < last:
                later = [p for p, _ in parts[i + 1 :]]
                lowered = self.stabilize(lowered, part, star, later)
            out.append(lowered)
        return out

    def stabilize(
        self,
        lowered: cst.BaseExpression,
        original: cst.BaseExpression,
        star: str = "",
        later: Sequence[cst.BaseExpression | None] = (),
    ) -> cst.BaseExpression:
        """Make `lowered` keep its value across a following await."""
        if star == "*":
            return self.spill(cst.Tuple([cst.StarredElement(lowered)]), original)
        if star == "**":
            return self.spill(cst.Dict([cst.StarredDictElement(lowered)]), original)
        if _is_constant(original) or self.is_hidden(lowered):
            return lowered
        if isinstance(original, cst.Name):
            name = original.value
            if name in self.analysis.locals:
                if name in _walrus_targets(later):
                    return self.spill(lowered, original)
                if self.maybe_unbound(name):
                    self.touch(lowered)
                return lowered
            if name not in self.analysis.parsed.module_names and name not in _BUILTINS:
                self.touch(lowered)  # a missing global raises NameError before the await
            return lowered
        return self.spill(lowered, original)

    def is_hidden(self, e: cst.BaseExpression) -> bool:
        return (
            isinstance(e, cst.Attribute)
            and isinstance(e.value, cst.Name)
            and e.value.value == self.em.L
            and e.attr.value in self.em.hidden
        )

    def touch(self, e: cst.BaseExpression) -> None:
        """Evaluate `e` for its error only (an unbound local, a missing global),
        at the moment CPython would."""
        comment = cst.Comment("# fails here, as in CPython, if it is not bound")
        line = cst.SimpleStatementLine(
            [cst.Expr(e)],
            trailing_whitespace=cst.TrailingWhitespace(
                whitespace=cst.SimpleWhitespace("  "), comment=comment
            ),
        )
        self.em.emit(line)

    def spill(self, lowered: cst.BaseExpression, original: cst.CSTNode) -> cst.Attribute:
        text = code(original).strip().replace("\n", " ")
        if len(text) > 40:
            text = text[:37] + "..."
        line = self.analysis.parsed.line_of(original) or self.em.line
        name = self.em.hidden_var("t", f"the value of `{text}` (line {line})")
        self.em.assign(name, lowered)
        return self.em.local(name)

    def settle(self, e: cst.BaseExpression) -> cst.BaseExpression:
        """Move the last await's value out of `e` before the next checkpoint."""
        if not self.em.sent_nodes:
            return e
        sent = self.em.sent_nodes[-1]
        if not _contains(e, sent):
            return e
        name = self.em.hidden_var("t", f"the value of an await (line {self.em.line})")
        self.em.assign(name, sent)
        replaced = e.deep_replace(sent, self.em.local(name))
        assert isinstance(replaced, cst.BaseExpression)
        return replaced

    def result_var(self, e: cst.CSTNode) -> str:
        text = code(e).strip().replace("\n", " ")
        if len(text) > 40:
            text = text[:37] + "..."
        return self.em.hidden_var("t", f"the value of `{text}` (line {self.em.line})")

    # -- awaits ---------------------------------------------------------------------

    def _Await(self, e: cst.Await) -> cst.BaseExpression:
        operand = self.settle(self.value(e.expression))
        return self.em.await_(e, operand)

    # -- calls, attributes, subscripts ------------------------------------------------

    def _Call(self, e: cst.Call) -> cst.BaseExpression:
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
            head = [func.value, *_slice_parts(func)]
        else:
            head = [func]
        parts: list[tuple[cst.BaseExpression, str]] = [(h, "") for h in head]
        parts += [(a.value, "" if lone_star and a.star == "*" else a.star) for a in ordered]
        last = max((i for i, (p, _) in enumerate(parts) if self.has_await(p)), default=-1)
        values: list[cst.BaseExpression] = []
        for i, (part, star) in enumerate(parts):
            lowered = self.value(part)
            if i < last:
                if star == "**":
                    merge = cst.Call(
                        attr(self.em.m, "mapping"), [cst.Arg(lowered), *self._callee(func, values)]
                    )
                    lowered = self.spill(merge, part)
                else:
                    later = [p for p, _ in parts[i + 1 :]]
                    lowered = self.stabilize(lowered, part, star, later)
            values.append(lowered)
        n = len(head)
        new_func: cst.BaseExpression
        if isinstance(func, cst.Attribute):
            new_func = func.with_changes(value=values[0])
        elif isinstance(func, cst.Subscript):
            new_func = func.with_changes(value=values[0], slice=_rebuild_slices(func, values[1:n]))
        else:
            new_func = values[0]
        args = [a.with_changes(value=v) for a, v in zip(ordered, values[n:], strict=True)]
        return e.with_changes(func=new_func, args=args)

    def _callee(self, func: cst.BaseExpression, values: list[cst.BaseExpression]) -> list[cst.Arg]:
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

    def _Attribute(self, e: cst.Attribute) -> cst.BaseExpression:
        return e.with_changes(value=self.value(e.value))

    def _Subscript(self, e: cst.Subscript) -> cst.BaseExpression:
        values = self.operands([(e.value, ""), *[(s, "") for s in _slice_parts(e)]])
        assert values[0] is not None
        return e.with_changes(value=values[0], slice=_rebuild_slices(e, values[1:]))

    # -- operators ----------------------------------------------------------------------

    def _BinaryOperation(self, e: cst.BinaryOperation) -> cst.BaseExpression:
        left, right = self.operands([(e.left, ""), (e.right, "")])
        return e.with_changes(left=left, right=right)

    def _UnaryOperation(self, e: cst.UnaryOperation) -> cst.BaseExpression:
        return e.with_changes(expression=self.value(e.expression))

    def _BooleanOperation(self, e: cst.BooleanOperation) -> cst.BaseExpression:
        if not self.has_await(e.right):
            return e.with_changes(left=self.value(e.left), right=self.rw.expression(e.right))
        # result = left; if it decides (falsy for `and`, truthy for `or`), done.
        result = self.result_var(e)
        end = self.em.new_label()
        self.em.assign(result, self.value(e.left))
        self.em.jump_if(self.em.local(result), end, when=isinstance(e.operator, cst.Or))
        self.em.assign(result, self.value(e.right))
        self.em.mark(end)
        return self.em.local(result).with_changes(lpar=e.lpar, rpar=e.rpar)

    def _IfExp(self, e: cst.IfExp) -> cst.BaseExpression:
        if not (self.has_await(e.body) or self.has_await(e.orelse)):
            return e.with_changes(
                test=self.value(e.test),
                body=self.rw.expression(e.body),
                orelse=self.rw.expression(e.orelse),
            )
        from .lower_test import Tests

        result = self.result_var(e)
        orelse, end = self.em.new_label(), self.em.new_label()
        Tests(self).jump_if(e.test, orelse, when=False)
        self.em.assign(result, self.value(e.body))
        self.em.jump(end)
        self.em.mark(orelse)
        self.em.assign(result, self.value(e.orelse))
        self.em.mark(end)
        return self.em.local(result)

    def _Comparison(self, e: cst.Comparison) -> cst.BaseExpression:
        comparisons = list(e.comparisons)
        if not any(self.has_await(c.comparator) for c in comparisons):
            return e.with_changes(
                left=self.value(e.left),
                comparisons=[
                    c.with_changes(comparator=self.rw.expression(c.comparator)) for c in comparisons
                ],
            )
        result = self.result_var(e)
        end = self.em.new_label()
        left_original: cst.BaseExpression = e.left
        left = self.value(e.left)
        for i, c in enumerate(comparisons):
            rest = comparisons[i:]
            if not any(self.has_await(r.comparator) for r in rest):
                tail = cst.Comparison(
                    left=left,
                    comparisons=[
                        r.with_changes(comparator=self.rw.expression(r.comparator)) for r in rest
                    ],
                )
                self.em.assign(result, tail)
                break
            # Operands are evaluated left to right: `left` first, whatever
            # happens to the right of it (an await, or a spill).
            left = self.stabilize(left, left_original)
            right = self.value(c.comparator)
            if i == len(comparisons) - 1:
                self.em.assign(
                    result,
                    cst.Comparison(left=left, comparisons=[c.with_changes(comparator=right)]),
                )
                break
            right = self.stabilize(right, c.comparator)
            self.em.assign(
                result, cst.Comparison(left=left, comparisons=[c.with_changes(comparator=right)])
            )
            self.em.jump_if(self.em.local(result), end, when=False)
            left, left_original = right, c.comparator
        self.em.mark(end)
        return self.em.local(result)

    def _NamedExpr(self, e: cst.NamedExpr) -> cst.BaseExpression:
        value = self.value(e.value)
        rewritten = self.rw.expression(e.with_changes(value=cst.Name("None")))
        if isinstance(rewritten, cst.Call):  # m.let(L, 'x', None)
            args = list(rewritten.args)
            args[-1] = args[-1].with_changes(value=value)
            return rewritten.with_changes(args=args)
        assert isinstance(rewritten, cst.NamedExpr)
        return rewritten.with_changes(value=value)

    # -- displays --------------------------------------------------------------------

    def _elements(self, e: cst.Tuple | cst.List | cst.Set) -> cst.BaseExpression:
        elements = list(e.elements)
        values = self.operands(
            [(el.value, "*" if isinstance(el, cst.StarredElement) else "") for el in elements]
        )
        return e.with_changes(
            elements=[el.with_changes(value=v) for el, v in zip(elements, values, strict=True)]
        )

    _Tuple = _elements
    _List = _elements
    _Set = _elements

    def _Dict(self, e: cst.Dict) -> cst.BaseExpression:
        parts: list[tuple[cst.BaseExpression | None, str]] = []
        for el in e.elements:
            if isinstance(el, cst.DictElement):
                parts += [(el.key, ""), (el.value, "")]
            else:
                parts.append((el.value, "**"))
        values = iter(self.operands(parts))
        elements: list[cst.BaseDictElement] = []
        for el in e.elements:
            if isinstance(el, cst.DictElement):
                elements.append(el.with_changes(key=next(values), value=next(values)))
            else:
                elements.append(el.with_changes(value=next(values)))
        return e.with_changes(elements=elements)

    def _comprehension(
        self, e: cst.ListComp | cst.SetComp | cst.DictComp | cst.GeneratorExp
    ) -> cst.BaseExpression:
        # Only the outermost iterable may await (analyze rejected the rest); it
        # is evaluated in the function's scope, before the comprehension runs.
        iterable = self.value(e.for_in.iter)
        rewritten = self.rw.expression(e)
        assert isinstance(rewritten, cst.ListComp | cst.SetComp | cst.DictComp | cst.GeneratorExp)
        return rewritten.with_changes(for_in=rewritten.for_in.with_changes(iter=iterable))

    _ListComp = _comprehension
    _SetComp = _comprehension
    _DictComp = _comprehension
    _GeneratorExp = _comprehension

    # -- strings --------------------------------------------------------------------------

    def _ConcatenatedString(self, e: cst.ConcatenatedString) -> cst.BaseExpression:
        left, right = self.operands([(e.left, ""), (e.right, "")])
        assert left is not None and right is not None
        return cst.BinaryOperation(
            left=left, operator=cst.Add(), right=right, lpar=e.lpar, rpar=e.rpar
        )

    def _FormattedString(self, e: cst.FormattedString) -> cst.BaseExpression:
        pending: list[cst.BaseFormattedStringContent] = []
        for original in e.parts:
            if not self.has_await(original):
                out = original.visit(self.rw)
                if isinstance(out, cst.FlattenSentinel):
                    pending.extend(out.nodes)
                else:
                    assert isinstance(out, cst.BaseFormattedStringContent)
                    pending.append(out)
                continue
            assert isinstance(original, cst.FormattedStringExpression)
            if any(isinstance(p, cst.FormattedStringExpression) for p in pending):
                # Earlier fields are formatted before this one's await.
                prefix = self.spill(e.with_changes(parts=pending, lpar=[], rpar=[]), e)
                pending = [cst.FormattedStringExpression(expression=prefix)]
            spec = original.format_spec
            if spec and any(self.has_await(s) for s in spec):
                self.errors.append(
                    self.analysis.parsed.error(
                        original, codes.AWAIT_POSITION, "await inside an f-string format spec is not supported yet",
                        "await into a variable first", "await position",
                    )
                )  # fmt: skip
            field: cst.BaseFormattedStringContent = original
            if original.equal is not None:
                text, field = expand_debug(original, original)
                pending.append(text)
            assert isinstance(field, cst.FormattedStringExpression)
            value = self.value(original.expression)
            new_spec = None
            if spec is not None:
                new_spec = []
                for s in spec:
                    out = s.visit(self.rw)
                    assert isinstance(out, cst.BaseFormattedStringContent)
                    new_spec.append(out)
            pending.append(field.with_changes(expression=value, format_spec=new_spec))
        return e.with_changes(parts=pending)


def _contains(root: cst.CSTNode, target: cst.CSTNode) -> bool:
    stack = [root]
    while stack:
        n = stack.pop()
        if n is target:
            return True
        stack.extend(n.children)
    return False


def _slice_parts(e: cst.Subscript) -> list[cst.BaseExpression]:
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


def _rebuild_slices(
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
