"""Pass 1, parse: source text -> ParsedModule with its decorated functions.

    import resumable as r
    @r.function                 # found: `r` names the resumable module
    async def checkout(...): ...

Accepted spellings: `@resumable.function`, `@resumable.function(...)`, and
the same through `import resumable as X` or `from resumable import function
[as Y]`. A decorated function must be an `async def` at module level, or a
method (also a `@staticmethod` or `@classmethod`, above or below the
decorator) of a class defined at module level, or in such a class (E04):

    class Cart:
        @resumable.function
        async def checkout(self): ...     # FunctionSource(qualname="Cart.checkout",
                                          #   kind="method", scope=("Cart",))

A method's parameters and body are mangled as CPython mangles private names
(mangle.py) before any other pass sees them.
Syntax errors are reported with CPython's own message and position (E00).
"""

from __future__ import annotations

import symtable
from collections import ChainMap
from collections.abc import Mapping, Sequence

import libcst as cst
from libcst._nodes.internal import CodegenState
from libcst.metadata import CodeRange
from libcst.metadata.position_provider import NEWLINE_RE, PositionProvidingCodegenState

from resumable.errors import CompileError
from resumable.source import FUTURE_FLAGS, display_path, module_name_for, source_lines

from . import codes
from .cache import read_source
from .ir import FunctionSource, ParsedModule
from .mangle import mangle_function

__all__ = ["module_name_for", "parse", "read_source", "source_lines"]


def _syntax_error(e: SyntaxError, display: str, lines: list[str]) -> CompileError:
    line = e.lineno or 0
    column = max((e.offset or 1) - 1, 0)
    text = lines[line - 1] if 0 < line <= len(lines) else (e.text or "")
    return CompileError(
        e.msg,
        path=display,
        line=line,
        column=column,
        code=codes.SYNTAX.code,
        construct="syntax",
        fix="fix the syntax error; the file is not valid Python",
        source_line=text,
    )


class _Decorated:
    """Finds decorated functions anywhere, tracking nesting.

    A `def` is a statement, so only statements and the blocks and clauses
    holding them are walked (never expressions): the functions are found in
    source order, as a full visit finds them, at a fraction of its cost."""

    def __init__(self, module_aliases: set[str], function_aliases: set[str]) -> None:
        self.module_aliases = module_aliases
        self.function_aliases = function_aliases
        #: The enclosing definitions: ("class" or "def", name), outermost first.
        self.stack: list[tuple[str, str]] = []
        self.found: list[tuple[cst.FunctionDef, list[tuple[str, str]]]] = []
        #: Indexes of the module's top-level statements holding a found function.
        self.tops: set[int] = set()

    def is_resumable(self, decorator: cst.Decorator) -> bool:
        d = decorator.decorator
        if isinstance(d, cst.Call):
            d = d.func
        if isinstance(d, cst.Name):
            return d.value in self.function_aliases
        return (
            isinstance(d, cst.Attribute)
            and isinstance(d.value, cst.Name)
            and d.value.value in self.module_aliases
            and d.attr.value == "function"
        )

    def module(self, module: cst.Module) -> None:
        for index, stmt in enumerate(module.body):
            before = len(self.found)
            self.walk(stmt)
            if len(self.found) > before:
                self.tops.add(index)

    def walk(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.FunctionDef):
            if any(self.is_resumable(d) for d in node.decorators):
                self.found.append((node, list(self.stack)))
            self.stack.append(("def", node.name.value))
            self.walk(node.body)
            self.stack.pop()
        elif isinstance(node, cst.ClassDef):
            self.stack.append(("class", node.name.value))
            self.walk(node.body)
            self.stack.pop()
        else:
            for child in _statement_parts(node):
                self.walk(child)


#: What may hold a statement (a `def` among them): statements, blocks and the
#: clauses of compound statements. Simple statements and expressions do not.
_HOLDS_STATEMENTS = (
    cst.BaseCompoundStatement,
    cst.IndentedBlock,
    cst.Else,
    cst.ExceptHandler,
    cst.ExceptStarHandler,
    cst.Finally,
    cst.MatchCase,
)


def _statement_parts(node: cst.CSTNode) -> Sequence[cst.CSTNode]:
    """The parts of `node` that may hold statements, in source order: read
    from the fields of the usual kinds (libcst's `children` runs a visitor
    over every field), else picked from `children`."""
    if isinstance(node, cst.IndentedBlock):
        return node.body
    if isinstance(node, cst.SimpleStatementLine | cst.SimpleStatementSuite):
        return ()
    if isinstance(node, cst.If | cst.For | cst.While):
        return (node.body, node.orelse) if node.orelse is not None else (node.body,)
    if isinstance(node, cst.Else | cst.Finally | cst.With | cst.ExceptHandler):
        return (node.body,)
    if isinstance(node, cst.Try):
        rest = [x for x in (node.orelse, node.finalbody) if x is not None]
        return (node.body, *node.handlers, *rest)
    return [c for c in node.children if isinstance(c, _HOLDS_STATEMENTS)]


