"""The frozen values the passes hand each other.

parse    -> ParsedModule (one FunctionSource per decorated function)
analyze  -> Analysis     (scopes, what contains an await, reserved names)
lower    -> Lowered      (numbered states; `live` still empty)
liveness -> Lowered      (with `live` for every await state)
check    -> the same Lowered, or InternalError
emit     -> the generated module's text
"""

from __future__ import annotations
import __future__

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import libcst as cst
from libcst.metadata import CodeRange

from resumable.errors import CompileError, InternalError

from .codes import Code

__all__ = [
    "Analysis",
    "AwaitSite",
    "FunctionSource",
    "ImplicitAwait",
    "Lowered",
    "ParsedModule",
    "Reserved",
    "State",
]


@dataclass(frozen=True)
class FunctionSource:
    """A decorated function found by `parse`."""

    #: A method's parameters and body are mangled (mangle.py).
    node: cst.FunctionDef
    #: `checkout`, or `Cart.checkout` for a method.
    qualname: str
    #: Line of the `def` keyword, and of the first decorator (the source block start).
    def_line: int
    first_line: int
    #: "function", or for a method "method", "classmethod" or "staticmethod".
    kind: str = "function"
    #: The classes a method is defined in, outermost first (empty for a function).
    scope: tuple[str, ...] = ()

    @property
    def is_method(self) -> bool:
        return bool(self.scope)

    @property
    def private(self) -> str:
        """The class whose name mangles private names in it ('' for a function)."""
        return self.scope[-1] if self.scope else ""


@dataclass(frozen=True)
class ParsedModule:
    path: str
    #: Path as shown in messages and generated headers (relative when possible).
    display_path: str
    module_name: str
    source: str
    lines: tuple[str, ...]
    module: cst.Module
    positions: Mapping[cst.CSTNode, CodeRange]
    functions: tuple[FunctionSource, ...]
    #: Names bound at module level (for deciding what may be missing at run time).
    module_names: frozenset[str]
    errors: tuple[CompileError, ...]
    #: The module's stdlib symtable (the authority on scopes), None on syntax errors.
    table: Any = None
    #: The module's `__future__` features as code flags (`from __future__
    #: import annotations`: annotations are not evaluated, nor given scopes).
    future_flags: int = 0

    def error(
        self, node: cst.CSTNode, code: Code, message: str, fix: str = "", construct: str = ""
    ) -> CompileError:
        """A CompileError positioned at `node` (the fix and construct default
        to the code's)."""
        line, column = self.position(node)
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return CompileError(
            message,
            path=self.display_path,
            line=line,
            column=column,
            code=code.code,
            construct=construct or code.construct,
            fix=fix or code.fix,
            source_line=text,
        )

    def position(self, node: cst.CSTNode) -> tuple[int, int]:
        """(1-based line, 0-based column) of `node`, (0, 0) if unknown."""
        pos = self.positions.get(node)
        return (pos.start.line, pos.start.column) if pos else (0, 0)

    def line_of(self, node: cst.CSTNode) -> int:
        return self.position(node)[0]

    @property
    def future_annotations(self) -> bool:
        """Under `from __future__ import annotations` (PEP 563): annotations
        are strings, never evaluated."""
        return bool(self.future_flags & __future__.annotations.compiler_flag)


@dataclass(frozen=True)
class Reserved:
    """Names the generated code uses, chosen so they collide with nothing in
    the function: the parameters of every state, and the prefix of hidden
    variables (temporaries `_t1`, loop cursors `_c1`, handled exceptions
    `_x1`, finally records `_f1`, the managers of `with` statements `_w1`,
    the iterators of `async for` loops `_i1`, the pending return value
    `_rv`, a comprehension's accumulator `_a1` and variables `_v1`)."""

    frame: str = "L"
    machine: str = "m"
    hidden: str = "_"


