"""Pass 2, analyze: a decorated function -> Analysis (scopes, awaits, errors).

    async def f(items):            params=("items",), locals={"items", "total", "x"}
        total = 0                  awaiting = {id of every node containing an await}
        for x in items:            errors = [] (or one CompileError per unsupported
            total += await p(x)              construct, all of them, with positions)
        return total

Scopes come from stdlib `symtable` (exact for walrus in comprehensions and
match captures; for a method, it names private names mangled, as parse.py
has mangled the method's body). An await counts for the function when it is
in its own scope -- including the first iterable of a comprehension, which
CPython evaluates in the enclosing scope -- and not when it is inside a
nested function.
"""

from __future__ import annotations

import builtins
import re
import symtable
from collections.abc import Iterable, Sequence
from typing import Any

import libcst as cst

from resumable.errors import CompileError

from . import codes, tree
from .fingerprint import own_awaits
from .ir import Analysis, FunctionSource, ParsedModule, Reserved
from .mangle import mangle_name
from .scopes import captured_names
from .tree import children

__all__ = ["analyze"]

_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
_HIDDEN = re.compile(r"^_+(?:[tcxfwiav]\d+|rv)$")
_FRAME_ATTRIBUTES = ("_getframe", "currentframe")


class _Scanner:
    """Walks one function body: what contains an await, and what is unsupported."""

    def __init__(
        self, parsed: ParsedModule, analysis_locals: frozenset[str], method: bool = False
    ) -> None:
        self.parsed = parsed
        self.locals = analysis_locals
        #: In a method, `super()` and `__class__` are compiled (to `m.owner`).
        self.method = method
        self.awaiting: set[int] = set()
        self.errors: list[CompileError] = []
        self.deleted: set[str] = set()
        self.function_values: dict[str, int] = {}
        self.names: set[str] = set()
        self.imports: set[str] = set()
        #: id() of each one-line suite -> the line it is lowered as.
        self.lines: dict[int, cst.SimpleStatementLine] = {}

    def error(
        self, node: cst.CSTNode, code: codes.Code, message: str, fix: str, construct: str
    ) -> None:
        self.errors.append(self.parsed.error(node, code, message, fix, construct))

    # -- generic walk -------------------------------------------------------

    def scan(self, node: cst.CSTNode) -> bool:
        """True when `node` contains an await in the function's scope."""
        kind = type(node)
        method = _SCANS.get(kind, _SCANS)
        if method is _SCANS:  # first of its kind: look its method up once
            method = _SCANS[kind] = getattr(_Scanner, "scan_" + kind.__name__, None)
        found = method(self, node) if method is not None else self.scan_children(children(node))
        if found:
            self.awaiting.add(id(node))
        return found

    def scan_children(self, children: Iterable[cst.CSTNode]) -> bool:
        found = False
        for child in children:
            if self.scan(child):
                found = True
        return found

    # -- leaves and scopes --------------------------------------------------

    def scan_Name(self, node: cst.Name) -> bool:
        self.names.add(node.value)
        if node.value == "__class__" and not self.method:
            self.error(
                node,
                codes.FRAME_ACCESS,
                "`__class__` inside a resumable function that is not a method",
                "remove the reference",
                "frame access",
            )
        return False

    def scan_Await(self, node: cst.Await) -> bool:
        self.scan(node.expression)
        return True

    def scan_Yield(self, node: cst.Yield) -> bool:
        self.error(
            node,
            codes.ASYNC_GENERATOR,
            "`yield` in a resumable function: async generators cannot be checkpointed",
            "return a list instead of yielding items, or make each item a separate resumable call",
            "async generator",
        )
        return self.scan_children(children(node))

    # A definition's header (decorators, defaults, bases) runs in the
    # function, where the definition stands: its awaits are the function's
    # (definitions.py). Its body is a scope of its own.
    def scan_FunctionDef(self, node: cst.FunctionDef) -> bool:
        params = self.parameters(node.params)
        annotations = [p.annotation for p in params if p.annotation is not None]
        if node.returns is not None:
            annotations.append(node.returns)
        self.header(node, annotations, "a nested function's annotations")
        found = self.scan_children([*node.decorators, *_defaults(params)])
        self.names.add(node.name.value)
        self.collect_names(node.body)
        self.class_cell_uses(node.body)
        return found

    def scan_ClassDef(self, node: cst.ClassDef) -> bool:
        found = self.scan_children([*node.decorators, *node.bases, *node.keywords])
        self.names.add(node.name.value)
        self.collect_names(node.body)
        self.class_cell_uses(node.body, in_class=True)
        return found

    def scan_Lambda(self, node: cst.Lambda) -> bool:
        found = self.scan_children(_defaults(self.parameters(node.params)))
        self.collect_names(node.body)
        self.class_cell_uses(node.body)
        return found

    def parameters(self, p: cst.Parameters) -> list[cst.Param]:
        """All of a definition's parameters (their names recorded)."""
        params = [*p.posonly_params, *p.params, *p.kwonly_params]
        params += [x for x in (p.star_arg, p.star_kwarg) if isinstance(x, cst.Param)]
        self.names.update(x.name.value for x in params)
        return params

    def header(self, node: cst.CSTNode, parts: Sequence[cst.CSTNode], where: str) -> None:
        if self.scan_children(parts):
            self.error(
                node,
                codes.AWAIT_POSITION,
                f"await in {where} is not supported yet",
                "await into a variable first and use the variable",
                "await position",
            )

    def class_cell_uses(self, body: cst.CSTNode, in_class: bool = False) -> None:
        """In a method: `super()` or `__class__` in a nested function, lambda or
        class body, which would read the method's `__class__` cell (E03). A
        method of a class defined inside the method has a cell of its own."""
        if not self.method:
            return
        stack: list[tuple[cst.CSTNode, bool]] = [(body, in_class)]
        while stack:
            n, inside_class = stack.pop()
            what = ""
            if isinstance(n, cst.Name) and n.value == "__class__":
                what = "`__class__`"
            elif (
                isinstance(n, cst.Call)
                and isinstance(n.func, cst.Name)
                and n.func.value == "super"
                and not n.args
            ):
                what = "zero-argument `super()`"
            if what:
                self.error(
                    n,
                    codes.FRAME_ACCESS,
                    f"{what} inside a function, lambda or class nested in a method reads the "
                    "method's `__class__` cell, which a compiled method does not have",
                    "name the class explicitly: `super(ClassName, self)`, `ClassName`",
                    "frame access",
                )
                continue
            if isinstance(n, cst.ClassDef):
                stack.extend((c, inside_class) for c in (*n.decorators, *n.bases, *n.keywords))
                stack.append((n.body, True))
                continue
            if isinstance(n, cst.FunctionDef) and inside_class:
                # Its own class's cell; its header is evaluated in the class body.
                stack.extend((c, True) for c in (*n.decorators, n.params))
                continue
            stack.extend((c, inside_class) for c in children(n))

    def collect_names(self, node: cst.CSTNode) -> None:
        """Record identifiers of a nested scope (for choosing reserved names)."""
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, cst.Name):
                self.names.add(n.value)
            stack.extend(children(n))

    def comprehension(
        self, node: cst.CSTNode, for_in: cst.CompFor, code: codes.Code, what: str, fix: str
    ) -> bool:
        first_iter = self.scan(for_in.iter)
        rest: list[cst.CSTNode] = [for_in.target, *for_in.ifs]
        if for_in.inner_for_in is not None:
            rest.append(for_in.inner_for_in)
        rest.extend(c for c in children(node) if c is not for_in)
        before = len(self.errors)
        inner = self.scan_children(rest)
        nested = any(e.construct == "comprehension" for e in self.errors[before:])
        if (inner or _has_async_for(for_in)) and not nested:
            self.error(node, code, what, fix, "comprehension")
        return first_iter or inner

    def scan_GeneratorExp(self, node: cst.GeneratorExp) -> bool:
        return self.comprehension(
            node,
            node.for_in,
            codes.GENERATOR_AWAIT,
            "await inside a generator expression: its lazy state cannot be checkpointed",
            "use a list comprehension, or a for-loop that awaits",
        )

    def _comp(self, node: cst.ListComp | cst.SetComp | cst.DictComp) -> bool:
        # Awaits anywhere, and `async for` clauses, are lowered (comprehensions.py).
        for_in = node.for_in
        first_iter = self.scan(for_in.iter)
        rest: list[cst.CSTNode] = [for_in.target, *for_in.ifs]
        if for_in.inner_for_in is not None:
            rest.append(for_in.inner_for_in)
        rest.extend(c for c in children(node) if c is not for_in)
        # An `async for` clause awaits `__anext__`: the comprehension is lowered.
        inner = self.scan_children(rest) or _has_async_for(for_in)
        if inner:
            self.lowered_comprehension(node)
        return first_iter or inner

    def lowered_comprehension(self, node: cst.ListComp | cst.SetComp | cst.DictComp) -> None:
        """What a comprehension taken apart cannot hold: an await in a `for`
        target, a lambda using the comprehension's variables."""
        clauses = []
        for_in: cst.CompFor | None = node.for_in
        while for_in is not None:
            clauses.append(for_in)
            for_in = for_in.inner_for_in
        names: set[str] = set()
        for clause in clauses:
            names |= _target_names(clause.target)
            if id(clause.target) in self.awaiting:
                self.error(
                    clause.target,
                    codes.AWAIT_POSITION,
                    "await in a comprehension's `for` target",
                    "await into a variable first",
                    "await position",
                )
        parts: list[cst.CSTNode] = [c for c in children(node) if c is not node.for_in]
        for i, clause in enumerate(clauses):
            parts += [*clause.ifs, *([clause.iter] if i else [])]
        for lam in (
            n for p in parts for n in _in_order(p, (cst.Lambda,)) if isinstance(n, cst.Lambda)
        ):
            params = {p.name.value for p in _all_params(lam.params)}
            used = sorted((_loads(lam.body) - params) & (names - self.locals))
            if used:
                self.error(
                    lam,
                    codes.COMPREHENSION_CLOSURE,
                    f"a lambda inside a comprehension that awaits uses the comprehension's "
                    f"variable(s) {', '.join(f'`{u}`' for u in used)}; closures over them are "
                    "not supported yet",
                    "pass the values as arguments (`lambda x=x: ...` binds the value now), "
                    "or move the awaits out of the comprehension",
                    "lambda",
                )

    scan_ListComp = _comp
    scan_SetComp = _comp
    scan_DictComp = _comp

    # -- statements -----------------------------------------------------------

    def scan_SimpleStatementSuite(self, node: cst.SimpleStatementSuite) -> bool:
        # `if a: x; await y` is lowered as a block of one line holding the
        # suite's small statements: that line is made here, once, so the
        # lowering asks `has_await` about a node scanned (Analysis.statements).
        line = cst.SimpleStatementLine(node.body)
        self.lines[id(node)] = line
        return self.scan(line)

    def scan_For(self, node: cst.For) -> bool:
        found_target = self.scan(node.target)  # the loop is lowered: a target's await is a step
        found_iter = self.scan(node.iter)
        found_body = self.scan_children([node.body, *([node.orelse] if node.orelse else [])])
        found_body = found_body or found_target
        if found_body and node.asynchronous is None and isinstance(node.iter, cst.GeneratorExp):
            self.error(
                node.iter,
                codes.LAZY_LOOP,
                "a for-loop whose body awaits iterates a generator expression, whose position cannot be checkpointed",
                "use a list comprehension: `for x in [ ... ]`",
                "for",
            )
        # `async for` awaits `__anext__` at every step, whatever its body does.
        return found_iter or found_body or node.asynchronous is not None

    def scan_With(self, node: cst.With) -> bool:
        found = False
        for item in node.items:
            in_item = self.scan(item.item)
            if item.asname is not None and self.scan(item.asname):
                self.error(
                    item.asname, codes.AWAIT_POSITION, "await in a `with ... as` target",
                    "await into a variable first", "await position",
                )  # fmt: skip
                in_item = True
            if in_item:
                self.awaiting.add(id(item))
                found = True
        if self.scan(node.body):
            found = True
        # `async with` awaits `__aenter__` and `__aexit__`, whatever its body does.
        return found or node.asynchronous is not None

    def scan_AnnAssign(self, node: cst.AnnAssign) -> bool:
        # The annotation of a local is never evaluated: an await in it is not
        # one of the function's (nothing would ever run it), and of what it
        # holds only a `yield` matters (it makes an async generator).
        found = self.scan(node.target)
        if node.value is not None and self.scan(node.value):
            found = True
        awaiting, errors = set(self.awaiting), len(self.errors)
        self.scan(node.annotation)
        self.awaiting = awaiting
        self.errors[errors:] = [
            e for e in self.errors[errors:] if e.code == codes.ASYNC_GENERATOR.code
        ]
        return found

    def scan_Del(self, node: cst.Del) -> bool:
        for target in _flatten_targets(node.target):
            if isinstance(target, cst.Name):
                self.deleted.add(target.value)
        return self.scan_children(children(node))

    def scan_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            self.imports.update(_prefixes(_dotted(alias.name)))
        return False

    def scan_ImportFrom(self, node: cst.ImportFrom) -> bool:
        base = _dotted(node.module) if node.module is not None else ""
        if node.relative:
            package = self.parsed.module_name.split(".")[: -len(node.relative)]
            base = ".".join([*package, base] if base else package)
        if base:
            self.imports.update(_prefixes(base))
            if not isinstance(node.names, cst.ImportStar):
                self.imports.update(f"{base}.{_dotted(a.name)}" for a in node.names)
        return False

    def scan_ExceptHandler(self, node: cst.ExceptHandler) -> bool:
        if node.name is not None and isinstance(node.name.name, cst.Name):
            self.deleted.add(node.name.name.value)  # `e = None; del e` after the handler
        return self.scan_children(children(node))

    def scan_ExceptStarHandler(self, node: cst.ExceptStarHandler) -> bool:
        if node.name is not None and isinstance(node.name.name, cst.Name):
            self.deleted.add(node.name.name.value)
        return self.scan_children(children(node))

    def scan_Call(self, node: cst.Call) -> bool:
        self.frame_access(node)
        return self.scan_children(children(node))

    def frame_access(self, node: cst.Call) -> None:
        func = node.func
        name: str | None = None
        if isinstance(func, cst.Name) and func.value not in self.locals:
            name = func.value
        elif isinstance(func, cst.Attribute) and (
            # sys._getframe(), inspect.currentframe() however imported; builtins.locals()
            func.attr.value in _FRAME_ATTRIBUTES
            or (isinstance(func.value, cst.Name) and func.value.value == "builtins")
        ):
            name = func.attr.value
        what = ""
        if name in ("locals", "vars", "dir") and not node.args:
            what = f"`{name}()`"
        elif name in ("eval", "exec") and not _has_globals_argument(node):
            what = f"`{name}()` without an explicit namespace"
        elif name == "super" and not node.args and not self.method:
            what = "zero-argument `super()` outside a method"
        elif name in _FRAME_ATTRIBUTES:
            what = f"`{cst.Module([]).code_for_node(func)}()`"
        if what:
            self.error(
                node,
                codes.FRAME_ACCESS,
                f"{what} reads the interpreter frame, which a compiled function does not have",
                "pass the values explicitly (for example a dict of the variables you need)",
                "frame access",
            )