def _positions(module: cst.Module, source: str, tops: set[int]) -> dict[cst.CSTNode, CodeRange]:
    """What libcst's PositionProvider gives, for the nodes of the top-level
    statements `tops` only (those holding decorated functions): recording
    every node's position costs more than parsing the module.

    A statement's first line is found in the source, which is exactly the
    module's code (libcst's round trip): the statement's code, searched from
    the end of the previous one, stands there and nowhere else after it
    (else, or when the source has a carriage return, its place is found by
    rendering the statements before it, as `module.code` does, and counting
    their lines)."""
    if "\r" in source:  # lines as libcst counts them, token by token
        return _positions_by_rendering(module, tops)
    provider = _Positions()
    newline, indent = module.default_newline, module.default_indent
    start = 0  # where in `source` the statements after the last one placed begin
    line = 1  # the line `start` is on
    for index in sorted(tops):
        stmt = module.body[index]
        text = cst.Module([], default_indent=indent, default_newline=newline).code_for_node(stmt)
        found = source.find(text, start)
        if found < 0 or source.find(text, found + 1) >= 0:
            return _positions_by_rendering(module, tops)
        state = PositionProvidingCodegenState(
            default_indent=indent,
            default_newline=newline,
            provider=provider,  # type: ignore[arg-type]
            line=line + source.count("\n", start, found),
        )
        stmt._codegen(state)
        start, line = found + len(text), state.line
    return provider._computed


def _positions_by_rendering(module: cst.Module, tops: set[int]) -> dict[cst.CSTNode, CodeRange]:
    """`_positions`, the other statements rendered to count their lines."""
    provider = _Positions()
    plain = CodegenState(default_indent=module.default_indent,
                         default_newline=module.default_newline)  # fmt: skip
    line = 1
    for node in module.header:
        node._codegen(plain)
    for index, stmt in enumerate(module.body[: max(tops, default=-1) + 1]):
        if index not in tops:
            stmt._codegen(plain)
            continue
        # Lines as PositionProvidingCodegenState counts them, token by token.
        line += sum(len(NEWLINE_RE.findall(t)) for t in plain.tokens)
        plain.tokens.clear()
        state = PositionProvidingCodegenState(
            default_indent=module.default_indent,
            default_newline=module.default_newline,
            provider=provider,  # type: ignore[arg-type]
            line=line,
        )
        stmt._codegen(state)
        line = state.line
    return provider._computed


class _Positions:
    """Stands for libcst's PositionProvider: where its codegen state writes."""

    def __init__(self) -> None:
        self._computed: dict[cst.CSTNode, CodeRange] = {}


def _aliases(module: cst.Module) -> tuple[set[str], set[str]]:
    """Names under which `resumable` and `resumable.function` are imported."""
    modules: set[str] = set()
    functions: set[str] = set()
    for node in _walk_statements(module.body):
        if isinstance(node, cst.Import):
            for alias in node.names:
                name = cst.Module([]).code_for_node(alias.name)
                if name == "resumable":
                    asname = alias.asname
                    modules.add(
                        asname.name.value
                        if asname and isinstance(asname.name, cst.Name)
                        else "resumable"
                    )
        elif isinstance(node, cst.ImportFrom) and node.module is not None:
            if cst.Module([]).code_for_node(node.module) != "resumable" or node.relative:
                continue
            if isinstance(node.names, cst.ImportStar):
                functions.add("function")
                continue
            for alias in node.names:
                if isinstance(alias.name, cst.Name) and alias.name.value == "function":
                    asname = alias.asname
                    functions.add(
                        asname.name.value
                        if asname and isinstance(asname.name, cst.Name)
                        else "function"
                    )
    return modules, functions


def _walk_statements(body: object) -> list[cst.CSTNode]:
    """Small statements at module level, looking into if/try blocks."""
    out: list[cst.CSTNode] = []
    stack = list(body) if isinstance(body, list | tuple) else []
    while stack:
        node = stack.pop(0)
        if isinstance(node, cst.SimpleStatementLine):
            out.extend(node.body)
        elif isinstance(node, cst.If | cst.Try | cst.TryStar):
            stack.extend(_children_blocks(node))
    return out


def _children_blocks(node: cst.CSTNode) -> list[cst.CSTNode]:
    out: list[cst.CSTNode] = []
    for child in node.children:
        if isinstance(child, cst.IndentedBlock):
            out.extend(child.body)
        elif isinstance(
            child, cst.If | cst.Else | cst.ExceptHandler | cst.ExceptStarHandler | cst.Finally
        ):
            out.extend(_children_blocks(child))
    return out


