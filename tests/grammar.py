"""Random async function bodies for the property test (tests/test_property.py).

`programs()` is a hypothesis strategy of `Program`s: the source of a module
holding one decorated function `f(a, b)` built from this grammar --

    int assignments and arithmetic (+ - * // %; ZeroDivisionError is allowed),
    if/elif/else, while (bounded by a counter incremented at the top of the
    body), for over range(n) and small lists/tuples (optional else clauses),
    try/except/else/finally (StepError, ZeroDivisionError, ValueError,
    Exception, a tuple; `as e1`/`as e2` with uses of the name, its
    `__context__`, `__cause__` and `__suppress_context__`),
    raise ValueError(...)/KeyError(...) [from e | from None | from a new
    exception] (raised inside handlers and finally blocks: implicit chaining),
    `raise e`, bare raise in handlers and finally blocks, break/continue
    (often through one or two finally blocks, or inside one), return
    anywhere (also through nested finally blocks), and awaits of `step(...)`
    as statements, in `x = ...` / `x += ...` / `x, y = ...`, nested in
    expressions (arithmetic, max/min/abs, and/or, conditional expressions,
    comparisons, walruses into the pool), in conditions, loop headers,
    return values, handlers and finally blocks; list, set and dict
    comprehensions (awaits in the element, conditions, a walrus into the
    pool, nested or two-clause comprehensions, variables shadowing the pool,
    `async for` clauses over a `Ticker`), match statements over ints and
    pairs (literal, or, as, class, sequence and capture patterns into the
    pool, guards that may await);
    `with` and `async with` of one or two `Manager`/`AsyncManager`s
    (tests/grammar_helpers.py: they log enter and exit into the list `log`,
    which f returns, may swallow an exception or raise from their exit, and
    an async one may await `step` in its enter and exit) with `as` targets
    (a pool name, a pair) around blocks that await, and jumps out of them;
    `async for` over a `Ticker` (whose items may await `step`) with
    break/continue/else;
    closures defined at the top and held across every await: a lambda `g`
    reading the pool (late bound; rebound later with defaults that may
    await), a nested `def h` writing a pool name through `nonlocal`, an
    `async def k` awaiting `step`, called anywhere in expressions;
    methods: a module-level dataclass `Calc` whose decorated instance method,
    classmethod and staticmethod (small bodies awaiting `step`, raising)
    are awaited from f, each a child run.

The pool variables are bound at the top of the function, so reads of them
never fail. Unbound reads are deliberate and rare: nested handlers may reuse a
name (the inner one unbinds it for the outer one), and a name an earlier
handler unbound is sometimes read. The function ends by returning the pool
and `log`.

    @resumable.function
    async def f(a, b):
        c = 3
        i = 0
        log = []
        g = lambda p: (p + c)
        w1 = 0
        while True:
            w1 += 1
            if w1 > 2:
                break
            try:
                with Manager(log, 'm1', suppress='StepError') as i:
                    c += await step('s1', g(i))
                if await step('s2') % 2 == 0:
                    continue
            finally:
                b = max(a, await step('s3', c))
        return (a, b, c, i, log)
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

__all__ = ["CONSTRUCTS", "Program", "await_nesting", "constructs", "crossing_jumps", "programs"]

#: The int variables every generated function uses; `a` and `b` are its parameters.
POOL = ("a", "b", "c", "i")
EXCEPTIONS = (
    "StepError",
    "ValueError",
    "Exception",
    "ZeroDivisionError",
    "(ValueError, StepError)",
)
MAX_NESTING = 4
HEADER = (
    "import dataclasses\nimport sys\n\n"
    "import resumable\n"
    "from resumable.testing import StepError, step\n"
    "from tests.grammar_helpers import AsyncManager, Manager, Ticker\n\n\n"
)


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


@functools.cache
def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    """st.integers, built once per range (building one costs more than a draw)."""
    return st.integers(lo, hi)


@dataclass
class _Context:
    draw: Callable[[st.SearchStrategy[Any]], Any]
    budget: int
    labels: int = 0
    whiles: int = 0
    managers: int = 0
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
    #: Parameters of the closure being generated (its body is `pure`).
    params: list[str] = field(default_factory=list)
    #: Inside a closure's body: no awaits, walruses, handler names or closure calls.
    pure: int = 0
    #: Inside a comprehension's iterable, where CPython forbids a walrus.
    no_walrus: int = 0
    #: Where no comprehension may be (see `_comprehension` and `_expr`).
    no_comp: int = 0
    #: The closures defined at the top of f ("g", "h", "k"), and whether `Calc` is.
    closures: tuple[str, ...] = ()
    methods: bool = False
    #: The constructs this program favours (FOCUS), so that every one is in
    #: many examples of a short run.
    focus: frozenset[str] = frozenset()

    def choose(self, options: tuple[str, ...] | list[str]) -> str:
        """One of `options` (shrinks to the first)."""
        return options[self.integer(0, len(options) - 1)]

    def integer(self, lo: int, hi: int) -> int:
        return int(self.draw(_integers(lo, hi)))

    def coin(self, p: float) -> bool:
        """True with probability about `p` (shrinks to False)."""
        return bool(self.draw(_integers(0, 99)) < round(100 * p))

    def often(self, construct: str, p: float, focused: float) -> bool:
        """A coin of probability `focused` when the program favours `construct`, else `p`."""
        return self.coin(focused if construct in self.focus else p)

    def label(self) -> str:
        self.labels += 1
        return f"s{self.labels}"

    def walrus_targets(self) -> list[str]:
        """Pool names a walrus may bind here (never a comprehension's variable)."""
        if self.pure or self.no_walrus:
            return []
        return [n for n in POOL if n not in self.comp_vars]


# -- expressions ----------------------------------------------------------------------


def _step(ctx: _Context, depth: int) -> str:
    """An awaited int: `step(...)` mostly, else a method of `Calc` or the closure `k`."""
    kinds = ["step"] * 6
    if ctx.methods:
        kinds += ["method"] * (6 if "methods" in ctx.focus else 2)
    if "k" in ctx.closures:
        kinds.append("k")
    kind = ctx.choose(kinds)
    if kind == "method":
        arg = _expr(ctx, depth + 1, awaits=ctx.coin(0.1))
        form = ctx.choose(("calc.get", "calc.twice", "Calc.twice", "Calc.make", "calc.make"))
        if form.endswith("make"):
            return f"(await {form}({arg})).n"
        return f"await {form}({arg})"
    if kind == "k":
        return f"await k({_expr(ctx, depth + 1, awaits=ctx.coin(0.1))})"
    label = ctx.label()
    args = [_expr(ctx, depth + 1, awaits=ctx.coin(0.1)) for _ in range(ctx.integer(0, 2))]
    return f"await step({', '.join([repr(label), *args])})"


def _expr(ctx: _Context, depth: int = 0, *, awaits: bool = True) -> str:
    """An int expression (it may raise ZeroDivisionError or StepError)."""
    awaits = awaits and not ctx.pure
    kinds = ["var", "int", "var"]
    if depth < 2:
        kinds += ["binop", "binop", "call", "logic"]
    if depth < 2 and not ctx.no_comp and ctx.often("comprehension", 0.12, 0.4):
        kinds.append("comp")
    if awaits and depth < 3:
        kinds += ["await", "await"]
    targets = ctx.walrus_targets()
    if targets and depth < 3 and ctx.often("walrus", 0.08, 0.4):
        kinds.append("walrus")
    sync_closures = [n for n in ctx.closures if n != "k"] if not ctx.pure else []
    if sync_closures and depth < 3 and ctx.often("closures", 0.15, 0.5):
        kinds.append("closure")
    if ctx.coin(0.06) or (ctx.methods and ctx.coin(0.06)):
        kinds.append("object")
    # Not inside a comprehension: an unbound local read there is CPython's
    # NameError for a free variable, which compiled code does not reproduce
    # (docs/semantics.md, deviation 22). Not in a closure: its names are
    # unbound when it is defined.
    names = [n for n in ctx.handlers if n] if not (ctx.comp_vars or ctx.pure) else []
    if names:
        kinds.append("exc")
    if (ctx.handlers or ctx.in_finally) and not ctx.pure and ctx.coin(0.2):
        kinds.append("handled")
    stale = sorted(ctx.caught - set(names)) if not (ctx.comp_vars or ctx.pure) else []
    if stale and ctx.coin(0.1):
        # Deliberately read a name an earlier handler unbound: UnboundLocalError.
        names = stale
        kinds.append("exc")
    kind = ctx.choose(kinds)
    if kind == "var":
        return ctx.choose(POOL + tuple(ctx.comp_vars) + tuple(ctx.params))
    if kind == "object":
        return "calc.n" if ctx.methods and ctx.coin(0.5) else "len(log)"
    if kind == "comp":
        return _comprehension(ctx, depth, awaits)
    if kind == "int":
        return str(ctx.integer(0, 5))
    if kind == "await":
        return _step(ctx, depth)
    if kind == "walrus":  # binds in the function, also from inside a comprehension
        return f"({ctx.choose(targets)} := {_expr(ctx, depth + 1, awaits=awaits)})"
    if kind == "closure":  # h writes a pool name: a side effect inside the expression
        return f"{ctx.choose(sync_closures)}({_expr(ctx, depth + 1, awaits=awaits)})"
    if kind == "handled":  # the exception being handled, or None
        return ctx.choose(("len(repr(sys.exception()))", "int(sys.exception() is None)"))
    if kind == "exc":
        name = ctx.choose(names)
        if awaits and depth < 3 and ctx.coin(0.3):
            # The plain name is read before the await (UnboundLocalError first).
            return f"({name} != {_step(ctx, depth + 1)})"
        return ctx.choose(
            (
                f"len({name}.args)",
                f"len(str({name}))",
                f"len(repr({name}.__context__))",
                f"int({name}.__cause__ is None)",
                f"int({name}.__suppress_context__)",
            )
        )
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
            # Not a comprehension in both the test and the body: the compiler
            # matches them with the wrong symbol tables, a known bug
            # (tests/test_fuzz_findings.py, test_scopes_matched_with_their_symbol_tables).
            ctx.no_comp += " for " in first
            test = _expr(ctx, depth + 1, awaits=awaits)
            ctx.no_comp -= " for " in first
            return f"({first} if {test} else {second})"
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


def _ticker(ctx: _Context, depth: int, count: str | None = None) -> str:
    """A checkpointable async iterator over 1..n (its items may await `step`)."""
    label = ctx.label()
    if count is None:
        count = str(ctx.integer(0, 3)) if ctx.coin(0.6) else f"min({_expr(ctx, depth + 1)}, 3)"
    awaits = ", awaits=True" if ctx.coin(0.5) else ""
    return f"Ticker({label!r}, {count}{awaits})"


def _comprehension(ctx: _Context, depth: int, awaits: bool, *, force_async: bool = False) -> str:
    """An int made by a comprehension; its variable may shadow a pool name."""
    forms = ["list", "set", "dict", "walrus", "clauses", "nested"]
    if force_async:
        forms = ["async", "async_clauses"]
    elif awaits:  # an async comprehension is an await (not in a closure's body)
        forms += ["async", "async_clauses"]
    form = ctx.choose(forms)
    # The first iterable is evaluated outside the comprehension (no walrus
    # there), and holds no comprehension: the compiler matches the two with
    # the wrong symbol tables, a known bug (tests/test_fuzz_findings.py,
    # test_scopes_matched_with_their_symbol_tables).
    ctx.no_walrus += 1
    ctx.no_comp += 1
    if form == "async":
        first = _ticker(ctx, depth + 1)
    elif ctx.coin(0.5):
        first = f"range({ctx.integer(0, 3)})"
    else:
        first = f"range(min({_expr(ctx, depth + 1, awaits=awaits)}, 3))"
    ctx.no_walrus -= 1
    ctx.no_comp -= 1
    var = ctx.choose(("x", "y", "c", "i"))
    ctx.comp_vars.append(var)
    head = f"{'async ' if form == 'async' else ''}for {var} in {first}"
    if form in ("clauses", "async_clauses"):
        inner = ctx.choose(("x", "y", "c", "i"))
        if form == "clauses":
            head += f" for {inner} in range({var})"
        else:
            ctx.no_walrus += 1
            head += f" async for {inner} in {_ticker(ctx, depth + 1, count=var)}"
            ctx.no_walrus -= 1
        ctx.comp_vars.append(inner)
    if ctx.coin(0.4):
        head += f" if {_expr(ctx, depth + 1, awaits=awaits)}"
    if form == "nested":
        element = _comprehension(ctx, depth + 1, awaits)
    elif awaits and ctx.often("comprehension", 0.2, 0.5):
        element = f"({_step(ctx, depth + 1)})"
    else:
        element = _expr(ctx, depth + 1, awaits=awaits)
    targets = ctx.walrus_targets()
    if form == "walrus" and targets:
        element = f"({ctx.choose(targets)} := {element})"  # binds in the function
    del ctx.comp_vars[-2 if form in ("clauses", "async_clauses") else -1 :]
    if form == "set":
        return f"len({{{element} {head}}})"
    if form == "dict":
        return f"sum({{{var}: {element} {head}}}.values())"
    return f"sum([{element} {head}])"


def _test(ctx: _Context) -> str:
    """A condition, often awaiting."""
    kinds = ["compare", "await", "truth", "and", "not", "chain"]
    if ctx.walrus_targets():
        kinds.append("walrus")
    kind = ctx.choose(kinds)
    if kind == "await":
        awaited = _step(ctx, 1)
        if ctx.coin(0.3):
            return f"{awaited} % 2 == {ctx.integer(0, 1)}"
        return f"{awaited} {ctx.choose(('>', '<'))} {ctx.integer(0, 60)}"
    if kind == "walrus":
        target = ctx.choose(ctx.walrus_targets())
        return f"({target} := {_expr(ctx, 1)}) {ctx.choose(('>', '<', '!='))} {ctx.integer(0, 9)}"
    if kind == "truth":
        return _expr(ctx, 1)
    if kind == "not":
        return f"not {_expr(ctx, 1)}"
    if kind == "chain":
        # A walrus may rebind a name operand later in the chain (the
        # operand is read first: tests/test_fuzz_findings.py,
        # test_a_comparison_chain_reads_a_name_before_a_later_walrus).
        operands = [_expr(ctx, 1) for _ in range(3)]
        return f"{operands[0]} < {operands[1]} <= {operands[2]}"
    left = f"{_expr(ctx, 1)} {ctx.choose(('<', '>', '==', '!=', '<='))} {_expr(ctx, 1)}"
    if kind == "and":
        return f"{left} {ctx.choose(('and', 'or'))} {_expr(ctx, 1)}"
    return left


def _pure(ctx: _Context, *params: str) -> str:
    """An await-free int expression over the pool and `params`: a closure's body."""
    ctx.pure += 1
    ctx.params += params
    value = _expr(ctx, 1)
    del ctx.params[len(ctx.params) - len(params) :]
    ctx.pure -= 1
    return value


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
    if "chaining" in ctx.focus and (ctx.handlers or ctx.in_finally):
        weights["raise"] = 4
    if ctx.budget > 0 and ctx.nesting < MAX_NESTING:
        shallow = 3 - min(ctx.nesting, 2)  # favour awaits nested two levels deep
        weights |= {"if": 2, "for": 2 * shallow, "while": 2 * shallow, "try": 3 * shallow}
        for kind in ("match", "with", "async_with", "async_for"):
            weights[kind] = 5 if kind in ctx.focus else 1
        if "chaining" in ctx.focus:
            weights["try"] += 3
    if "g" in ctx.closures:
        weights["lambda"] = 1
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
    forms = ["assign", "augassign", "expr", "nested", "max", "unpack"]
    if ctx.methods:
        forms.append("make")
    form = ctx.choose(forms)
    target = ctx.choose(POOL)
    if form == "assign":
        return [f"{target} = {_step(ctx, 0)}"]
    if form == "make":  # a classmethod's result replaces the instance f holds
        return [f"calc = await {ctx.choose(('Calc', 'calc'))}.make({_expr(ctx, 1)})"]
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


def _return_line(ctx: _Context) -> str:
    form = ctx.choose(("pool", "expr", "none"))
    if form == "pool":
        return f"return ({', '.join(POOL)}, log)"
    if form == "expr":
        return f"return {_expr(ctx)}"
    return "return"


def _return(ctx: _Context) -> list[str]:
    line = _return_line(ctx)
    # An unconditional return at the top level would end most functions early.
    return _guarded(ctx, line) if ctx.nesting == 0 or ctx.coin(0.5) else [line]


def _raise(ctx: _Context) -> list[str]:
    forms = ["value", "other", "from_none", "from_new"]
    names = [n for n in ctx.handlers if n]
    if ctx.handlers or ctx.in_finally:
        forms += ["bare", "bare"]
    if names:
        forms += ["from_e", "from_e", "raise_e"]
    form = ctx.choose(forms)
    if form == "bare":
        line = "raise"
    elif form == "raise_e":
        line = f"raise {ctx.choose(names)}"
    elif form == "other":  # caught only by `except Exception`
        line = f"raise KeyError({_expr(ctx)})"
    else:
        line = f"raise ValueError({_expr(ctx)})"
        if form == "from_none":
            line += " from None"
        elif form == "from_new":
            line += f" from StepError({_expr(ctx, 1)})"
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


def _async_for(ctx: _Context) -> list[str]:
    """An async for over a Ticker; each `__anext__` is an await (a checkpoint).
    The target is a plain name (targets that await have their own tests:
    tests/test_fuzz_findings.py, test_an_await_in_an_async_for_target*)."""
    target = "i" if ctx.coin(0.6) else ctx.choose(POOL)
    header = f"async for {target} in {_ticker(ctx, 1)}:"
    return [header, *_indent(_loop_body(ctx)), *_loop_else(ctx)]


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
    if ctx.loops and len(shapes) > 1:
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


def _manager(ctx: _Context, is_async: bool) -> str:
    """One item of a with statement: a Manager (AsyncManager) and its `as` target."""
    ctx.managers += 1
    name = repr(f"m{ctx.managers}")
    if ctx.coin(0.15):  # the manager's expression awaits
        name = f"{name} + str({_expr(ctx, 1)})"
    args = ["log", name]
    suppress = ctx.choose(("", "", "", "ValueError", "StepError", "Exception"))
    if suppress:
        args.append(f"suppress={suppress!r}")
    pair = ctx.coin(0.25)
    if pair:
        args.append("pair=True")
    if ctx.coin(0.1):
        args.append("fails=True")
    if is_async and ctx.coin(0.6):
        args.append("awaits=True")
    item = f"{'AsyncManager' if is_async else 'Manager'}({', '.join(args)})"
    if pair and ctx.coin(0.8):
        return f"{item} as ({ctx.choose(POOL)}, {ctx.choose(POOL)})"
    if not pair and ctx.coin(0.6):
        return f"{item} as {ctx.choose(POOL)}"
    return item


def _with(ctx: _Context, *, is_async: bool = False) -> list[str]:
    """with / async with of one or two managers, around a block that often awaits;
    the managers' exits run on every way out of it (like a finally block)."""
    items = [_manager(ctx, is_async) for _ in range(ctx.integer(1, 2))]
    ctx.nesting += 1
    protected = ctx.loops > 0
    ctx.protected += protected
    first = _statement(ctx, "await") if ctx.often("with", 0.7, 0.9) else []
    body = first + _block(ctx, 0 if first else 1, 2)
    ctx.protected -= protected
    ctx.nesting -= 1
    return [f"{'async ' if is_async else ''}with {', '.join(items)}:", *_indent(body)]


def _comprehension_statement(ctx: _Context, *, is_async: bool = False) -> list[str]:
    """A pool name assigned a comprehension (`is_async`: an async one) that awaits."""
    focus = ctx.focus
    ctx.focus = focus | {"comprehension"} | ({"async comprehension"} if is_async else set())
    value = _comprehension(ctx, 0, True, force_async=is_async)
    ctx.focus = focus
    return [f"{ctx.choose(POOL)} = {value}"]


def _closure_call(ctx: _Context) -> list[str]:
    """A pool name assigned a call of a closure (`h`, writing through nonlocal, if defined)."""
    if not ctx.closures:
        return _assign(ctx)
    name = "h" if "h" in ctx.closures and ctx.coin(0.7) else ctx.choose(ctx.closures)
    call = f"{name}({_expr(ctx, 1)})"
    if name == "k":
        call = f"await {call}"
    return [f"{ctx.choose(POOL)} = {call}" if ctx.coin(0.7) else f"{ctx.choose(POOL)} += {call}"]


def _chained(ctx: _Context) -> list[str]:
    """A handler raising while it handles (a context, or a cause), caught by an
    outer handler that reads the chain."""
    ctx.nesting += 2
    inner = _try_block(ctx, ["await"])
    ctx.handlers.append("e1")
    ctx.caught.add("e1")
    handler = _block(ctx, 0, 1)
    raised = ctx.choose(
        (
            f"raise ValueError({_expr(ctx, 1)}) from e1",
            f"raise KeyError({_expr(ctx, 1)})",
            f"raise ValueError({_expr(ctx, 1)}) from None",
            "raise",
            "raise e1",
        )
    )
    ctx.handlers.pop()
    handler += _guarded(ctx, raised) if ctx.coin(0.3) else [raised]
    ctx.handlers.append("e2")
    ctx.caught.add("e2")
    attrs = (
        "len(repr(e2.__context__))",
        "len(repr(e2.__cause__))",
        "int(e2.__suppress_context__)",
        "len(repr(e2.__context__ and e2.__context__.__context__))",
    )
    reads = [f"{ctx.choose(POOL)} = {ctx.choose(attrs)}" for _ in range(ctx.integer(1, 2))]
    outer = reads + _block(ctx, 0, 1)
    ctx.handlers.pop()
    ctx.nesting -= 2
    return [
        "try:",
        "    try:",
        *_indent(_indent(inner)),
        f"    except {ctx.choose(EXCEPTIONS)} as e1:",
        *_indent(_indent(handler)),
        f"except {ctx.choose(('Exception', 'ValueError', 'KeyError'))} as e2:",
        *_indent(outer),
    ]


def _try_block(ctx: _Context, first: list[str]) -> list[str]:
    lines: list[str] = []
    for kind in first:
        lines += _statement(ctx, kind)
    return lines + _block(ctx, 0, 1)


def _lambda(ctx: _Context) -> list[str]:
    """Rebind the closure g: its default is evaluated here (and may await)."""
    default = _expr(ctx, 2)
    return [f"g = lambda p, q={default}: {_pure(ctx, 'p', 'q')}"]


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
    "with": _with,
    "async_with": lambda ctx: _with(ctx, is_async=True),
    "async_for": _async_for,
    "lambda": _lambda,
    # Only as forced statements:
    "comprehension": _comprehension_statement,
    "async comprehension": lambda ctx: _comprehension_statement(ctx, is_async=True),
    "closures": _closure_call,
    "nonlocal": _closure_call,
    "chaining": _chained,
    "try_finally": lambda ctx: _try(ctx, ("finally", "both")),
    "try_only_finally": lambda ctx: _try(ctx, ("finally",)),
    "for_runs": lambda ctx: _for(ctx, runs=True),
    "while_runs": lambda ctx: _while(ctx, runs=True),
    "jump": _jump,
    "return_now": lambda ctx: [_return_line(ctx)],
}