def _defaults(params: Sequence[cst.Param]) -> list[cst.BaseExpression]:
    return [p.default for p in params if p.default is not None]


def _dotted(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node).replace(" ", "")


def _prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _has_async_for(for_in: cst.CompFor | None) -> bool:
    while for_in is not None:
        if for_in.asynchronous is not None:
            return True
        for_in = for_in.inner_for_in
    return False


def _target_names(node: cst.BaseExpression) -> set[str]:
    if isinstance(node, cst.Name):
        return {node.value}
    if isinstance(node, cst.Tuple | cst.List):
        return set().union(*(_target_names(el.value) for el in node.elements))
    return set()


def _all_params(p: cst.Parameters) -> list[cst.Param]:
    out = [*p.posonly_params, *p.params, *p.kwonly_params]
    if isinstance(p.star_arg, cst.Param):
        out.append(p.star_arg)
    if p.star_kwarg is not None:
        out.append(p.star_kwarg)
    return out


def _loads(node: cst.CSTNode) -> set[str]:
    """Names `node` may read (not attribute names or keywords)."""
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Name):
            out.add(n.value)
        elif isinstance(n, cst.Attribute | cst.Arg):
            stack.append(n.value)
        else:
            stack.extend(children(n))
    return out


def _has_globals_argument(node: cst.Call) -> bool:
    """eval/exec given a namespace (not None, which means the caller's frame)."""
    if any(a.star for a in node.args):
        return True
    positional = [a for a in node.args if a.keyword is None]
    namespace = positional[1].value if len(positional) >= 2 else None
    for a in node.args:
        if a.keyword is not None and a.keyword.value == "globals":
            namespace = a.value
    if namespace is None:
        return False
    return not (isinstance(namespace, cst.Name) and namespace.value == "None")


