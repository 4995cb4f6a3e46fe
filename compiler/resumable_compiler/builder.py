"""The one object every lowering function works on (mypyc's IRBuilder).

`Lowering` holds the state writer (states.py), the rewriter for what runs
unchanged (rewrite.py), and the analysis. Its three entry points dispatch
through tables that lower.py fills in, so the modules lowering each kind of
construct call each other only through it and import nothing but this
module and the helpers:

    b.statement(stmt)               a statement (unchanged when it has no await)
    b.value(expr)                   an expression's value, lowered (its awaits
                                    become states before the current one)
    b.jump_if(test, label, when=)   a condition in jump context

The helpers below keep CPython's evaluation order when an expression is
taken apart: `operands` evaluates siblings left to right, spilling into
hidden temporaries whatever an await to its right could change.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import libcst as cst

from resumable.errors import CompileError, InternalError

from . import codes
from .control import JumpKind
from .ir import Analysis
from .rewrite import Rewriter, code, target_names
from .states import StateWriter
from .tree import children

__all__ = ["Lowering", "Tables", "walrus_targets"]

_CONSTANTS = (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.Ellipsis)
_BUILTINS = frozenset(dir(builtins))

StatementRule = Callable[["Lowering", Any], None]
ExpressionRule = Callable[["Lowering", Any], cst.BaseExpression]
ConditionRule = Callable[["Lowering", cst.BaseExpression, Any, bool], None]


class Tables:
    """What lowers each kind of node (filled in by lower.py)."""

    def __init__(
        self,
        statements: Mapping[type, StatementRule],
        expressions: Mapping[type, ExpressionRule],
        condition: ConditionRule,
    ) -> None:
        self.statements = statements
        self.expressions = expressions
        self.condition = condition


class Lowering:
    def __init__(self, analysis: Analysis, tables: Tables) -> None:
        self.analysis = analysis
        self.w = StateWriter(analysis)
        self.rw = Rewriter(analysis, lambda kind, value: self.w.jump_code(JumpKind(kind), value))
        self.tables = tables
        self.errors: list[CompileError] = []
        #: Locals certainly bound here: assigned by an earlier top-level
        #: statement of the function body and never deleted.
        self.bound: set[str] = set(analysis.params) - set(analysis.maybe_unbound)

    # -- dispatch ----------------------------------------------------------------

    def statement(self, stmt: cst.BaseStatement | cst.BaseSmallStatement) -> None:
        """Lower one statement; one without an await runs unchanged."""
        if isinstance(stmt, cst.BaseStatement):
            self.w.note(stmt)
        if not self.has_await(stmt):
            self.verbatim(stmt)
            return
        self._rule(self.tables.statements, stmt)(self, stmt)

    def value(self, e: cst.BaseExpression) -> cst.BaseExpression:
        """Lower `e` (value context); returns the expression to use in the current state."""
        if not self.has_await(e):
            return self.rw.expression(e)
        out: cst.BaseExpression = self._rule(self.tables.expressions, e)(self, e)
        return out

    def jump_if(self, test: cst.BaseExpression, label: Any, *, when: bool) -> None:
        """Jump to `label` when `bool(test) == when`; fall through otherwise."""
        self.tables.condition(self, test, label, when)

    @staticmethod
    def _rule(table: Mapping[type, Any], node: cst.CSTNode) -> Any:
        rule = table.get(type(node))
        if rule is None:
            raise InternalError(
                f"no lowering for {type(node).__name__} containing an await "
                "(this is a bug in resumable, please report it)"
            )
        return rule

    # -- blocks ----------------------------------------------------------------------

    def has_await(self, node: cst.CSTNode | None) -> bool:
        return self.analysis.has_await(node)

    def body(self, suite: cst.BaseSuite, bound: set[str] | frozenset[str] = frozenset()) -> None:
        self.block(self.analysis.statements(suite), bound)

    def block(
        self,
        statements: Sequence[cst.BaseStatement],
        bound: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        """Lower a block. A name assigned by one of its statements stays bound
        for the rest of the block (unless the function ever deletes it), so
        later reads need no check for an unbound local."""
        saved = set(self.bound)
        self.bound |= bound - self.analysis.deleted
        for stmt in statements:
            self.statement(stmt)
            self.bound |= bound_by(stmt) - self.analysis.deleted
        self.bound = saved

    def verbatim(self, stmt: cst.BaseStatement | cst.BaseSmallStatement) -> None:
        """Emit `stmt` unchanged (names rewritten) into the current state."""
        if isinstance(stmt, cst.BaseSmallStatement):
            stmt = cst.SimpleStatementLine([stmt.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)])
        self.w.ensure_open()
        for out in self.rw.statement(stmt):
            self.w.emit(out)

    # -- values across awaits ------------------------------------------------------

    def maybe_unbound(self, name: str) -> bool:
        return name in self.analysis.maybe_unbound and name not in self.bound

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
        if is_constant(original) or self.is_hidden(lowered):
            return lowered
        if isinstance(original, cst.Name):
            name = original.value
            if name in self.analysis.locals:
                if name in walrus_targets(later) or name in self.analysis.rebound:
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
            and e.value.value == self.w.L
            and e.attr.value in self.w.hidden
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
        self.w.emit(line)

    def spill(self, lowered: cst.BaseExpression, original: cst.CSTNode) -> cst.Attribute:
        """Compute `lowered` now into a hidden temporary."""
        line = self.analysis.parsed.line_of(original) or self.w.line
        name = self.w.hidden_var("t", f"the value of `{_short(original)}` (line {line})")
        self.w.assign(name, lowered)
        return self.w.local(name)

    def settle(self, e: cst.BaseExpression) -> cst.BaseExpression:
        """Move the last await's value out of `e` before the next checkpoint."""
        if not self.w.sent_nodes:
            return e
        sent = self.w.sent_nodes[-1]
        if not _contains(e, sent):
            return e
        name = self.w.hidden_var("t", f"the value of an await (line {self.w.line})")
        self.w.assign(name, sent)
        replaced = e.deep_replace(sent, self.w.local(name))
        assert isinstance(replaced, cst.BaseExpression)
        return replaced

    def result_var(self, e: cst.CSTNode) -> str:
        """A hidden variable for the value of `e`, computed on several branches."""
        return self.w.hidden_var("t", f"the value of `{_short(e)}` (line {self.w.line})")

    def name_target(self, name: str) -> cst.Name | cst.Attribute:
        """Where a name the function binds lives: `L.name`, or the module's
        global `name` for one declared `global` (the state declares it)."""
        return self.w.local(name) if name in self.analysis.locals else cst.Name(name)

    def unbind(self, name: str) -> None:
        """CPython's `name = None; del name` at the end of `except ... as name`."""
        target = self.name_target(name)
        self.w.emit_small(cst.Assign([cst.AssignTarget(target)], cst.Name("None")), cst.Del(target))

    # -- errors ---------------------------------------------------------------------

    def unsupported(self, node: cst.CSTNode, what: str) -> None:
        self.errors.append(
            self.analysis.parsed.error(
                node,
                codes.AWAIT_POSITION,
                f"await in {what} is not supported yet",
                "await into a variable first and use the variable",
            )
        )


