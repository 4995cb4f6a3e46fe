"""Random async function bodies for the property test (tests/test_property.py).

`programs()` is a hypothesis strategy of `Program`s: the source of a module
holding one decorated function `f(a, b)` built from this grammar --

    int assignments and arithmetic (+ - * // %; ZeroDivisionError is allowed),
    if/elif/else, while (bounded by a counter incremented at the top of the
    body), for over range(n) and small lists/tuples (optional else clauses),
    try/except/else/finally (StepError, ZeroDivisionError, ValueError,
    Exception, a tuple; `as e1`/`as e2` with uses of the name),
    raise ValueError(...) [from e | from None], `raise e`, bare raise in
    handlers and finally blocks, break/continue (often through a finally
    block), return anywhere, and awaits of `step(...)` as statements, in
    `x = ...` / `x += ...` / `x, y = ...`, nested in expressions (arithmetic,
    max/min/abs, and/or, conditional expressions, comparisons), in conditions,
    loop headers, return values, handlers and finally blocks; list, set and
    dict comprehensions (awaits in the element, conditions, a walrus into the
    pool, nested or two-clause comprehensions, variables shadowing the pool),
    and match statements over ints and pairs (literal, or, as, class,
    sequence and capture patterns into the pool, guards that may await).

The pool variables are bound at the top of the function, so reads of them
never fail. Unbound reads are deliberate and rare: nested handlers may reuse a
name (the inner one unbinds it for the outer one), and a name an earlier
handler unbound is sometimes read. The function ends by returning the pool.

    @resumable.function
    async def f(a, b):
        c = 3
        i = 0
        w1 = 0
        w1 = 0
        while True:
            w1 += 1
            if w1 > 2:
                break
            try:
                c += await step('s1', i)
                if await step('s2') % 2 == 0:
                    continue
            finally:
                b = max(a, await step('s3', c))
        return (a, b, c, i)
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

__all__ = ["Program", "await_nesting", "crossing_jumps", "programs", "render"]

#: The variables every generated function uses; `a` and `b` are its parameters.
POOL = ("a", "b", "c", "i")
EXCEPTIONS = (
    "StepError",
    "ValueError",
    "Exception",
    "ZeroDivisionError",
    "(ValueError, StepError)",
)
MAX_NESTING = 4
HEADER = "import resumable\nfrom resumable.testing import StepError, step\n\n\n"


@dataclass(frozen=True)
class Program:
    """One generated module: `source` defines `f`, called with `args`."""

    source: str
    args: tuple[int, int]

    @property
    def nesting(self) -> int:
        """The deepest await, counted in enclosing loops and try statements."""
        return await_nesting(self.source)

    def __repr__(self) -> str:
        return f"Program(args={self.args!r}, source=<<<\n{self.source}>>>)"


@dataclass
class _Context:
    draw: Callable[[st.SearchStrategy[Any]], Any]
    budget: int
    labels: int = 0
    whiles: int = 0
    loops: int = 0  # enclosing loops
    nesting: int = 0  # enclosing loops and try statements
    handlers: list[str] = field(default_factory=list)  # enclosing `except` names ("" = none)
    caught: set[str] = field(default_factory=set)  # every `except ... as` name so far
    in_finally: int = 0
    protected: int = 0  # enclosing try-with-finally bodies inside the innermost loop
    #: The first statements of the next blocks, one list per block.
    forced: list[list[str]] = field(default_factory=list)
    #: Variables of the enclosing comprehensions.
    comp_vars: list[str] = field(default_factory=list)

    def choose(self, options: tuple[str, ...] | list[str]) -> str:
        return str(self.draw(st.sampled_from(options)))

    def integer(self, lo: int, hi: int) -> int:
        return int(self.draw(st.integers(lo, hi)))

    def coin(self, p: float) -> bool:
        """True with probability about `p` (shrinks to False)."""
        return bool(self.draw(st.integers(0, 99)) < round(100 * p))

    def label(self) -> str:
        self.labels += 1
        return f"s{self.labels}"


# -- expressions ----------------------------------------------------------------------


def _step(ctx: _Context, depth: int) -> str:
    label = ctx.label()
    args = [_expr(ctx, depth + 1, awaits=ctx.coin(0.1)) for _ in range(ctx.integer(0, 2))]
    return f"await step({', '.join([repr(label), *args])})"


def _expr(ctx: _Context, depth: int = 0, *, awaits: bool = True) -> str:
    """An int expression (it may raise ZeroDivisionError or StepError)."""
    kinds = ["var", "int", "var"]
    if depth < 2:
        kinds += ["binop", "binop", "call", "logic"]
    if depth < 2 and ctx.coin(0.15):
        kinds.append("comp")
    if awaits and depth < 3:
        kinds += ["await", "await"]
    # Not inside a comprehension: an unbound local read there is CPython's
    # NameError for a free variable, which compiled code does not reproduce.
    names = [n for n in ctx.handlers if n] if not ctx.comp_vars else []
    if names:
        kinds.append("exc")
    stale = sorted(ctx.caught - set(names)) if not ctx.comp_vars else []
    if stale and ctx.coin(0.1):
        # Deliberately read a name an earlier handler unbound: UnboundLocalError.
        names = stale
        kinds.append("exc")
    kind = ctx.choose(kinds)
    if kind == "var":
        return ctx.choose(POOL + tuple(ctx.comp_vars))
    if kind == "comp":
        return _comprehension(ctx, depth, awaits)
    if kind == "int":
        return str(ctx.integer(0, 5))
    if kind == "await":
        return _step(ctx, depth)
    if kind == "exc":
        name = ctx.choose(names)
        if awaits and depth < 3 and ctx.coin(0.3):
            # The plain name is read before the await (UnboundLocalError first).
            return f"({name} != {_step(ctx, depth + 1)})"
        return ctx.choose((f"len({name}.args)", f"len(str({name}))"))
    if kind == "call":
        fn = ctx.choose(("max", "min", "abs"))
        if fn == "abs":
            return f"abs({_expr(ctx, depth + 1, awaits=awaits)})"
        first, second = (_expr(ctx, depth + 1, awaits=awaits) for _ in range(2))
        return f"{fn}({first}, {second})"
    if kind == "logic":  # short-circuiting and branching inside a value
        form = ctx.choose(("and", "or", "ifexp", "compare", "negate"))
        first, second = (_expr(ctx, depth + 1, awaits=awaits) for _ in range(2))
        if form == "ifexp":
            return f"({first} if {_expr(ctx, depth + 1, awaits=awaits)} else {second})"
        if form == "compare":
            return f"({first} {ctx.choose(('<', '==', '>='))} {second})"
        if form == "negate":
            return f"(-{first})"
        return f"({first} {form} {second})"
    op = ctx.choose(("+", "-", "*", "//", "%"))
    left = _expr(ctx, depth + 1, awaits=awaits)
    if op in ("//", "%") and not ctx.coin(0.2):
        right = str(ctx.integer(1, 5))  # a zero divisor only sometimes
    else:
        right = _expr(ctx, depth + 1, awaits=awaits)
    return f"({left} {op} {right})"


def _comprehension(ctx: _Context, depth: int, awaits: bool) -> str:
    """An int made by a comprehension; its variable may shadow a pool name."""
    form = ctx.choose(("list", "set", "dict", "walrus", "clauses", "nested"))
    # The first iterable is evaluated outside the comprehension.
    if ctx.coin(0.5):
        first = f"range({ctx.integer(0, 3)})"
    else:
        first = f"range(min({_expr(ctx, depth + 1, awaits=awaits)}, 3))"
    var = ctx.choose(("x", "y", "c", "i"))
    ctx.comp_vars.append(var)
    head = f"for {var} in {first}"
    if form == "clauses":
        inner = ctx.choose(("x", "y", "c", "i"))
        head += f" for {inner} in range({var})"
        ctx.comp_vars.append(inner)
    if ctx.coin(0.4):
        head += f" if {_expr(ctx, depth + 1, awaits=awaits)}"
    if form == "nested":
        element = _comprehension(ctx, depth + 1, awaits)
    else:
        element = _expr(ctx, depth + 1, awaits=awaits)
    targets = [n for n in POOL if n not in ctx.comp_vars]
    if form == "walrus" and targets:
        element = f"({ctx.choose(targets)} := {element})"  # binds in the function
    del ctx.comp_vars[-2 if form == "clauses" else -1 :]
    if form == "set":
        return f"len({{{element} {head}}})"
    if form == "dict":
        return f"sum({{{var}: {element} {head}}}.values())"
    return f"sum([{element} {head}])"


def _test(ctx: _Context) -> str:
    """A condition, often awaiting."""
    kind = ctx.choose(("compare", "await", "truth", "and", "not", "chain"))
    if kind == "await":
        awaited = _step(ctx, 1)
        if ctx.coin(0.3):
            return f"{awaited} % 2 == {ctx.integer(0, 1)}"
        return f"{awaited} {ctx.choose(('>', '<'))} {ctx.integer(0, 60)}"
    if kind == "truth":
        return _expr(ctx, 1)
    if kind == "not":
        return f"not {_expr(ctx, 1)}"
    if kind == "chain":
        return f"{_expr(ctx, 1)} < {_expr(ctx, 1)} <= {_expr(ctx, 1)}"
    left = f"{_expr(ctx, 1)} {ctx.choose(('<', '>', '==', '!=', '<='))} {_expr(ctx, 1)}"
    if kind == "and":
        return f"{left} {ctx.choose(('and', 'or'))} {_expr(ctx, 1)}"
    return left


# -- statements -------------------------------------------------------------------------


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def _block(ctx: _Context, lo: int = 1, hi: int = 3) -> list[str]:
    forced = ctx.forced.pop(0) if ctx.forced else []
    lines: list[str] = []
    for kind in forced:
        lines += _statement(ctx, kind)
    if forced:
        lo, hi = 0, max(0, hi - len(forced))
    for n in range(ctx.integer(lo, hi)):
        if (n or lines) and ctx.budget <= 0:
            break
        lines += _statement(ctx)
    return lines


def _statement(ctx: _Context, kind: str | None = None) -> list[str]:
    ctx.budget -= 1
    if kind is not None:
        return _STATEMENTS[kind](ctx)
    weights = {"await": 4, "assign": 2, "augassign": 2, "return": 1, "raise": 1}
    if ctx.budget > 0 and ctx.nesting < MAX_NESTING:
        shallow = 3 - min(ctx.nesting, 2)  # favour awaits nested two levels deep
        weights |= {"if": 2, "for": 2 * shallow, "while": 2 * shallow, "try": 3 * shallow}
        weights["match"] = 1
    if ctx.loops:
        jumps = 4 if ctx.protected else 1  # favour jumps that cross a finally block
        weights |= {"break": jumps, "continue": jumps}
    kind = ctx.choose([k for k, w in weights.items() for _ in range(w)])
    return _STATEMENTS[kind](ctx)


def _assign(ctx: _Context) -> list[str]:
    return [f"{ctx.choose(POOL)} = {_expr(ctx)}"]


def _augassign(ctx: _Context) -> list[str]:
    return [f"{ctx.choose(POOL)} {ctx.choose(('+=', '-=', '%='))} {_expr(ctx)}"]


def _await(ctx: _Context) -> list[str]:
    form = ctx.choose(("assign", "augassign", "expr", "nested", "max", "unpack"))
    target = ctx.choose(POOL)
    if form == "assign":
        return [f"{target} = {_step(ctx, 0)}"]
    if form == "augassign":
        return [f"{target} {ctx.choose(('+=', '-='))} {_step(ctx, 0)}"]
    if form == "unpack":  # the value is complete before any target is stored
        first, second = (ctx.choose(POOL) for _ in range(2))
        return [f"{target}, {first} = {second}, {_step(ctx, 1)}"]
    if form == "expr":
        return [_step(ctx, 0)]
    if form == "nested":
        return [f"{target} = {ctx.choose(POOL)} {ctx.choose(('+', '-', '*'))} {_step(ctx, 1)}"]
    return [f"{target} = max({ctx.choose(POOL)}, {_step(ctx, 1)})"]


def _guarded(ctx: _Context, line: str) -> list[str]:
    """`line`, or `if <test>: line` (so that the rest of the block runs sometimes)."""
    if ctx.coin(0.6):
        return [f"if {_test(ctx)}:", "    " + line]
    return [line]


def _break(ctx: _Context) -> list[str]:
    return _guarded(ctx, "break")


def _continue(ctx: _Context) -> list[str]:
    return _guarded(ctx, "continue")


def _jump(ctx: _Context) -> list[str]:
    """break or continue, unconditional half of the time."""
    line = ctx.choose(("break", "continue"))
    return _guarded(ctx, line) if ctx.coin(0.5) else [line]


def _return(ctx: _Context) -> list[str]:
    form = ctx.choose(("pool", "expr", "none"))
    if form == "pool":
        line = f"return ({', '.join(POOL)})"
    elif form == "expr":
        line = f"return {_expr(ctx)}"
    else:
        line = "return"
    # An unconditional return at the top level would end most functions early.
    return _guarded(ctx, line) if ctx.nesting == 0 or ctx.coin(0.5) else [line]


def _raise(ctx: _Context) -> list[str]:
    forms = ["value"]
    names = [n for n in ctx.handlers if n]
    if ctx.handlers or ctx.in_finally:
        forms += ["bare", "bare"]
    forms.append("from_none")
    if names:
        forms += ["from_e", "raise_e"]
    form = ctx.choose(forms)
    if form == "bare":
        line = "raise"
    elif form == "raise_e":
        line = f"raise {ctx.choose(names)}"
    else:
        line = f"raise ValueError({_expr(ctx)})"
        if form == "from_none":
            line += " from None"
        elif form == "from_e":
            line += f" from {ctx.choose(names)}"
    return [f"if {_test(ctx)}:", "    " + line] if ctx.nesting == 0 else _guarded(ctx, line)


def _if(ctx: _Context) -> list[str]:
    lines = [f"if {_test(ctx)}:", *_indent(_block(ctx))]
    for _ in range(ctx.integer(0, 1)):
        lines += [f"elif {_test(ctx)}:", *_indent(_block(ctx))]
    if ctx.coin(0.4):
        lines += ["else:", *_indent(_block(ctx))]
    return lines


def _loop_body(ctx: _Context) -> list[str]:
    ctx.loops += 1
    ctx.nesting += 1
    protected, ctx.protected = ctx.protected, 0
    body = _block(ctx)
    ctx.protected = protected
    ctx.loops -= 1
    ctx.nesting -= 1
    return body


def _loop_else(ctx: _Context) -> list[str]:
    if not ctx.coin(0.2):
        return []
    ctx.nesting += 1
    lines = ["else:", *_indent(_block(ctx, 1, 1))]
    ctx.nesting -= 1
    return lines


def _for(ctx: _Context, *, runs: bool = False) -> list[str]:
    """A for-loop; one that `runs` its body at least once, unless a step fails."""
    kind = "range" if runs else ctx.choose(("range", "list", "tuple", "range_expr"))
    if kind == "range":
        iterable = f"range({ctx.integer(int(runs), 3)})"
    elif kind == "range_expr":
        iterable = f"range(min({_expr(ctx, 1)}, 3))"
    else:
        items = [_expr(ctx, 1, awaits=ctx.coin(0.3)) for _ in range(ctx.integer(0, 3))]
        iterable = f"[{', '.join(items)}]" if kind == "list" else f"({', '.join(items)},)"
        if iterable == "(,)":
            iterable = "()"
    target = "i" if ctx.coin(0.7) else ctx.choose(POOL)
    return [f"for {target} in {iterable}:", *_indent(_loop_body(ctx)), *_loop_else(ctx)]


def _while(ctx: _Context, *, runs: bool = False) -> list[str]:
    ctx.whiles += 1
    counter = f"w{ctx.whiles}"
    test = "True" if runs or ctx.coin(0.3) else _test(ctx)
    bound = ctx.integer(1, 3)
    guard = [f"{counter} += 1", f"if {counter} > {bound}:", "    break"]
    return [
        f"{counter} = 0",
        f"while {test}:",
        *_indent(guard + _loop_body(ctx)),
        *_loop_else(ctx),
    ]


def _try(ctx: _Context, shapes: tuple[str, ...] = ("except", "finally", "both")) -> list[str]:
    ctx.nesting += 1
    if ctx.loops:
        shapes += ("finally", "both")  # break/continue through finally blocks
    shape = ctx.choose(shapes)
    handlers = 0 if shape == "finally" else ctx.integer(1, 2)
    protected = shape != "except" and ctx.loops > 0
    ctx.protected += protected
    lines = ["try:", *_indent(_block(ctx))]
    for _ in range(handlers):
        exc = ctx.choose(EXCEPTIONS)
        # Nested handlers may reuse a name: the inner one unbinds it for the outer.
        name = f"e{ctx.integer(1, 2)}" if ctx.coin(0.6) else ""
        if name:
            ctx.caught.add(name)
        lines.append(f"except {exc} as {name}:" if name else f"except {exc}:")
        ctx.handlers.append(name)
        lines += _indent(_block(ctx))
        ctx.handlers.pop()
    if handlers and ctx.coin(0.25):
        lines += ["else:", *_indent(_block(ctx))]
    ctx.protected -= protected
    if shape != "except":
        ctx.in_finally += 1
        lines += ["finally:", *_indent(_block(ctx))]
        ctx.in_finally -= 1
    ctx.nesting -= 1
    return lines


_INT_PATTERNS = ("0", "1 | 2", "(3 | 4) as {n}", "int({n})", "{n}")
_PAIR_PATTERNS = ("(0, {n})", "[{n}, 1 | 2]", "({n}, *_)", "[_, int({n})]", "(_, _) as t", "{n}")


def _match(ctx: _Context) -> list[str]:
    """A match over an int or a pair; captures bind pool names."""
    pair = ctx.coin(0.4)
    subject = f"{_expr(ctx, 1)}, {_expr(ctx, 1)}" if pair else _expr(ctx, 1)
    lines = [f"match {subject}:"]
    n = ctx.integer(1, 3)
    ctx.nesting += 1
    for k in range(n):
        pattern = ctx.choose(_PAIR_PATTERNS if pair else _INT_PATTERNS).format(n=ctx.choose(POOL))
        guard = f" if {_test(ctx)}" if ctx.coin(0.4) else ""
        if pattern in POOL and not guard and k < n - 1:
            guard = f" if {_test(ctx)}"  # an irrefutable pattern is last or guarded
        lines += [f"    case {pattern}{guard}:", *_indent(_indent(_block(ctx, 1, 2)))]
        if pattern in POOL and not guard:
            break
    ctx.nesting -= 1
    return lines


_STATEMENTS: dict[str, Callable[[_Context], list[str]]] = {
    "assign": _assign,
    "augassign": _augassign,
    "await": _await,
    "break": _break,
    "continue": _continue,
    "return": _return,
    "raise": _raise,
    "if": _if,
    "for": _for,
    "while": _while,
    "try": _try,
    "match": _match,
    # Only as forced statements:
    "try_finally": lambda ctx: _try(ctx, ("finally", "both")),
    "for_runs": lambda ctx: _for(ctx, runs=True),
    "while_runs": lambda ctx: _while(ctx, runs=True),
    "jump": _jump,
}


def render(body: list[str], whiles: int, inits: tuple[int, int]) -> str:
    """The module source for a function body."""
    top = [f"c = {inits[0]}", f"i = {inits[1]}", *(f"w{k} = 0" for k in range(1, whiles + 1))]
    lines = [
        "@resumable.function",
        "async def f(a, b):",
        *_indent(top + body + [f"return ({', '.join(POOL)})"]),
    ]
    return HEADER + "\n".join(lines) + "\n"


@st.composite
def programs(draw: Callable[[st.SearchStrategy[Any]], Any], max_statements: int = 8) -> Program:
    """A random module defining `async def f(a, b)`; see the module docstring."""
    ctx = _Context(draw=draw, budget=draw(st.integers(3, max_statements)))
    body = _block(ctx, 0, 2)
    if ctx.coin(0.4):
        # An await inside two loops or try statements: the grammar alone produces
        # such nesting in only about half of the examples.
        compound = ("try", "for", "while")
        if ctx.coin(0.5):  # often break/continue through a finally block
            loop = ctx.choose(("for_runs", "while_runs"))
            ctx.forced = [[loop], ["try_finally"], ["await", "jump"]]
        else:
            ctx.forced = [[ctx.choose(compound)], [ctx.choose(compound)], ["await"]]
        ctx.budget += 2
        body += _block(ctx, 1, 1)
    body += _block(ctx, 1, 3)
    inits = (draw(st.integers(0, 5)), draw(st.integers(0, 5)))
    args = (draw(st.integers(0, 5)), draw(st.integers(0, 5)))
    return Program(render(body, ctx.whiles, inits), args)


# -- measuring ----------------------------------------------------------------------------


def await_nesting(source: str) -> int:
    """The largest number of loops and try statements enclosing an await."""
    best = 0

    def visit(node: ast.AST, depth: int) -> None:
        nonlocal best
        if isinstance(node, ast.Await):
            best = max(best, depth)
        inner = depth + 1 if isinstance(node, ast.For | ast.While | ast.Try) else depth
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(source), 0)
    return best


def crossing_jumps(source: str) -> int:
    """How many break/continue statements leave a try statement with a finally
    block inside their loop (the construct the mutation test breaks)."""
    count = 0

    def visit(node: ast.AST, stack: tuple[str, ...]) -> None:
        nonlocal count
        if isinstance(node, ast.Break | ast.Continue) and stack and stack[-1] == "finally":
            count += 1
        for name, value in ast.iter_fields(node):
            inner = stack  # the innermost of: a loop body, a part protected by a finally
            if isinstance(node, ast.For | ast.While) and name == "body":
                inner = (*stack, "loop")
            elif isinstance(node, ast.Try) and node.finalbody and name != "finalbody":
                inner = (*stack, "finally")
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    visit(child, inner)

    visit(ast.parse(source), ())
    return count