def _flatten_targets(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(node, cst.Tuple | cst.List):
        out: list[cst.BaseExpression] = []
        for el in node.elements:
            out.extend(_flatten_targets(el.value))
        return out
    return [node]


#: Node kind -> its `_Scanner.scan_<Kind>` method (None: the generic walk).
_SCANS: dict[type, Any] = {}


def _function_table(table: symtable.SymbolTable, fn: FunctionSource) -> symtable.SymbolTable:
    """The function's own table: under the tables of the classes a method is
    defined in (by name; the one holding the function at its line)."""
    tables = [table]
    for name in fn.scope:
        tables = [c for t in tables for c in _table_children(t) if c.get_type() == "class"]
        tables = [c for c in tables if c.get_name() == name]
    for t in tables:
        for child in _table_children(t):
            if (
                child.get_type() == "function"
                and child.get_name() == fn.node.name.value
                and child.get_lineno() == fn.def_line
            ):
                return child
    raise LookupError(f"no symbol table for {fn.qualname} at line {fn.def_line}")


def _table_children(table: symtable.SymbolTable) -> list[symtable.SymbolTable]:
    """`table.get_children()`, made once per table (the module's is asked
    again for each function; tree.forget empties the table)."""
    found = _TABLE_CHILDREN.get(table)
    if found is None:
        found = _TABLE_CHILDREN[table] = table.get_children()
    return found


_TABLE_CHILDREN: dict[symtable.SymbolTable, list[symtable.SymbolTable]] = tree.table()


def _params(node: cst.FunctionDef) -> tuple[str, ...]:
    p = node.params
    names = [x.name.value for x in (*p.posonly_params, *p.params)]
    names += [x.name.value for x in p.kwonly_params]
    if isinstance(p.star_arg, cst.Param):
        names.append(p.star_arg.name.value)
    if p.star_kwarg is not None:
        names.append(p.star_kwarg.name.value)
    return tuple(names)


def _in_order(root: cst.CSTNode, stop: tuple[type, ...] = ()) -> list[cst.CSTNode]:
    """Nodes under `root` in source order, not descending into `stop` types."""
    out: list[cst.CSTNode] = []
    stack: list[cst.CSTNode] = [root]
    while stack:
        n = stack.pop()
        out.append(n)
        if n is root or not isinstance(n, stop):
            stack.extend(reversed(children(n)))
    return out


def _class_values(
    body: cst.BaseSuite, local_names: frozenset[str], private: str
) -> dict[str, cst.CSTNode]:
    """Locals bound by a `class` statement in the function's own scope: the
    first binding of each, in source order. (Functions and lambdas may be
    held across an await: they are stored as closures. A nested `class __C`
    in a method binds the mangled local `_Class__C`.)"""
    found: dict[str, cst.CSTNode] = {}
    for n in _in_order(body, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
        if isinstance(n, cst.ClassDef):
            bound = mangle_name(n.name.value, private)
            if bound in local_names:
                found.setdefault(bound, n.name)
    return found


def _deleted_in_nested_scopes(body: cst.BaseSuite) -> set[str]:
    """Names a `del` statement inside a lambda, nested function or class deletes."""
    out: set[str] = set()
    stack: list[tuple[cst.CSTNode, bool]] = [(body, False)]
    while stack:
        n, nested = stack.pop()
        if nested and isinstance(n, cst.Del):
            out.update(t.value for t in _flatten_targets(n.target) if isinstance(t, cst.Name))
        inner = nested or isinstance(n, cst.FunctionDef | cst.ClassDef | cst.Lambda)
        stack.extend((c, inner) for c in children(n))
    return out


def _reserved(names: set[str]) -> Reserved:
    frame = next(c for c in ("L", "L_", "L__", "_L", "_L_", "locals_") if c not in names)
    machine = next(c for c in ("m", "m_", "m__", "_m", "_m_", "machine_") if c not in names)
    hidden = "_"
    while any(
        _HIDDEN.match(n) and n.startswith(hidden) and not n.startswith(hidden + "_") for n in names
    ):
        hidden += "_"
    return Reserved(frame=frame, machine=machine, hidden=hidden)


def analyze(parsed: ParsedModule, fn: FunctionSource) -> Analysis:
    """Analyze one decorated function; errors are collected, never raised."""
    table = _function_table(parsed.table, fn)
    params = _params(fn.node)
    declared_globals = frozenset(
        s.get_name() for s in table.get_symbols() if s.is_declared_global()
    )
    local_names = frozenset(s.get_name() for s in table.get_symbols() if s.is_local())
    scanner = _Scanner(parsed, local_names, method=fn.is_method)
    scanner.scan(fn.node.params)
    scanner.scan(fn.node.body)
    errors = list(scanner.errors)
    captured, rebound = captured_names(parsed, fn.node, table, local_names)
    first_use: dict[str, cst.Name] = {}
    for n in _in_order(fn.node, (cst.Lambda, cst.ClassDef)):
        if isinstance(n, cst.Name) and n is not fn.node.name:
            first_use.setdefault(n.value, n)
    for name in sorted(local_names):
        if name.startswith("__") and name.endswith("__"):
            errors.append(
                parsed.error(
                    first_use.get(name, fn.node.name),
                    codes.DUNDER_LOCAL,
                    f"local variable `{name}`: dunder names are reserved in resumable functions",
                    "rename the variable",
                    "name",
                )
            )
    values = _class_values(fn.node.body, local_names, fn.private)
    # A closure may delete a variable it declares nonlocal (approximated by
    # name: any `del` of that name in a nested scope).
    scanner.deleted.update(n for n in _deleted_in_nested_scopes(fn.node.body) if n in rebound)
    maybe_unbound = frozenset(n for n in local_names if n not in params or n in scanner.deleted)
    scanner.names.update(params)
    errors.sort(key=lambda e: (e.line, e.column, e.code))
    return Analysis(
        parsed=parsed,
        function=fn,
        params=params,
        locals=local_names,
        declared_globals=declared_globals,
        maybe_unbound=maybe_unbound,
        deleted=frozenset(scanner.deleted),
        imports=tuple(sorted(scanner.imports)),
        function_values={k: parsed.position(v) for k, v in values.items()},
        captured=captured,
        rebound=rebound,
        awaiting=frozenset(scanner.awaiting),
        awaits=own_awaits(fn.node, scanner.awaiting, parsed.future_annotations),
        reserved=_reserved(scanner.names | set(dir(builtins)) | parsed.module_names),
        errors=tuple(errors),
        lines=dict(scanner.lines),
    )