_METHOD_DECORATORS = ("staticmethod", "classmethod")


def _method_kind(node: cst.FunctionDef) -> str:
    """A method's kind: `staticmethod` or `classmethod` when one of its
    decorators is (above or below @resumable.function), else `method`."""
    for decorator in node.decorators:
        d = decorator.decorator
        if isinstance(d, cst.Attribute) and isinstance(d.value, cst.Name):
            if d.value.value != "builtins":
                continue
            d = d.attr
        if isinstance(d, cst.Name) and d.value in _METHOD_DECORATORS:
            return d.value
    return "method"


def _placement_error(
    parsed: ParsedModule, node: cst.FunctionDef, stack: list[tuple[str, str]]
) -> CompileError | None:
    """E04 for a decorated function that cannot be compiled where it is."""
    qualname = ".".join([*(name for _, name in stack), node.name.value])
    functions = [name for kind, name in stack if kind == "def"]
    if functions and stack[-1][0] == "class":
        owner = stack[-1][1]
        return parsed.error(
            node.name,
            codes.PLACEMENT,
            f"@resumable.function on `{qualname}`, a method of class `{owner}`, which is "
            f"defined inside function `{functions[-1]}`: only methods of module-level classes "
            "can be found again when a run resumes",
            fix=f"define class `{owner}` at module level",
            construct="method of a local class",
        )
    if functions:
        return parsed.error(
            node.name,
            codes.PLACEMENT,
            f"@resumable.function on `{qualname}`, which is defined inside function "
            f"`{functions[-1]}`: not a module-level function (a nested function cannot be "
            "found again when a run resumes)",
            fix="move it to module level and pass what it needs as arguments",
            construct="nested function",
        )
    if node.asynchronous is None:
        return parsed.error(
            node.name,
            codes.PLACEMENT,
            f"@resumable.function on `{qualname}`, which is not an `async def`",
            fix=f"declare it `async def {node.name.value}(...)`",
            construct="def",
        )
    return None


def _module_names(table: symtable.SymbolTable) -> frozenset[str]:
    return frozenset(
        s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()
    )


def parse(path: str, source: str | None = None) -> ParsedModule:
    """Parse one source file. Errors are collected in `errors`, never raised."""
    display = display_path(path)
    if source is None:
        source = read_source(path)
    lines = source_lines(source)
    empty = cst.Module([])
    try:
        # CPython's own compiler: the errors it alone reports (await outside
        # an async function, break outside a loop, ...) come with its message.
        code = compile(source, path, "exec", dont_inherit=True)
        table = symtable.symtable(source, path, "exec")
    except SyntaxError as e:
        return ParsedModule(
            path, display, module_name_for(path), source, tuple(lines), empty, {}, (),
            frozenset(), (_syntax_error(e, display, lines),),
        )  # fmt: skip
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as e:
        err = CompileError(
            e.message,
            path=display,
            line=e.raw_line,
            column=e.raw_column,
            code=codes.SYNTAX.code,
            construct="syntax",
            fix="libcst cannot parse this file; simplify the construct at this position",
            source_line=lines[e.raw_line - 1] if 0 < e.raw_line <= len(lines) else "",
        )
        return ParsedModule(
            path, display, module_name_for(path), source, tuple(lines), empty, {}, (),
            frozenset(), (err,),
        )  # fmt: skip
    module_aliases, function_aliases = _aliases(module)
    finder = _Decorated(module_aliases, function_aliases)
    finder.module(module)
    positions: Mapping[cst.CSTNode, CodeRange] = _positions(module, source, finder.tops)
    parsed = ParsedModule(
        path, display, module_name_for(path), source, tuple(lines), module, positions, (),
        _module_names(table), (),
    )  # fmt: skip
    functions: list[FunctionSource] = []
    errors: list[CompileError] = []
    origins: dict[cst.CSTNode, CodeRange] = {}
    for node, stack in finder.found:
        error = _placement_error(parsed, node, stack)
        if error is not None:
            errors.append(error)
            continue
        scope = tuple(name for _, name in stack)
        kind = _method_kind(node) if scope else "function"
        original = node
        if scope:
            node, changed = mangle_function(node, scope[-1])
            origins.update(
                (new, positions[old]) for new, old in changed.items() if old in positions
            )
        first = original.decorators[0] if original.decorators else original
        functions.append(
            FunctionSource(
                node=node,
                qualname=".".join([*scope, node.name.value]),
                def_line=parsed.line_of(original.name),
                first_line=parsed.line_of(first),
                kind=kind,
                scope=scope,
            )
        )
    if origins:
        positions = ChainMap(origins, dict(positions))
    return ParsedModule(
        path, display, parsed.module_name, source, tuple(lines), module, positions,
        tuple(functions), parsed.module_names, tuple(errors), table,
        code.co_flags & FUTURE_FLAGS,
    )  # fmt: skip