def _short(node: cst.CSTNode) -> str:
    text = code(node).strip().replace("\n", " ")
    return text[:37] + "..." if len(text) > 40 else text


def _contains(root: cst.CSTNode, target: cst.CSTNode) -> bool:
    stack = [root]
    while stack:
        n = stack.pop()
        if n is target:
            return True
        stack.extend(children(n))
    return False


def is_constant(e: cst.BaseExpression) -> bool:
    if isinstance(e, _CONSTANTS):
        return True
    if isinstance(e, cst.Name):
        return e.value in ("None", "True", "False")
    if isinstance(e, cst.UnaryOperation):
        return isinstance(e.operator, cst.Minus | cst.Plus) and is_constant(e.expression)
    if isinstance(e, cst.ConcatenatedString):
        return is_constant(e.left) and is_constant(e.right)
    return False


def walrus_targets(nodes: Sequence[cst.CSTNode | None]) -> set[str]:
    """Names bound by `:=` anywhere in `nodes`."""
    out: set[str] = set()
    stack = [n for n in nodes if n is not None]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.NamedExpr) and isinstance(n.target, cst.Name):
            out.add(n.target.value)
        stack.extend(children(n))
    return out


def bound_by(stmt: cst.BaseStatement) -> set[str]:
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
                        out.add(code(alias.name).split(".")[0])
    elif isinstance(stmt, cst.FunctionDef | cst.ClassDef):
        out.add(stmt.name.value)
    return out
