"""Pass 3, lower: an analyzed function -> Lowered (a flat list of states).

Start reading at `Statements.statement`. A statement without an await is
emitted unchanged (names rewritten, see rewrite.py) inside the current state,
so its semantics are CPython's own. A statement with an await is taken apart:

    async def f(xs):                 state 0: L._c1 = m.loop(L.xs, 3)
        total = 0                             L.total = 0          (order kept)
        for x in xs:                 state 1: if not L._c1.step(): return 4
            total += await g(x)               L.x = L._c1.value
        return total                 state 2: return g(L.x)         (await: checkpoint first)
                                     state 3: L.total += m.sent; return 1
                                     state 4: return m.done(L.total)

Expressions are in lower_expr.py, conditions in lower_test.py, the state
listing and the region stack (where break/continue/return/exceptions go) in
emitter.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import libcst as cst

from resumable.errors import CompileError

from . import codes
from .emitter import Emitter, Label, Region
from .ir import Analysis, Lowered
from .lower_expr import Expressions, _walrus_targets
from .lower_test import Tests
from .rewrite import Rewriter, attr, call, target_names

__all__ = ["lower"]

_LAZY_ITERABLES = ("enumerate", "zip", "reversed")


def lower(analysis: Analysis) -> Lowered:
    em = Emitter(analysis)
    rw = Rewriter(analysis, em.jump_code)
    x = Expressions(em, rw, analysis)
    statements = Statements(em, rw, x)
    statements.function_body(analysis.function.node.body)
    states = em.finish()
    return Lowered(
        analysis=analysis,
        states=states,
        hidden=dict(em.hidden),
        errors=tuple(x.errors + statements.errors),
    )


class Statements:
    def __init__(self, em: Emitter, rw: Rewriter, x: Expressions) -> None:
        self.em = em
        self.rw = rw
        self.x = x
        self.tests = Tests(x)
        self.analysis = x.analysis
        self.errors: list[CompileError] = []

    def has_await(self, node: cst.CSTNode | None) -> bool:
        return self.analysis.has_await(node)

    def body(self, suite: cst.BaseSuite, bound: set[str] | frozenset[str] = frozenset()) -> None:
        self.block(_statements(suite), bound)

    def function_body(self, suite: cst.BaseSuite) -> None:
        statements = list(_statements(suite))
        if statements and _is_docstring(statements[0]):
            statements = statements[1:]  # evaluating it does nothing
        self.block(statements)

    def block(
        self,
        statements: Sequence[cst.BaseStatement],
        bound: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        """Lower a block. A name assigned by one of its statements stays bound
        for the rest of the block (unless the function ever deletes it), so
        later reads need no check for an unbound local."""
        saved = set(self.x.bound)
        self.x.bound |= bound - self.analysis.deleted
        for stmt in statements:
            self.statement(stmt)
            self.x.bound |= _bound_by(stmt) - self.analysis.deleted
        self.x.bound = saved

    def statement(self, stmt: cst.BaseStatement) -> None:
        self.em.note(stmt)
        if not self.has_await(stmt):
            self.verbatim(stmt)
            return
        method = getattr(self, "_" + type(stmt).__name__, None)
        if method is None:  # analyze reported it (E06, E07, E10, ...)
            self.em.comment = None
            return
        method(stmt)

    def verbatim(self, stmt: cst.BaseStatement) -> None:
        self.em.ensure_open()
        for out in self.rw.statement(stmt):
            self.em.emit(out)

    # -- simple statements -----------------------------------------------------------

    def _SimpleStatementLine(self, line: cst.SimpleStatementLine) -> None:
        for small in line.body:
            if not self.has_await(small):
                self.verbatim(
                    cst.SimpleStatementLine(
                        [small.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)]
                    )
                )
                continue
            method = getattr(self, "_" + type(small).__name__)
            method(small)

    def _Expr(self, small: cst.Expr) -> None:
        value = self.x.value(small.value)
        if not (value in self.em.sent_nodes or self.x.is_hidden(value)):
            self.em.emit_small(cst.Expr(value))

    def _Assign(self, small: cst.Assign) -> None:
        targets = [t.target for t in small.targets]
        if not any(self.has_await(t) for t in targets):
            value = self.x.value(small.value)
            self.em.emit_small(cst.Assign([_target(self.rw.expression(t)) for t in targets], value))
            return
        # The value is computed first, then each target from left to right.
        value = self.x.spill(self.x.value(small.value), small.value)
        for target in targets:
            self.assign_to(target, value)

    def assign_to(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        if not self.has_await(target):
            self.em.emit_small(cst.Assign([_target(self.rw.expression(target))], value))
        elif isinstance(target, cst.Attribute):
            obj = self.x.value(target.value)
            self.em.emit_small(cst.Assign([_target(target.with_changes(value=obj))], value))
        elif isinstance(target, cst.Subscript):
            sub = self.x.value(target)
            self.em.emit_small(cst.Assign([_target(sub)], value))
        elif isinstance(target, cst.Tuple | cst.List):
            # Unpack into temporaries first (CPython unpacks before any store).
            names: list[tuple[cst.BaseExpression, cst.Attribute]] = []
            elements: list[cst.BaseElement] = []
            for el in target.elements:
                name = self.em.hidden_var("t", f"an unpacked value (line {self.em.line})")
                local = self.em.local(name)
                names.append((el.value, local))
                elements.append(
                    cst.StarredElement(local)
                    if isinstance(el, cst.StarredElement)
                    else cst.Element(local)
                )
            self.em.emit_small(cst.Assign([cst.AssignTarget(cst.Tuple(elements))], value))
            for sub_target, local in names:
                self.assign_to(sub_target, local)
        else:
            self.unsupported(target, "this assignment target")

    def _AnnAssign(self, small: cst.AnnAssign) -> None:
        # Annotations of a function's variables are never evaluated.
        if small.value is not None:
            self._Assign(cst.Assign([cst.AssignTarget(small.target)], small.value))

    def _AugAssign(self, small: cst.AugAssign) -> None:
        target, x = small.target, self.x
        later = [small.value]
        if isinstance(target, cst.Name):
            rewritten = self.rw.expression(target)
            if target.value not in _walrus_targets(later):
                if target.value in self.analysis.locals and x.maybe_unbound(target.value):
                    x.touch(rewritten)  # an unbound name fails before the await
                self.em.emit_small(small.with_changes(target=rewritten, value=x.value(small.value)))
                return
            place: cst.BaseExpression = rewritten  # rebound in the value: read it first
        elif isinstance(target, cst.Attribute):
            obj = x.value(target.value)
            place = target.with_changes(value=obj)
        elif isinstance(target, cst.Subscript):
            place = x.value(target)
        else:
            self.unsupported(target, "this augmented assignment target")
            return
        if not self.has_await(small.value):
            self.em.emit_small(
                small.with_changes(target=place, value=self.rw.expression(small.value))
            )
            return
        # The target's parts and its current value are read before the await.
        if isinstance(place, cst.Attribute) and isinstance(target, cst.Attribute):
            place = place.with_changes(value=x.stabilize(place.value, target.value, later=later))
        elif isinstance(place, cst.Subscript) and isinstance(target, cst.Subscript):
            place = self._stable_subscript(place, target, later)
        current = x.spill(place, target)
        self.em.emit_small(small.with_changes(target=current, value=x.value(small.value)))
        self.em.emit_small(cst.Assign([_target(place)], current))

    def _stable_subscript(
        self, place: cst.Subscript, original: cst.Subscript, later: list[cst.BaseExpression]
    ) -> cst.Subscript:
        x = self.x

        def stable(lowered: cst.BaseExpression | None, orig: cst.BaseExpression | None) -> Any:
            if lowered is None or orig is None:
                return lowered
            return x.stabilize(lowered, orig, later=later)

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

    def _Return(self, small: cst.Return) -> None:
        value = self.x.value(small.value) if small.value is not None else cst.Name("None")
        for line in _lines(self.em.jump_code("return", value)):
            self.em.emit_small(*line)

    def _Raise(self, small: cst.Raise) -> None:
        cause = small.cause.item if small.cause is not None else None
        exc, cause_value = self.x.operands([(small.exc, ""), (cause, "")])
        new_cause = small.cause.with_changes(item=cause_value) if small.cause is not None else None
        self.em.emit_small(small.with_changes(exc=exc, cause=new_cause))

    def _Assert(self, small: cst.Assert) -> None:
        em = self.em
        end = em.new_label()
        em.jump_if(cst.Name("__debug__"), end, when=False)
        self.tests.jump_if(small.test, end, when=True)
        error = attr(em.m, "AssertionError")
        exc: cst.BaseExpression = (
            error if small.msg is None else call(error, self.x.value(small.msg))
        )
        em.emit_small(cst.Raise(exc))
        em.mark(end)

    def _Del(self, small: cst.Del) -> None:
        targets = small.target.elements if isinstance(small.target, cst.Tuple | cst.List) else None
        for target in [el.value for el in targets] if targets is not None else [small.target]:
            if not self.has_await(target):
                self.em.emit_small(_del(self.rw.expression(target)))
            elif isinstance(target, cst.Subscript | cst.Attribute):
                self.em.emit_small(_del(self.x.value(target)))
            else:
                self.unsupported(target, "this del target")

    # -- compound statements ----------------------------------------------------------------

    def _If(self, node: cst.If) -> None:
        em = self.em
        if not any(self.has_await(b) for b in _branches(node)):
            # Only the first test awaits: the statement itself runs unchanged.
            test = self.x.value(node.test)
            self._replace_first(node, test, "test")
            return
        end = em.new_label()
        orelse = em.new_label() if node.orelse is not None else end
        self.tests.jump_if(node.test, orelse, when=False)
        self.body(node.body)
        if node.orelse is None:
            em.mark(end)
            return
        em.jump(end)
        em.mark(orelse)
        if isinstance(node.orelse, cst.If):
            em.note(node.orelse)
            self._If(node.orelse) if self.has_await(node.orelse) else self.verbatim(node.orelse)
        else:
            self.body(node.orelse.body)
        em.mark(end)

    def _replace_first(
        self, node: cst.If | cst.For | cst.With, value: cst.BaseExpression, field: str
    ) -> None:
        """Emit `node` unchanged except for its first expression, already lowered."""
        self.em.ensure_open()
        [rewritten] = self.rw.statement(node)
        if isinstance(rewritten, cst.With):
            first = rewritten.items[0].with_changes(item=value)
            self.em.emit(rewritten.with_changes(items=[first, *rewritten.items[1:]]))
        else:
            self.em.emit(rewritten.with_changes(**{field: value}))

    def _While(self, node: cst.While) -> None:
        em = self.em
        head, end = em.new_label(), em.new_label()
        orelse = em.new_label() if node.orelse is not None else end
        em.mark(head)
        if not _always_true(node.test):
            self.tests.jump_if(node.test, orelse, when=False)
        self.loop_body(node.body, end, head)
        if node.orelse is not None:
            em.mark(orelse)
            self.body(node.orelse.body)
        em.mark(end)

    def loop_body(
        self,
        body: cst.BaseSuite,
        end: Label,
        head: Label,
        bound: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        loop = Region("loop", target=end, resume=head)
        self.em.push(loop)
        self.body(body, bound)
        self.em.pop(loop)
        if not self.em.current.closed:
            self.em.jump(head)

    def _For(self, node: cst.For) -> None:
        em = self.em
        if not (self.has_await(node.body) or self.has_await(node.orelse)):
            self._replace_first(node, self.x.value(node.iter), "iter")
            return
        line = em.line
        cursor = em.hidden_var("c", f"the position of the for-loop at line {line}")
        iterable = self.loop_iterable(node.iter)
        em.assign(cursor, call(attr(em.m, "loop"), iterable, cst.Integer(str(line))))
        head, end = em.new_label(), em.new_label()
        orelse = em.new_label() if node.orelse is not None else end
        em.mark(head)
        em.jump_if(call(cst.Attribute(em.local(cursor), cst.Name("step"))), orelse, when=False)
        em.emit_small(
            cst.Assign(
                [_target(self.rw.expression(node.target))],
                cst.Attribute(em.local(cursor), cst.Name("value")),
            )
        )
        self.loop_body(node.body, end, head, bound=target_names(node.target))
        if node.orelse is not None:
            em.mark(orelse)
            self.body(node.orelse.body)
        em.mark(end)

    def loop_iterable(self, e: cst.BaseExpression) -> cst.BaseExpression:
        """The iterable of a for-loop that awaits; `enumerate(...)`, `zip(...)`
        and `reversed(...)` become `m.lazy(...)` so the runtime can build a
        cursor over what they wrap."""
        if not self._is_lazy(e):
            return self.x.value(e)
        assert isinstance(e, cst.Call)
        args = [a for a in e.args if a.keyword is None and a.star != "**"] + [
            a for a in e.args if a.keyword is not None or a.star == "**"
        ]
        parts: list[cst.BaseExpression] = [e.func, *[a.value for a in args]]
        stars = ["", *[a.star for a in args]]
        last = max((i for i, p in enumerate(parts) if self.has_await(p)), default=-1)
        values: list[cst.BaseExpression] = []
        for i, (part, star) in enumerate(zip(parts, stars, strict=True)):
            v = self.loop_iterable(part) if not star and self._is_lazy(part) else self.x.value(part)
            if i < last:
                v = self.x.stabilize(v, part, star)
            values.append(v)
        lazy_args = [cst.Arg(values[0])] + [
            a.with_changes(value=v) for a, v in zip(args, values[1:], strict=True)
        ]
        return cst.Call(attr(self.em.m, "lazy"), lazy_args)

    def _is_lazy(self, e: cst.BaseExpression) -> bool:
        return (
            isinstance(e, cst.Call)
            and isinstance(e.func, cst.Name)
            and e.func.value in _LAZY_ITERABLES
            and e.func.value not in self.analysis.locals
            and e.func.value not in self.analysis.parsed.module_names
        )

    def _With(self, node: cst.With) -> None:
        # analyze allows an await only in the first item's expression.
        self._replace_first(node, self.x.value(node.items[0].item), "items")

    # -- try ------------------------------------------------------------------------------

    def _Try(self, node: cst.Try) -> None:
        em, line = self.em, self.em.line
        after = em.new_label()
        fin: Region | None = None
        if node.finalbody is not None:
            record = em.hidden_var("f", f"what happens after the finally block of line {line}")
            fin = Region("finally", var=record, target=em.new_label())
            em.enter(fin)
        exc = (
            em.hidden_var("x", f"the exception handled by the try at line {line}")
            if node.handlers
            else ""
        )
        dispatch = em.new_label()
        if node.handlers:
            protected = Region("try", var=exc, target=dispatch)
            em.enter(protected)
            self.body(node.body)
            em.leave(protected)
        else:
            self.body(node.body)
        if node.orelse is not None:
            self.body(node.orelse.body)
        self.leave_try(fin, after)
        if node.handlers:
            labels = self.dispatch(node, exc, dispatch)
            for handler, label in zip(node.handlers, labels, strict=True):
                self.handler(handler, label, exc, fin, after)
        if fin is not None:
            assert node.finalbody is not None and fin.target is not None
            em.pop(fin)  # every path above ended in a jump
            body = Region("finally_body", var=fin.var)
            em.enter(body, fin.target)
            self.body(node.finalbody.body)
            if not em.current.closed:
                self.end_finally(fin, after)
            em.leave(body, after)
        else:
            em.mark(after)

    def leave_try(self, fin: Region | None, after: Label) -> None:
        """Leave the try statement normally (through its finally block)."""
        if self.em.current.closed:
            return
        if fin is None:
            self.em.jump(after)
            return
        assert fin.target is not None
        self.em.assign(fin.var, cst.Name("None"))
        self.em.jump(fin.target)

    def dispatch(self, node: cst.Try, exc: str, dispatch: Label) -> list[Label]:
        """The state matching the exception in `exc` against the except clauses."""
        em = self.em
        region = Region("dispatch", var=exc)
        em.enter(region, dispatch)
        labels = []
        for handler in node.handlers:
            label = em.new_label()
            labels.append(label)
            em.note(handler)
            body: list[cst.BaseSmallStatement] = []
            if handler.name is not None:
                name = handler.name.name
                assert isinstance(name, cst.Name)
                if name.value not in self.analysis.locals:
                    self.unsupported(handler, "`except ... as` with a global name")
                body.append(cst.Assign([cst.AssignTarget(em.local(name.value))], em.local(exc)))
            body.append(cst.Return(em.ref(label)))
            if handler.type is None:
                em.emit_small(*body)
                break
            kind = self.x.value(handler.type)
            test = call(attr(em.m, "matches"), em.local(exc), kind)
            em.emit(cst.If(test=test, body=cst.IndentedBlock([cst.SimpleStatementLine(body)])))
        if not em.current.closed:
            em.emit_small(cst.Return(call(attr(em.m, "throw"), em.local(exc))))
        em.pop(region)
        return labels

    def handler(
        self, handler: cst.ExceptHandler, label: Label, exc: str, fin: Region | None, after: Label
    ) -> None:
        em = self.em
        name = (
            handler.name.name.value
            if handler.name is not None and isinstance(handler.name.name, cst.Name)
            else None
        )
        cleanup = em.new_label() if name is not None else None
        region = Region("handler", var=exc, target=cleanup, name=name)
        em.enter(region, label)
        self.body(handler.body)
        if not em.current.closed:
            if name is not None:
                self._unbind(name)
            self.leave_try(fin, after)
        if cleanup is None:
            em.pop(region)  # the handler ended in a jump
        else:
            assert name is not None
            # An exception leaving the handler: CPython's `e = None; del e`, then on.
            em.leave(region, cleanup)
            self._unbind(name)
            em.emit_small(cst.Return(call(attr(em.m, "throw"), em.local(exc))))

    def _unbind(self, name: str) -> None:
        local = self.em.local(name)
        self.em.emit_small(cst.Assign([cst.AssignTarget(local)], cst.Name("None")), cst.Del(local))

    def end_finally(self, fin: Region, after: Label) -> None:
        """Go on with what was pending when the finally block started."""
        em = self.em
        record = em.local(fin.var)

        def if_(test: cst.BaseExpression, code: list[cst.BaseSmallStatement]) -> None:
            em.emit(cst.If(test=test, body=cst.SimpleStatementSuite(code)))

        if_(
            cst.Comparison(record, [cst.ComparisonTarget(cst.Is(), cst.Name("None"))]),
            [cst.Return(em.ref(after))],
        )
        if_(call(attr(em.m, "raising"), record), [cst.Return(call(attr(em.m, "throw"), record))])
        for kind, target in list(fin.pending):
            value: cst.BaseExpression = (
                cst.UnaryOperation(cst.Minus(), cst.Integer("1"))
                if target is None
                else em.ref(target, successor=False)
            )
            test = cst.Comparison(record, [cst.ComparisonTarget(cst.Equal(), value)])
            if_(test, em.jump_to(kind, target, None))
        em.emit_small(cst.Raise(call(attr(em.m, "bad_record"), record)))

    # -- errors ---------------------------------------------------------------------------

    def unsupported(self, node: cst.CSTNode, what: str) -> None:
        self.errors.append(
            self.analysis.parsed.error(
                node,
                codes.AWAIT_POSITION,
                f"await in {what} is not supported yet",
                "await into a variable first and use the variable",
                "await position",
            )
        )


def _lines(smalls: list[cst.BaseSmallStatement]) -> list[list[cst.BaseSmallStatement]]:
    """One line per small statement, except `e = None; del e` kept together."""
    out: list[list[cst.BaseSmallStatement]] = []
    for s in smalls:
        if isinstance(s, cst.Del) and out and isinstance(out[-1][-1], cst.Assign):
            out[-1].append(s)
        else:
            out.append([s])
    return out


def _is_docstring(stmt: cst.BaseStatement) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def _statements(suite: cst.BaseSuite) -> Sequence[cst.BaseStatement]:
    if isinstance(suite, cst.SimpleStatementSuite):
        return [cst.SimpleStatementLine(suite.body)]
    assert isinstance(suite, cst.IndentedBlock)
    return suite.body


def _target(e: cst.BaseExpression) -> cst.AssignTarget:
    """An assignment target (the lowering only builds valid ones)."""
    return cst.AssignTarget(cast(cst.BaseAssignTargetExpression, e))


def _del(e: cst.BaseExpression) -> cst.Del:
    return cst.Del(cast(cst.BaseDelTargetExpression, e))


def _bound_by(stmt: cst.BaseStatement) -> set[str]:
    """Names a statement certainly binds when it completes normally."""
    out: set[str] = set()
    if isinstance(stmt, cst.SimpleStatementLine):
        for small in stmt.body:
            if isinstance(small, cst.Assign):
                for t in small.targets:
                    out |= target_names(t.target)
            elif isinstance(small, cst.AugAssign) or (
                isinstance(small, cst.AnnAssign) and small.value is not None
            ):
                out |= target_names(small.target)
            elif isinstance(small, cst.Import | cst.ImportFrom) and not isinstance(
                small.names, cst.ImportStar
            ):
                for alias in small.names:
                    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                        out.add(alias.asname.name.value)
                    elif isinstance(alias.name, cst.Name):
                        out.add(alias.name.value)
                    elif isinstance(small, cst.Import):  # import a.b binds a
                        out.add(cst.Module([]).code_for_node(alias.name).split(".")[0])
    elif isinstance(stmt, cst.FunctionDef | cst.ClassDef):
        out.add(stmt.name.value)
    return out


def _branches(node: cst.If) -> list[cst.CSTNode]:
    out: list[cst.CSTNode] = [node.body]
    if node.orelse is not None:
        out.append(node.orelse)
    return out


def _always_true(test: cst.BaseExpression) -> bool:
    return (isinstance(test, cst.Name) and test.value == "True") or (
        isinstance(test, cst.Integer) and test.value not in ("0", "0x0", "0o0", "0b0")
    )