@dataclass(frozen=True)
class ImplicitAwait:
    """An await the source does not spell out: the language reference's
    expansion of `async with` and `async for` awaits methods of the manager
    and of the iterator. Each is a site of its own, numbered with the
    explicit awaits in source order (fingerprint.py places it):

        async with A() as a:     `__aenter__` of the item: after its expression
            ...
                                 `__aexit__` of the item: after the statement
                                  (innermost item first), on every way out
        async for x in xs:       `__anext__`: after the iterable
        [y async for y in ys]    `__anext__` of the comprehension's `for`

    Equal when they are the same method of the same node."""

    node: cst.WithItem | cst.For | cst.CompFor
    method: str  # "__aenter__", "__aexit__" or "__anext__"


#: An await of the function's source: an `await` expression, or an implicit one.
AwaitSite = cst.Await | ImplicitAwait


@dataclass(frozen=True)
class Analysis:
    parsed: ParsedModule
    function: FunctionSource
    params: tuple[str, ...]
    #: Every local variable of the function (parameters included), excluding
    #: names declared `global`.
    locals: frozenset[str]
    declared_globals: frozenset[str]
    #: Locals that may be unbound when read (not parameters, or deleted).
    maybe_unbound: frozenset[str]
    #: Locals deleted somewhere (`del x`, or the end of `except ... as x`).
    deleted: frozenset[str]
    #: Modules the function imports (a checkpoint may import these again).
    imports: tuple[str, ...]
    #: Locals bound by a `class` statement (a class defined in the function
    #: is never serializable), with the (line, column) of their first binding.
    function_values: Mapping[str, tuple[int, int]]
    #: id() of every node that contains an await in this function's scope.
    awaiting: frozenset[int]
    #: The function's awaits in source order (fingerprint.py), implicit ones
    #: included: a site's index is its ordinal, which names it across
    #: versions of the code.
    awaits: tuple[AwaitSite, ...]
    reserved: Reserved
    errors: tuple[CompileError, ...]
    #: id() of every lambda, nested def and class node -> its names that are
    #: the function's locals (rewritten to `L.name` inside it: scopes.py).
    captured: Mapping[int, frozenset[str]] = field(default_factory=dict)
    #: Locals a nested scope declares `nonlocal`: a closure called during an
    #: await may change them, so they are read before it where CPython does.
    rebound: frozenset[str] = frozenset()
    #: id() of every one-line suite (`if a: x; y`) of the function's own
    #: scope -> the line its small statements are lowered as. analyze made it
    #: and marked it in `awaiting`, so the lowering sees the node analyze saw.
    lines: Mapping[int, cst.SimpleStatementLine] = field(default_factory=dict)

    def has_await(self, node: cst.CSTNode | None) -> bool:
        return node is not None and id(node) in self.awaiting

    def statements(self, suite: cst.BaseSuite) -> Sequence[cst.BaseStatement]:
        """The statements of a block: a one-line suite's are one line."""
        if isinstance(suite, cst.SimpleStatementSuite):
            line = self.lines.get(id(suite))
            if line is None:
                raise InternalError("a one-line suite analyze did not see")
            return [line]
        assert isinstance(suite, cst.IndentedBlock)
        return suite.body

    def implicit_await(
        self, node: cst.WithItem | cst.For | cst.CompFor, method: str
    ) -> ImplicitAwait:
        """The site of `node`'s implicit await of `method` (one of `awaits`)."""
        site = ImplicitAwait(node, method)
        if site not in self.awaits:
            raise InternalError(f"no implicit await of {method} at this node")
        return site


@dataclass(frozen=True)
class State:
    """One state of a machine."""

    index: int
    body: tuple[cst.BaseStatement, ...]
    #: Source line the state starts at (compile-time numbering).
    line: int
    is_await: bool
    #: For an await state: the state that receives the awaited value.
    resume: int | None
    #: For an await state: the ordinal of its site (Analysis.awaits).
    site: int | None
    #: Where an exception raised here goes: (state, variable receiving it).
    on_error: tuple[int, str] | None
    #: Variables holding the exceptions being handled while this state runs.
    handled: tuple[str, ...]
    successors: tuple[int, ...]


@dataclass(frozen=True)
class Lowered:
    analysis: Analysis
    states: tuple[State, ...]
    #: Hidden variable -> what it holds (for error messages).
    hidden: Mapping[str, str]
    #: Await state -> locals live at its checkpoint (filled by liveness).
    live: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    errors: tuple[CompileError, ...] = ()