# -- the definitions around f -----------------------------------------------------------------


def _closures(ctx: _Context) -> list[str]:
    """The closures f defines first (so they are bound at every call), held
    across every await: g reads the pool (late bound), h writes a pool name
    through `nonlocal`, k is a coroutine function awaiting `step`."""
    lines: list[str] = []
    names: list[str] = []
    if ctx.coin(0.8):
        lines.append(f"g = lambda p: {_pure(ctx, 'p')}")
        names.append("g")
    if ctx.often("nonlocal", 0.5, 1):
        written = ctx.choose(POOL)
        value = _pure(ctx, "p")
        lines += [
            "def h(p):",
            f"    nonlocal {written}",
            f"    {written} {ctx.choose(('+=', '-=', '='))} {value}",
            f"    return {written} % 7",
        ]
        names.append("h")
    if ctx.coin(0.5):
        lines += [
            "async def k(p):",
            f"    return {_pure(ctx, 'p')} + await step({ctx.label()!r}, p)",
        ]
        names.append("k")
    ctx.closures = tuple(names)
    return lines


def _method_body(ctx: _Context, receiver: str) -> list[str]:
    """A few statements of a method over its parameter k (never changing self:
    its changes would not reach the caller, docs/semantics.md deviation 19)."""
    lines: list[str] = []
    for _ in range(ctx.integer(0, 2)):
        form = ctx.choose(("await", "raise", "loop", "try"))
        label = repr(ctx.label())
        if form == "await":
            lines.append(f"k += await step({label}, k, {receiver})")
        elif form == "raise":
            lines += [f"if k % 4 == {ctx.integer(0, 3)}:", f"    raise ValueError({label}, k)"]
        elif form == "loop":
            lines += ["for j in range(k % 3):", f"    k += await step({label}, j)"]
        else:
            lines += [
                "try:",
                f"    k -= await step({label}, k)",
                "except StepError as e:",
                "    k += len(e.args)",
            ]
    return lines


