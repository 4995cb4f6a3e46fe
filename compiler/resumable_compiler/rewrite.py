"""Statements and expressions as they run inside a state.

Used by the lowering for everything it emits unchanged ("verbatim"):

    total += price(x)        ->  L.total += price(L.x)
    import json              ->  import json; L.json = json
    (n := len(items))        ->  m.let(L, 'n', len(L.items))
    f"{x=}"                  ->  f"x={L.x!r}"
    return total             ->  return m.done(L.total)   (or a jump through finally)
    break                    ->  return 7                 (when it leaves a lowered loop)
    super().save()           ->  super(m.owner, L.self).save()      (in a method)
    __class__                ->  m.owner                            (in a method)

Only the function's own locals are rewritten: names bound inside a
comprehension stay the comprehension's, and globals and builtins keep their
names, so they resolve in the module's namespace. Inside a lambda, nested
function or class body, the names that are the function's locals (free there,
or declared `nonlocal`: scopes.py) are rewritten the same way, so a closure
reads the current value when it runs and writes the function's variable:

    key = lambda p: p * k     ->  L.key = lambda p: p * L.k
    def bump():               ->  def bump():
        nonlocal n                    pass
        n += 1                        L.n += 1

Inside a comprehension the lowering takes apart (comprehensions.py), the
names its `for` clauses bind are its hidden variables (`renaming`):
`x` -> `L._v1`. Rewriting is idempotent: `L.x` is not rewritten again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import libcst as cst

from .fingerprint import holds_await
from .ir import Analysis
from .mangle import mangle_name
from .tree import children

__all__ = [
    "JumpCode",
    "Rewriter",
    "attr",
    "call",
    "code",
    "expand_debug",
    "parenthesize",
    "pattern_captures",
    "target_names",
]

#: jump_code(kind, value) -> the small statements that perform a `break`,
#: `continue` or `return value` from the current position of the lowering.
JumpCode = Callable[[str, cst.BaseExpression | None], list[cst.BaseSmallStatement]]

_EMPTY_MODULE = cst.Module([], default_indent="    ", default_newline="\n")


def code(node: cst.CSTNode) -> str:
    return _EMPTY_MODULE.code_for_node(node)


def attr(obj: str, name: str) -> cst.Attribute:
    return cst.Attribute(value=cst.Name(obj), attr=cst.Name(name))


def call(func: cst.BaseExpression, *args: cst.BaseExpression) -> cst.Call:
    """`func(*args)`; a bare tuple argument gets its parentheses."""
    return cst.Call(func=func, args=[cst.Arg(_argument(a)) for a in args])


def _argument(e: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(e, cst.Tuple) and not e.lpar:
        return e.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return e


def target_names(node: cst.CSTNode | None) -> set[str]:
    """Names bound by an assignment target (`a, (b, *c)` -> a, b, c)."""
    out: set[str] = set()
    stack = [node] if node is not None else []
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Name):
            out.add(n.value)
        elif isinstance(n, cst.Tuple | cst.List):
            stack.extend(e.value for e in n.elements)
        elif isinstance(n, cst.StarredElement):
            stack.append(n.value)
    return out


def _comp_targets(for_in: cst.CompFor | None) -> set[str]:
    out: set[str] = set()
    while for_in is not None:
        out |= target_names(for_in.target)
        for_in = for_in.inner_for_in
    return out


def pattern_captures(pattern: cst.CSTNode) -> list[str]:
    """The names a `case` pattern binds, in source order."""
    out: list[str] = []
    stack = [pattern]
    while stack:
        n = stack.pop()
        if (isinstance(n, cst.MatchAs) and n.name is not None) or (
            isinstance(n, cst.MatchStar) and n.name is not None
        ):
            out.append(n.name.value)
        elif isinstance(n, cst.MatchMapping) and n.rest is not None:
            out.append(n.rest.value)
        stack.extend(reversed(children(n)))
    return sorted(set(out), key=out.index)


class Rewriter(cst.CSTTransformer):
    """Rewrites one statement or expression for a state (see module docstring)."""

    def __init__(self, analysis: Analysis, jump_code: JumpCode | None = None) -> None:
        super().__init__()
        self.locals = analysis.locals
        self.captured = analysis.captured
        self.L = analysis.reserved.frame
        self.m = analysis.reserved.machine
        fn = analysis.function
        #: In a method: the class that mangles names, and the first parameter,
        #: which zero-argument `super()` passes (None: there is none).
        self.method = fn.is_method
        self.private = fn.private
        positional = [*fn.node.params.posonly_params, *fn.node.params.params]
        self.first: str | None = positional[0].name.value if positional else None
        self.first_deleted = self.first in analysis.deleted
        self.jump_code = jump_code
        self.shadow: list[frozenset[str]] = [frozenset()]
        #: Variables of the comprehensions being lowered -> their hidden variables.
        self.renames: Mapping[str, str] = {}
        self.comp_fors: list[cst.CompFor] = []
        #: Depth inside lambda, def and class bodies, and for each the
        #: function's locals it uses (scopes.py).
        self.opaque = 0
        #: Inside a class body nested in the function (mangled by CPython itself).
        self.class_bodies = 0
        self.scopes: list[frozenset[str]] = []
        self.loops = 0
        self.protected = 0

    # -- entry points -----------------------------------------------------------

    def statement(self, stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
        out = stmt.visit(self)
        if isinstance(out, cst.FlattenSentinel):
            return list(out.nodes)
        if isinstance(out, cst.RemovalSentinel):
            return []
        return [out]

    def expression(self, expr: cst.BaseExpression) -> cst.BaseExpression:
        out = expr.visit(self)
        assert isinstance(out, cst.BaseExpression)
        return out

    @contextmanager
    def renaming(self, names: Mapping[str, str]) -> Iterator[None]:
        """Rewrite each of `names` to its hidden variable (a comprehension's
        own scope, inside the scopes already being renamed)."""
        saved = self.renames
        self.renames = {**saved, **names}
        try:
            yield
        finally:
            self.renames = saved

    def is_local(self, name: str) -> bool:
        """Is `name`, here, one of the function's locals?"""
        if name in self.shadow[-1]:
            return False
        if self.opaque:
            return name in self.scopes[-1]
        return name in self.locals

    def helper(self, name: str, args: Sequence[cst.Arg]) -> cst.Call:
        """A call of a helper of the runtime on the locals: `m.name(L, ...)`
        in the function's own code; inside a nested body, which has no `m`,
        the locals' own method `L.__name__(...)`."""
        if self.opaque:
            return cst.Call(func=attr(self.L, f"__{name}__"), args=args)
        return cst.Call(func=attr(self.m, name), args=[cst.Arg(cst.Name(self.L)), *args])

    def renamed(self, name: str) -> str | None:
        """The hidden variable `name` stands for here, if it is a variable of
        a comprehension being lowered (and no inner scope binds it)."""
        if self.opaque or name in self.shadow[-1]:
            return None
        return self.renames.get(name)

    def local(self, name: str) -> cst.Attribute:
        return attr(self.L, name)

    # -- names ----------------------------------------------------------------------

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        if self.protected:
            return updated_node
        name = self.renamed(original_node.value)
        if name is None and self.is_local(original_node.value):
            name = original_node.value
        if name is not None:
            return self.local(name).with_changes(lpar=original_node.lpar, rpar=original_node.rpar)
        if (
            original_node.value == "__class__"
            and self.method
            and not self.protected
            and not self.opaque
        ):
            return attr(self.m, "owner").with_changes(
                lpar=original_node.lpar, rpar=original_node.rpar
            )
        return updated_node

    # -- zero-argument super() in a method ------------------------------------------------

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        """`super()` -> `super(m.owner, L.self)`: the class the method is
        defined in (its `__class__` cell) and the current value of its first
        parameter, as CPython's zero-argument form reads them."""
        func = original_node.func
        if (
            not self.method
            or self.opaque
            or original_node.args
            or not isinstance(func, cst.Name)
            or func.value != "super"
            or self.is_local("super")
        ):
            return updated_node
        first: cst.BaseExpression
        if self.first is None or self.first_deleted:
            name = cst.Name("None") if self.first is None else cst.SimpleString(repr(self.first))
            first = call(attr(self.m, "super_argument"), cst.Name(self.L), name)
        else:
            first = self.local(self.first) if self.is_local(self.first) else cst.Name(self.first)
        return updated_node.with_changes(
            args=[
                cst.Arg(
                    attr(self.m, "owner"),
                    comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")),
                ),
                cst.Arg(first),
            ]
        )

    # Names that are not variable references (attribute names, keywords,
    # parameters, pattern captures, ...) are never rewritten.
    def _protect(self, node: cst.CSTNode) -> None:
        self.protected += 1

    def _unprotect(self, node: cst.CSTNode) -> None:
        self.protected -= 1

    visit_Attribute_attr = _protect
    leave_Attribute_attr = _unprotect
    visit_Arg_keyword = _protect
    leave_Arg_keyword = _unprotect
    visit_Param_name = _protect
    leave_Param_name = _unprotect
    visit_MatchAs_name = _protect
    leave_MatchAs_name = _unprotect
    visit_MatchStar_name = _protect
    leave_MatchStar_name = _unprotect
    visit_MatchMapping_rest = _protect
    leave_MatchMapping_rest = _unprotect
    visit_MatchKeywordElement_key = _protect
    leave_MatchKeywordElement_key = _unprotect
    visit_ExceptHandler_name = _protect
    leave_ExceptHandler_name = _unprotect
    visit_ExceptStarHandler_name = _protect
    leave_ExceptStarHandler_name = _unprotect
    visit_FunctionDef_name = _protect
    leave_FunctionDef_name = _unprotect
    visit_ClassDef_name = _protect
    leave_ClassDef_name = _unprotect
    visit_NamedExpr_target = _protect
    leave_NamedExpr_target = _unprotect

    def leave_NamedExpr(
        self, original_node: cst.NamedExpr, updated_node: cst.NamedExpr
    ) -> cst.BaseExpression:
        target = original_node.target
        assert isinstance(target, cst.Name)
        if not self.is_local(target.value):
            return updated_node
        return self.helper(
            "let", [cst.Arg(cst.SimpleString(repr(target.value))), cst.Arg(updated_node.value)]
        )

    # -- annotations of locals: never evaluated ------------------------------------

    def leave_AnnAssign(
        self, original_node: cst.AnnAssign, updated_node: cst.AnnAssign
    ) -> cst.AnnAssign:
        """`x: (await t) = v`: CPython never evaluates the annotation of a local,
        but a state could not even compile one that awaits; it is kept as text."""
        annotation = original_node.annotation.annotation
        if self.opaque or not holds_await(annotation):
            return updated_node
        text = cst.SimpleString(repr(code(annotation)))
        return updated_node.with_changes(
            annotation=updated_node.annotation.with_changes(annotation=text)
        )

    # -- f-string `=` specifier: its text is the source of the expression --------

    def leave_FormattedStringExpression(
        self,
        original_node: cst.FormattedStringExpression,
        updated_node: cst.FormattedStringExpression,
    ) -> cst.BaseFormattedStringContent | cst.FlattenSentinel[cst.BaseFormattedStringContent]:
        if original_node.equal is None:
            return updated_node
        if self.opaque and not self._mentions_local(original_node.expression):
            return updated_node
        return cst.FlattenSentinel(expand_debug(original_node, updated_node))

    def _mentions_local(self, node: cst.CSTNode) -> bool:
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, cst.Name) and self.is_local(n.value):
                return True
            stack.extend(children(n))
        return False

    # -- scopes ---------------------------------------------------------------------

    def _enter_comp(self, for_in: cst.CompFor) -> None:
        self.shadow.append(self.shadow[-1] | _comp_targets(for_in))
        self.comp_fors.append(for_in)

    def _leave_comp(self) -> None:
        self.shadow.pop()
        self.comp_fors.pop()

    def visit_ListComp(self, node: cst.ListComp) -> None:
        self._enter_comp(node.for_in)

    def leave_ListComp(
        self, original_node: cst.ListComp, updated_node: cst.ListComp
    ) -> cst.ListComp:
        self._leave_comp()
        return updated_node

    def visit_SetComp(self, node: cst.SetComp) -> None:
        self._enter_comp(node.for_in)

    def leave_SetComp(self, original_node: cst.SetComp, updated_node: cst.SetComp) -> cst.SetComp:
        self._leave_comp()
        return updated_node

    def visit_DictComp(self, node: cst.DictComp) -> None:
        self._enter_comp(node.for_in)

    def leave_DictComp(
        self, original_node: cst.DictComp, updated_node: cst.DictComp
    ) -> cst.DictComp:
        self._leave_comp()
        return updated_node

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        self._enter_comp(node.for_in)

    def leave_GeneratorExp(
        self, original_node: cst.GeneratorExp, updated_node: cst.GeneratorExp
    ) -> cst.GeneratorExp:
        self._leave_comp()
        return updated_node

    def visit_CompFor_iter(self, node: cst.CompFor) -> None:
        # The outermost iterable is evaluated in the enclosing scope.
        outer = bool(self.comp_fors) and self.comp_fors[-1] is node
        self.shadow.append(self.shadow[-2] if outer else self.shadow[-1])

    def leave_CompFor_iter(self, node: cst.CompFor) -> None:
        self.shadow.pop()

    # A nested body is a scope of its own: only the names scopes.py found to
    # be the function's are rewritten there (a node met again, already
    # rewritten, has none left to rewrite).
    def _enter_scope(self, node: cst.CSTNode) -> None:
        self.opaque += 1
        self.scopes.append(self.captured.get(id(node), frozenset()))
        self.shadow.append(frozenset())

    def _leave_scope(self, node: cst.CSTNode) -> None:
        self.opaque -= 1
        self.scopes.pop()
        self.shadow.pop()

    visit_Lambda_body = _enter_scope
    leave_Lambda_body = _leave_scope
    visit_FunctionDef_body = _enter_scope
    leave_FunctionDef_body = _leave_scope

    def visit_ClassDef_body(self, node: cst.ClassDef) -> None:
        self._enter_scope(node)
        self.class_bodies += 1

    def leave_ClassDef_body(self, node: cst.ClassDef) -> None:
        self._leave_scope(node)
        self.class_bodies -= 1

    # -- binding statements that cannot target L.x ------------------------------------

    def _copy_back(self, names: Sequence[str]) -> list[cst.BaseSmallStatement]:
        return [
            cst.Assign([cst.AssignTarget(self.local(n))], cst.Name(n))
            for n in names
            if self.is_local(n)
        ]

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def leave_Import(
        self, original_node: cst.Import, updated_node: cst.Import
    ) -> cst.BaseSmallStatement | cst.FlattenSentinel[cst.BaseSmallStatement]:
        names = []
        for alias in original_node.names:
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                names.append(alias.asname.name.value)
            else:
                names.append(code(alias.name).split(".")[0])
        copies = self._copy_back(names)
        return cst.FlattenSentinel([updated_node, *copies]) if copies else updated_node

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.BaseSmallStatement | cst.FlattenSentinel[cst.BaseSmallStatement]:
        if isinstance(original_node.names, cst.ImportStar):
            return updated_node
        names = []
        for alias in original_node.names:
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                names.append(alias.asname.name.value)
            else:
                names.append(code(alias.name))
        copies = self._copy_back(names)
        return cst.FlattenSentinel([updated_node, *copies]) if copies else updated_node

    def visit_Global(self, node: cst.Global) -> bool:
        return False

    def leave_Global(
        self, original_node: cst.Global, updated_node: cst.Global
    ) -> cst.BaseSmallStatement:
        # Declared once at the top of each state function instead.
        return cst.Pass() if not self.opaque else updated_node

    def visit_Nonlocal(self, node: cst.Nonlocal) -> bool:
        return False

    def leave_Nonlocal(
        self, original_node: cst.Nonlocal, updated_node: cst.Nonlocal
    ) -> cst.BaseSmallStatement:
        # The function's variables are attributes of L: no declaration needed.
        kept = [item for item in updated_node.names if not self.is_local(item.name.value)]
        if not kept:
            return cst.Pass()
        if len(kept) == len(updated_node.names):
            return updated_node
        return updated_node.with_changes(
            names=[*kept[:-1], kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
        )

    def _define(
        self, original: cst.FunctionDef | cst.ClassDef, updated: cst.FunctionDef | cst.ClassDef
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        name = original.name.value
        bound = name if self.class_bodies else mangle_name(name, self.private)
        if bound != name:
            # `def __f` in a method keeps its __name__ and binds `_Class__f`
            # (mangle.py): bind that too, in the scope the def is in.
            target: cst.BaseAssignTargetExpression = (
                self.local(bound) if self.is_local(bound) else cst.Name(bound)
            )
            copy = cst.Assign([cst.AssignTarget(target)], cst.Name(name))
            return cst.FlattenSentinel([updated, cst.SimpleStatementLine([copy])])
        copies = self._copy_back([name])
        if not copies:
            return updated
        return cst.FlattenSentinel([updated, cst.SimpleStatementLine(copies)])

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        return self._define(original_node, updated_node)

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        return self._define(original_node, updated_node)

    def _handler(
        self,
        original: cst.ExceptHandler | cst.ExceptStarHandler,
        updated: cst.ExceptHandler | cst.ExceptStarHandler,
    ) -> cst.ExceptHandler | cst.ExceptStarHandler:
        if original.name is None:
            return updated
        name = original.name.name
        assert isinstance(name, cst.Name)
        if not self.is_local(name.value):
            return updated
        # CPython binds `e`, runs the body, then does `e = None; del e`.
        local = self.local(name.value)
        bind = cst.SimpleStatementLine(
            [cst.Assign([cst.AssignTarget(local)], cst.Name(name.value))]
        )
        unbind = cst.SimpleStatementLine(
            [cst.Assign([cst.AssignTarget(local)], cst.Name("None")), cst.Del(local)]
        )
        body = cst.IndentedBlock(
            [
                bind,
                cst.Try(
                    body=_as_block(updated.body),
                    finalbody=cst.Finally(body=cst.IndentedBlock([unbind])),
                ),
            ]
        )
        return updated.with_changes(body=body)

    def leave_ExceptHandler(
        self, original_node: cst.ExceptHandler, updated_node: cst.ExceptHandler
    ) -> cst.ExceptHandler:
        out = self._handler(original_node, updated_node)
        assert isinstance(out, cst.ExceptHandler)
        return out

    def leave_ExceptStarHandler(
        self, original_node: cst.ExceptStarHandler, updated_node: cst.ExceptStarHandler
    ) -> cst.ExceptStarHandler:
        out = self._handler(original_node, updated_node)
        assert isinstance(out, cst.ExceptStarHandler)
        return out

    def leave_MatchCase(
        self, original_node: cst.MatchCase, updated_node: cst.MatchCase
    ) -> cst.MatchCase:
        captured = [n for n in pattern_captures(original_node.pattern) if self.is_local(n)]
        if not captured:
            return updated_node
        # Captures bind names of the state function; copy them into L before the guard runs.
        capture = self.helper(
            "capture",
            [cst.Arg(cst.Name(n), keyword=cst.Name(n), equal=_TIGHT_EQUAL) for n in captured],
        )
        guard: cst.BaseExpression = capture
        if updated_node.guard is not None:
            guard = cst.BooleanOperation(
                left=capture, operator=cst.And(), right=parenthesize(updated_node.guard)
            )
        return updated_node.with_changes(
            guard=guard,
            whitespace_before_if=cst.SimpleWhitespace(" "),
            whitespace_after_if=cst.SimpleWhitespace(" "),
        )

    # -- jumps out of lowered constructs ---------------------------------------------------

    def visit_For_body(self, node: cst.For) -> None:
        self.loops += 1

    def leave_For_body(self, node: cst.For) -> None:
        self.loops -= 1

    def visit_While_body(self, node: cst.While) -> None:
        self.loops += 1

    def leave_While_body(self, node: cst.While) -> None:
        self.loops -= 1

    def leave_Return(
        self, original_node: cst.Return, updated_node: cst.Return
    ) -> cst.BaseSmallStatement | cst.FlattenSentinel[cst.BaseSmallStatement]:
        if self.opaque or self.jump_code is None:
            return updated_node
        value = updated_node.value if updated_node.value is not None else cst.Name("None")
        return cst.FlattenSentinel(self.jump_code("return", value))

    def _loop_jump(
        self, kind: str, updated: cst.BaseSmallStatement
    ) -> cst.BaseSmallStatement | cst.FlattenSentinel[cst.BaseSmallStatement]:
        if self.opaque or self.loops or self.jump_code is None:
            return updated
        return cst.FlattenSentinel(self.jump_code(kind, None))

    def leave_Break(
        self, original_node: cst.Break, updated_node: cst.Break
    ) -> cst.BaseSmallStatement | cst.FlattenSentinel[cst.BaseSmallStatement]:
        return self._loop_jump("break", updated_node)

    def leave_Continue(
        self, original_node: cst.Continue, updated_node: cst.Continue
    ) -> cst.BaseSmallStatement | cst.FlattenSentinel[cst.BaseSmallStatement]:
        return self._loop_jump("continue", updated_node)


def expand_debug(
    original: cst.FormattedStringExpression, field: cst.FormattedStringExpression
) -> list[cst.BaseFormattedStringContent]:
    """`{x=}` -> the text `x=` and `{x!r}` (or `{x:spec}`): the text is the
    expression's source, which must not change when its names are rewritten."""
    assert original.equal is not None
    text = (
        code(original.whitespace_before_expression)
        + code(original.expression)
        + code(original.whitespace_after_expression)
        + code(original.equal)
    )
    conversion = original.conversion
    if conversion is None and original.format_spec is None:
        conversion = "r"
    # `{ {x}=}`: without its space the field would open with `{{`, an escaped brace.
    before = " " if code(field.expression).startswith("{") else ""
    return [
        cst.FormattedStringText(text.replace("{", "{{").replace("}", "}}")),
        field.with_changes(
            equal=None,
            conversion=conversion,
            whitespace_before_expression=cst.SimpleWhitespace(before),
            whitespace_after_expression=cst.SimpleWhitespace(""),
        ),
    ]


_TIGHT_EQUAL = cst.AssignEqual(
    whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
)


def _as_block(body: cst.BaseSuite) -> cst.IndentedBlock:
    if isinstance(body, cst.IndentedBlock):
        return body.with_changes(header=cst.TrailingWhitespace())
    assert isinstance(body, cst.SimpleStatementSuite)
    return cst.IndentedBlock([cst.SimpleStatementLine(body.body)])


_ATOMS = (
    cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float, cst.Imaginary,
    cst.SimpleString, cst.ConcatenatedString, cst.FormattedString, cst.List, cst.Dict,
    cst.Set, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp, cst.Ellipsis,
)  # fmt: skip


def parenthesize(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`expr`, wrapped in parentheses unless it is an atom or already wrapped."""
    if isinstance(expr, _ATOMS) or expr.lpar:
        return expr
    return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