def _calc(ctx: _Context) -> list[str]:
    """The module-level dataclass Calc whose decorated methods f awaits."""
    classmethod_first = ctx.coin(0.5)
    make = ["@classmethod", "@resumable.function"]
    twice = ["@resumable.function", "@staticmethod"]
    if not classmethod_first:
        make.reverse()
        twice.reverse()
    lines = [
        "@dataclasses.dataclass",
        "class Calc:",
        "    n: int",
        "",
        "    @resumable.function",
        "    async def get(self, k):",
        *_indent(_indent(_method_body(ctx, "self.n"))),
        "        return k + self.n",
        "",
        *_indent(make),
        "    async def make(cls, k):",
        *_indent(_indent(_method_body(ctx, "len(cls.__name__)"))),
        "        return cls(k % 7)",
        "",
        *_indent(twice),
        "    async def twice(k):",
        *_indent(_indent(_method_body(ctx, "0"))),
        "        return k * 2",
    ]
    return lines


def render(
    body: list[str], whiles: int, inits: tuple[int, int], closures: list[str], calc: list[str]
) -> str:
    """The module source for a function body."""
    top = [f"c = {inits[0]}", f"i = {inits[1]}", "log = []"]
    if calc:
        top.append("calc = Calc(a)")
    top += closures
    top += [f"w{k} = 0" for k in range(1, whiles + 1)]
    lines = [
        *calc,
        *([""] * 2 * bool(calc)),
        "@resumable.function",
        "async def f(a, b):",
        *_indent(top + body + [f"return ({', '.join(POOL)}, log)"]),
    ]
    return HEADER + "\n".join(lines) + "\n"


#: The constructs a program may favour (`_Context.focus`).
FOCUS = (
    "comprehension",
    "async comprehension",
    "walrus",
    "match",
    "with",
    "async_with",
    "async_for",
    "closures",
    "nonlocal",
    "methods",
    "finally",
    "chaining",
)

#: FOCUS, with twice the chance for the constructs that are rarer otherwise.
_FOCUS_DRAWN = (*FOCUS, "with", "finally", "methods", "async comprehension")

#: Nestings of the block after the function's first statements, forced in 40%
#: of the examples: each list is the first statements of the next block.
_FORCED: dict[str, list[list[str]]] = {
    # break/continue through a finally block
    "jump": [["loop"], ["try_finally"], ["await", "jump"]],
    # ... through two
    "jump2": [["loop"], ["try_finally"], ["try_finally"], ["await", "jump"]],
    # break/continue inside a finally block (the pending exception is dropped)
    "jump_in_finally": [["loop"], ["try_only_finally"], ["await"], ["jump"]],
    # return through two finally blocks
    "return2": [["try_finally"], ["try_finally"], ["await", "return_now"]],
    # an await inside two loops or try statements
    "nested": [["compound"], ["compound"], ["await"]],
}


@st.composite
def programs(draw: Callable[[st.SearchStrategy[Any]], Any], max_statements: int = 8) -> Program:
    """A random module defining `async def f(a, b)`; see the module docstring."""
    ctx = _Context(draw=draw, budget=draw(st.integers(3, max_statements)))
    # One to three favoured constructs: more would make long programs, slow to compile.
    ctx.focus = frozenset(ctx.choose(_FOCUS_DRAWN) for _ in range(ctx.integer(1, 3)))
    ctx.methods = ctx.often("methods", 0.1, 1)
    calc = _calc(ctx) if ctx.methods else []
    closures = _closures(ctx) if ctx.focus & {"closures", "nonlocal"} or ctx.coin(0.2) else []
    body = _block(ctx, 0, 2)
    for construct in FOCUS:  # one of each favoured construct, at least
        if construct in ctx.focus and construct in _STATEMENTS:
            body += _statement(ctx, construct)
    if ctx.often("finally", 0.4, 1):
        # The grammar alone produces awaits nested two deep in only about half
        # of the examples, and jumps through finally blocks rarely.
        shape = ctx.choose(tuple(_FORCED)[: -1 if "finally" in ctx.focus else None])
        ctx.forced = [list(block) for block in _FORCED[shape]]
        for block in ctx.forced:
            for n, kind in enumerate(block):
                if kind == "loop":
                    block[n] = ctx.choose(("for_runs", "while_runs"))
                elif kind == "compound":
                    block[n] = ctx.choose(("try", "for", "while", "with"))
        ctx.budget += len(ctx.forced) - 1
        body += _block(ctx, 1, 1)
    body += _block(ctx, 1, 3)
    inits = (draw(st.integers(0, 5)), draw(st.integers(0, 5)))
    args = (draw(st.integers(0, 5)), draw(st.integers(0, 5)))
    return Program(render(body, ctx.whiles, inits, closures, calc), args)


# -- measuring ----------------------------------------------------------------------------


def await_nesting(source: str) -> int:
    """The largest number of loops and try statements enclosing an await."""
    best = 0

    def visit(node: ast.AST, depth: int) -> None:
        nonlocal best
        if isinstance(node, ast.Await):
            best = max(best, depth)
        loops = ast.For | ast.AsyncFor | ast.While | ast.Try
        inner = depth + 1 if isinstance(node, loops) else depth
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
            if isinstance(node, ast.For | ast.AsyncFor | ast.While) and name == "body":
                inner = (*stack, "loop")
            elif isinstance(node, ast.Try) and node.finalbody and name != "finalbody":
                inner = (*stack, "finally")
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    visit(child, inner)

    visit(ast.parse(source), ())
    return count


#: What `constructs` finds in a program; the property counts each one.
CONSTRUCTS = (
    "comprehension awaiting",
    "async comprehension",
    "walrus",
    "match awaiting",
    "with awaiting",
    "async with",
    "async for",
    "closure called",
    "nonlocal write",
    "method awaited",
    "jump through finally",
    "nested finally",
    "exception chaining",
)


def _awaits(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Await | ast.AsyncFor | ast.AsyncWith)
        or (isinstance(n, ast.comprehension) and n.is_async)
        for n in ast.walk(node)
    )


def _function(source: str) -> ast.AsyncFunctionDef:
    for node in ast.parse(source).body:
        if isinstance(node, ast.AsyncFunctionDef) and node.name == "f":
            return node
    raise ValueError("no async def f")


def constructs(source: str) -> set[str]:
    """Which of CONSTRUCTS the program's f holds (the constructs with awaits in them)."""
    f = _function(source)
    nodes = list(ast.walk(f))
    closures = {n.name for n in nodes if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    closures |= {
        t.id
        for n in nodes
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Lambda)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    writes = any(isinstance(n, ast.Nonlocal) for n in nodes)
    found = {c for node in nodes for c in _constructs_at(node, closures - {"f"}, writes)}
    if crossing_jumps(source) or _returns_through_finally(f):
        found.add("jump through finally")
    return found


def _constructs_at(node: ast.AST, closures: set[str], writes: bool) -> list[str]:
    """The constructs `node` itself is (see `constructs`)."""
    if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp):
        found = ["async comprehension"] if any(g.is_async for g in node.generators) else []
        return found + ["comprehension awaiting"] * _awaits(node)
    if isinstance(node, ast.NamedExpr):
        return ["walrus"]
    if isinstance(node, ast.Match):
        return ["match awaiting"] * _awaits(node)
    if isinstance(node, ast.With):
        return ["with awaiting"] * any(_awaits(s) for s in node.body)
    if isinstance(node, ast.AsyncWith):
        return ["async with"]
    if isinstance(node, ast.AsyncFor):
        return ["async for"]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        called = node.func.id
        return ["closure called"] * (called in closures) + ["nonlocal write"] * (
            called == "h" and writes
        )
    if isinstance(node, ast.Await) and isinstance(node.value, ast.Call):
        func = node.value.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            return ["method awaited"] * (func.value.id in ("calc", "Calc"))
        return []
    chained = (
        (isinstance(node, ast.Raise) and node.cause is not None)
        or (isinstance(node, ast.Attribute) and node.attr in ("__cause__", "__context__"))
        # raised while handling: a context
        or (
            isinstance(node, ast.ExceptHandler)
            and any(isinstance(n, ast.Raise) and n.exc is not None for n in ast.walk(node))
        )
    )
    if chained:
        return ["exception chaining"]
    if isinstance(node, ast.Try) and node.finalbody:
        inner = (
            n for part in (node.body, node.handlers, node.orelse) for s in part for n in ast.walk(s)
        )
        return ["nested finally"] * any(isinstance(n, ast.Try) and n.finalbody for n in inner)
    return []


def _returns_through_finally(f: ast.AsyncFunctionDef) -> bool:
    """Whether a return leaves a try statement's body or handler with a finally block."""
    for node in ast.walk(f):
        if isinstance(node, ast.Try) and node.finalbody:
            for part in (node.body, node.handlers, node.orelse):
                for s in part:
                    if any(isinstance(n, ast.Return) for n in ast.walk(s)):
                        return True
    return False
