"""Random modules for the compiler fuzz test (tests/test_compiler_fuzz.py).

`modules()` is a hypothesis strategy of module sources holding one to three
`@resumable.function` coroutines (and sometimes an undecorated neighbour),
whose bodies are drawn from Python 3.11's whole function-body grammar: every
statement (assignments of every target shape, augmented and annotated
assignment, del, assert, raise/from, global, nonlocal, imports, if, while,
for, async for, with and async with, try/except/else/finally, try/except*,
match with every pattern kind, nested def/async def/class, return, break,
continue, pass) and every expression (operators, comparison chains, and/or,
conditional expressions, walrus, lambdas, calls with * and **, attributes,
subscripts and slices, displays with unpacking, the four comprehensions with
async for, f-strings with conversions, debug `=` and nested format specs,
string concatenation, starred, yield, await).

Programs are meant to be compiled, never run: names need not be bound and
types need not fit. What matters is reaching the lowering with awaits in as
many positions as possible, so

- any expression may be wrapped in `await` where CPython allows it (often:
  about one node in four), and leaves are often `await g(...)`;
- each function is *strict* or not: a strict function places awaits only
  where the compiler supports them today (not in a nested function's
  annotations, a `with ... as` or comprehension target, a generator
  expression past its outermost iterable), so most strict functions compile
  and exercise the lowering; the others place awaits anywhere and use frame
  access, yield and reserved-looking names, to exercise the errors. Both use
  closures, match, comprehensions, with and async with, async for, and
  decorated methods (with super(), __class__ and private names);
- the generator tracks what CPython's compiler checks (break outside a loop,
  await outside an async scope, return in an except* block, ...), so few
  examples are rejected by `compile()`; the test filters the rest.

Formatting varies too: semicolons, one-line suites, comments and line breaks
inside brackets, redundant parentheses, multi-line strings, form feed lines,
and characters str.splitlines ends lines at (CPython does not) in strings
and comments.

Every choice reads one byte of the example's input (`module_source(data)`),
as a fuzzer's generator does: that keeps generation fast (hypothesis draws
one byte string per example, not hundreds of values), makes any byte string
a program (`module_source(os.urandom(2000))` for a quick look), and a choice
past the input's end takes its first, simplest option.

Not generated: `(x): int` (a parenthesized annotated name, which libcst
cannot parse), `yield from` and `return value` in an async generator (not
valid in an async function), and the match patterns CPython rejects
(alternatives binding different names; a capture before the last case).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

__all__ = ["modules"]

#: Locals of a decorated function (`a`, `b` are parameters), with a few names
#: the compiler must avoid for its own (`L`, `m`, hidden `_t1`, ...).
LOCALS = ("a", "b", "c", "d", "x", "y")
ODD_LOCALS = ("L", "m", "_t1", "_rv", "_c1", "__t2", "m_", "L_", "len", "self", "_", "__dunder__")
ODD_CHARACTERS = ("\x0c", "\u2028", "\x85", "\x1c", "\u2029")
GLOBALS = ("G", "H", "g", "h", "print", "len", "sys", "os")
AWAITABLES = ("g", "h", "G.fetch", "sleep", "resumable.sleep")
EXCEPTIONS = ("ValueError", "Exception", "(KeyError, IndexError)", "E", "BaseException")
BINOPS = ("+", "-", "*", "/", "//", "%", "**", "@", "<<", ">>", "&", "|", "^")
COMPARE = ("<", ">", "==", ">=", "<=", "!=", "in", "not in", "is", "is not")
#: Operator precedence (higher binds tighter), as in the Python grammar.
PREC = {
    "lambda": 0, "if": 1, "or": 2, "and": 3, "not": 4, "cmp": 5, "|": 6, "^": 7, "&": 8,
    "<<": 9, ">>": 9, "+": 10, "-": 10, "*": 11, "/": 11, "//": 11, "%": 11, "@": 11,
    "unary": 12, "**": 13, "await": 14, "primary": 15, "atom": 16,
}  # fmt: skip

HEADERS = (
    "import resumable\n",
    "import resumable as r\n",
    "from resumable import function\n",
    "import resumable\nfrom resumable import function as durable\n",
)
DECORATORS = {
    HEADERS[0]: ("@resumable.function", "@resumable.function(retry=None)"),
    HEADERS[1]: ("@r.function",),
    HEADERS[2]: ("@function",),
    HEADERS[3]: ("@durable", "@resumable.function"),
}


@dataclass
class _Scope:
    """What the current position allows."""

    #: `await` is valid syntax here (an async function's own scope).
    await_legal: bool = True
    #: The compiler supports an await here (strict functions only use these).
    await_supported: bool = True
    loop: bool = False  # break/continue valid
    returns: bool = True  # return valid
    generator: bool = False  # return has no value
    function: bool = True  # in a function (nonlocal, return); False in a class body
    nested: bool = False  # a nested def (nonlocal valid)
    #: Names this scope reads and writes.
    names: tuple[str, ...] = LOCALS
    #: Quote characters still free inside an f-string expression ("" = no strings).
    quotes: str = "\"'"
    #: Inside an f-string replacement field (no backslashes, no line breaks).
    fstring: bool = False
    #: Inside a comprehension's non-first parts, or a class body: no walrus.
    no_walrus: bool = False
    #: Inside a comprehension (no yield).
    comprehension: bool = False
    #: In a decorated method (super(), __class__ and private names are compiled).
    method: bool = False


class _Choices:
    """Every choice of the generator, read from a byte string (as a fuzzer's
    input): one byte per choice, and a choice past its end takes the first
    option, so hypothesis shrinks the bytes towards smaller programs."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def byte(self) -> int:
        if self.at >= len(self.data):
            return 0
        self.at += 1
        return self.data[self.at - 1]

    def choose(self, options: tuple[str, ...] | list[str]) -> str:
        return options[self.byte() % len(options)]

    def integer(self, lo: int, hi: int) -> int:
        return lo + self.byte() % (hi - lo + 1)

    def coin(self, p: float) -> bool:
        """True with probability about `p` (False past the end)."""
        return self.byte() >= 256 - round(256 * p)


@dataclass
class _Gen:
    choices: _Choices
    strict: bool
    budget: int
    scope: _Scope = field(default_factory=_Scope)
    counter: int = 0

    def choose(self, options: tuple[str, ...] | list[str]) -> str:
        return self.choices.choose(options)

    def integer(self, lo: int, hi: int) -> int:
        return self.choices.integer(lo, hi)

    def coin(self, p: float) -> bool:
        return self.choices.coin(p)

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    @contextmanager
    def inside(self, **changes: Any) -> Iterator[None]:
        saved = self.scope
        self.scope = _Scope(**{**saved.__dict__, **changes})
        try:
            yield
        finally:
            self.scope = saved

    def unsupported(self) -> Any:
        """A position where the compiler does not support awaits (yet)."""
        return self.inside(await_supported=False)

    def may_await(self, p: float = 0.25) -> bool:
        s = self.scope
        if not s.await_legal or (self.strict and not s.await_supported):
            return False
        return self.coin(p)

    # -- expressions: (text, precedence) -------------------------------------------

    def name(self) -> str:
        names = self.scope.names
        if not self.strict and self.coin(0.05):
            return self.choose(ODD_LOCALS)
        if self.coin(0.15):
            return self.choose(GLOBALS)
        return self.choose(names)

    def expr(self, depth: int = 0, need: int = 0) -> str:
        """An expression that may stand where precedence `need` is required."""
        text, prec = self._expr(depth)
        if prec < need or (prec < PREC["atom"] and self.coin(0.05)):
            return f"({text})"
        return text

    def _expr(self, depth: int) -> tuple[str, int]:
        if depth < 6 and self.may_await(0.25 if depth < 4 else 0.1):
            return f"await {self.expr(depth + 1, PREC['primary'])}", PREC["await"]
        if depth >= 4 or not self.coin(0.6):
            return self.atom(depth)
        kind = self.choose(_EXPR_KINDS)
        return getattr(self, "e_" + kind)(depth + 1)

    def atom(self, depth: int) -> tuple[str, int]:
        kind = self.choose(("name", "name", "int", "str", "call", "const"))
        if kind == "name":
            return self.name(), PREC["atom"]
        if kind == "int":
            return str(self.integer(0, 3)), PREC["atom"]
        if kind == "str":
            return self.string(), PREC["atom"]
        if kind == "call":
            if self.may_await(0.6):
                args = ", ".join(self.expr(depth + 1) for _ in range(self.integer(0, 2)))
                return f"await {self.choose(AWAITABLES)}({args})", PREC["await"]
            return f"{self.name()}()", PREC["primary"]
        const = self.choose(("None", "True", "False", "...", "1.5", "2j", "-1", "10**20"))
        prec = {"-1": PREC["unary"], "10**20": PREC["**"]}.get(const, PREC["atom"])
        return const, prec

    def primary(self, depth: int) -> str:
        """An expression followed by `.attr`, `(...)` or `[...]`."""
        value = self.expr(depth, PREC["primary"])
        return f"({value})" if value[0].isdigit() else value

    def string(self) -> str:
        quotes = self.scope.quotes
        if not quotes:
            return "0"
        q = quotes[0]
        kind = self.choose(("plain", "bytes", "raw", "fstring", "concat", "escape", "odd", "long"))
        if kind == "odd":
            # Characters str.splitlines takes for line ends, and CPython does not.
            return f"{q}a{self.choose(ODD_CHARACTERS)}b{q}"
        if kind == "long" and not self.scope.fstring:
            return f"{q * 3}a\nb{q * 3}"
        if kind == "fstring":
            return self.fstring(q)
        if kind == "bytes":
            return f"b{q}xy{q}"
        if kind == "raw":
            return f"r{q}a{q}"
        if kind == "concat":
            return f"{q}a{q} {q}b{q}" if not self.coin(0.5) else f"{q}a{q} {self.fstring(q)}"
        if kind == "escape" and not self.scope.fstring:
            return f"{q}\\n{q}"
        return f"{q}s{q}"

    def fstring(self, q: str) -> str:
        inner = self.scope.quotes[1:]
        parts = []
        with self.inside(quotes=inner, fstring=True):
            for _ in range(self.integer(1, 2)):
                value = self.expr(2, PREC["lambda"] + 1)
                if value.startswith("{"):
                    value = " " + value
                form = self.choose(("plain", "conv", "spec", "debug", "nested_spec"))
                if form == "conv":
                    parts.append(f"{{{value}!{self.choose(('r', 's', 'a'))}}}")
                elif form == "spec":
                    parts.append(f"{{{value}:>4}}")
                elif form == "debug":
                    parts.append(f"{{{value}=}}")
                elif form == "nested_spec":
                    spec = self.expr(3, PREC["lambda"] + 1)
                    if spec.startswith("{"):
                        spec = " " + spec
                    parts.append(f"{{{value}:{{{spec}}}}}")
                else:
                    parts.append(f"{{{value}}}")
                if self.coin(0.3):
                    parts.append("t")
        return f"f{q}{''.join(parts)}{q}"

    def e_binop(self, depth: int) -> tuple[str, int]:
        op = self.choose(BINOPS)
        if op == "**":
            return f"{self.expr(depth, PREC['await'])} ** {self.expr(depth, PREC['unary'])}", PREC[
                "**"
            ]
        p = PREC[op]
        return f"{self.expr(depth, p)} {op} {self.expr(depth, p + 1)}", p

    def e_unary(self, depth: int) -> tuple[str, int]:
        op = self.choose(("-", "+", "~", "not "))
        if op == "not ":
            return f"not {self.expr(depth, PREC['not'])}", PREC["not"]
        return f"{op}{self.expr(depth, PREC['unary'])}", PREC["unary"]

    def e_boolop(self, depth: int) -> tuple[str, int]:
        op = self.choose(("and", "or"))
        p = PREC[op]
        operands = [self.expr(depth, p + 1) for _ in range(self.integer(2, 3))]
        return f" {op} ".join(operands), p

    def e_compare(self, depth: int) -> tuple[str, int]:
        parts = [self.expr(depth, PREC["|"])]
        for _ in range(self.integer(1, 3)):
            parts += [self.choose(COMPARE), self.expr(depth, PREC["|"])]
        return " ".join(parts), PREC["cmp"]

    def e_ifexp(self, depth: int) -> tuple[str, int]:
        body = self.expr(depth, PREC["or"])
        test = self.expr(depth, PREC["or"])
        return f"{body} if {test} else {self.expr(depth, PREC['if'])}", PREC["if"]

    def e_walrus(self, depth: int) -> tuple[str, int]:
        if self.scope.no_walrus or self.scope.fstring:
            return self.atom(depth)
        # Never a comprehension's own variable (v1, v2...): CPython rejects that.
        target = self.choose([n for n in self.scope.names if not n.startswith("v")])
        return f"({target} := {self.expr(depth, PREC['if'])})", PREC["atom"]

    def e_lambda(self, depth: int) -> tuple[str, int]:
        params = []
        for p in ("p", "q")[: self.integer(0, 2)]:
            if self.coin(0.3) or (params and "=" in params[-1]):
                params.append(f"{p}={self.expr(depth, PREC['if'])}")
            else:
                params.append(p)
        if self.coin(0.2):
            params.append("*rest")
        # A closure over the function's locals; in a strict function not over a
        # comprehension's variables (E14 when the comprehension awaits).
        outer = [n for n in self.scope.names if not (self.strict and n.startswith("v"))]
        names = (*outer, "p", "q", "rest")
        with self.inside(await_legal=False, names=names, no_walrus=False):
            body = self.expr(depth, PREC["if"])
        return f"lambda {', '.join(params)}: {body}".replace("lambda :", "lambda:"), PREC["lambda"]

    def args(self, depth: int) -> str:
        positional: list[str] = []
        keywords: list[str] = []
        seen: set[str] = set()
        for _ in range(self.integer(0, 3)):
            kind = self.choose(("pos", "pos", "star", "kw", "kwstar"))
            if kind == "pos":
                positional.append(self.expr(depth))
            elif kind == "star":
                positional.append("*" + self.expr(depth, PREC["|"]))
            elif kind == "kw":
                key = self.choose(("k", "key", "n"))
                if key not in seen:  # a repeated keyword is a SyntaxError
                    seen.add(key)
                    keywords.append(f"{key}={self.expr(depth)}")
            else:
                keywords.append("**" + self.expr(depth, PREC["|"]))
        # `f(**k, a)` and `f(k=1, a)` are invalid: positional ones first.
        return self.separator().join(positional + keywords)

    def separator(self) -> str:
        if not self.scope.fstring and self.coin(0.05):
            return ",  # note\n        "
        return ", "

    def e_call(self, depth: int) -> tuple[str, int]:
        func = self.choose(("name", "attr", "await"))
        if func == "await" and self.may_await(0.8):
            return f"await {self.choose(AWAITABLES)}({self.args(depth)})", PREC["await"]
        if func == "attr":
            callee = f"{self.primary(depth)}.{self.choose(('get', 'append', 'm'))}"
        else:
            callee = self.name()
        return f"{callee}({self.args(depth)})", PREC["primary"]

    def e_attribute(self, depth: int) -> tuple[str, int]:
        return f"{self.primary(depth)}.{self.choose(('attr', 'real', 'x'))}", PREC["primary"]

    def subscript_index(self, depth: int) -> str:
        kind = self.choose(("index", "slice", "tuple", "star"))
        if kind == "slice":
            parts = [self.expr(depth) if self.coin(0.6) else "" for _ in range(self.integer(2, 3))]
            return ":".join(parts)
        if kind == "tuple":
            return f"{self.expr(depth)}, {self.expr(depth)}:"
        if kind == "star":
            return f"*{self.expr(depth, PREC['|'])}"
        return self.expr(depth)

    def e_subscript(self, depth: int) -> tuple[str, int]:
        value = self.expr(depth, PREC["primary"])
        return f"{value}[{self.subscript_index(depth)}]", PREC["primary"]

    def elements(self, depth: int, star: str = "*") -> list[str]:
        out = []
        for _ in range(self.integer(0, 3)):
            if self.coin(0.2):
                out.append(star + self.expr(depth, PREC["|"]))
            else:
                out.append(self.expr(depth, PREC["if"] if star else 0))
        return out

    def e_display(self, depth: int) -> tuple[str, int]:
        kind = self.choose(("list", "tuple", "set", "dict"))
        sep = self.separator()
        if kind == "dict":
            items = []
            for _ in range(self.integer(0, 3)):
                if self.coin(0.2):
                    items.append("**" + self.expr(depth, PREC["|"]))
                else:
                    items.append(f"{self.expr(depth)}: {self.expr(depth)}")
            return "{" + sep.join(items) + "}", PREC["atom"]
        elts = self.elements(depth)
        if kind == "list":
            return "[" + sep.join(elts) + "]", PREC["atom"]
        if kind == "set" and elts:
            return "{" + sep.join(elts) + "}", PREC["atom"]
        if len(elts) == 1:
            return f"({elts[0]},)", PREC["atom"]
        return "(" + sep.join(elts) + ")", PREC["atom"]

    def e_comprehension(self, depth: int) -> tuple[str, int]:
        kind = self.choose(("list", "set", "dict", "gen"))
        target = self.fresh("v")
        with self.inside(no_walrus=True):
            first_iter = self.expr(depth, PREC["or"])
        generator = kind == "gen"
        clauses = [f"for {target} in {first_iter}"]
        names = (*self.scope.names, target)
        # Awaits anywhere in a list, set or dict comprehension are supported;
        # in a generator expression only in its outermost iterable (E02).
        inside = {"await_supported": not generator, "comprehension": True}
        with self.inside(names=names, no_walrus=True, **inside):
            for _ in range(self.integer(0, 2)):
                if self.coin(0.5):
                    clauses.append(f"if {self.expr(depth, PREC['or'])}")
                else:
                    t = self.fresh("v")
                    asynchronous = "async " if self.may_await(0.3) else ""
                    clauses.append(f"{asynchronous}for {t} in {self.expr(depth, PREC['or'])}")
                    names = (*names, t)
        with self.inside(names=names, **inside):
            if kind == "dict":
                element = f"{self.expr(depth)}: {self.expr(depth)}"
            else:
                element = self.expr(depth, PREC["if"])
        body = f"{element} {' '.join(clauses)}"
        if kind == "list":
            return f"[{body}]", PREC["atom"]
        if kind in ("set", "dict"):
            return f"{{{body}}}", PREC["atom"]
        if generator and self.coin(0.3):
            return f"sum({body})", PREC["primary"]
        return f"({body})", PREC["atom"]

    def e_yield(self, depth: int) -> tuple[str, int]:
        s = self.scope
        if not s.generator or s.fstring or not s.function or s.comprehension:
            return self.atom(depth)
        return f"(yield {self.expr(depth)})", PREC["atom"]

    def e_concat(self, depth: int) -> tuple[str, int]:
        if not self.scope.quotes:
            return self.atom(depth)
        q = self.scope.quotes[0]
        return f"{q}a{q} {self.fstring(q)} {q}z{q}", PREC["atom"]

    # -- targets -------------------------------------------------------------------

    def target(self, depth: int = 1, *, star: bool = True) -> str:
        kind = self.choose(("name", "name", "name", "tuple", "attr", "subscript", "list"))
        if kind == "name":
            return self.choose(self.scope.names)
        if kind == "attr":
            return f"{self.primary(depth + 2)}.attr"
        if kind == "subscript":
            return f"{self.expr(depth + 2, PREC['primary'])}[{self.subscript_index(depth + 2)}]"
        n = self.integer(1, 3)
        parts = [self.target(depth + 1, star=star) if depth < 3 else self.name() for _ in range(n)]
        if star and self.coin(0.3):
            i = self.integer(0, n - 1)
            if not parts[i].startswith("*"):
                parts[i] = "*" + parts[i]
        if kind == "list":
            return "[" + ", ".join(parts) + "]"
        if n == 1:
            return f"({parts[0]},)" if not parts[0].startswith("*") else f"[{parts[0]}]"
        return "(" + ", ".join(parts) + ")" if self.coin(0.5) else ", ".join(parts)

    # -- statements: lists of lines ------------------------------------------------

    def block(self, lo: int = 1, hi: int = 3) -> list[str]:
        lines: list[str] = []
        for n in range(self.integer(lo, hi)):
            if n >= lo and self.budget <= 0:
                break
            lines += self.statement()
        return lines or ["pass"]

    def suite(self, lo: int = 1, hi: int = 3) -> list[str]:
        """An indented block, or sometimes simple statements on the header's line."""
        if self.coin(0.04):
            smalls = [self.small() for _ in range(self.integer(1, 2))]
            return ["; ".join(smalls)]  # caller puts it after the colon
        return ["    " + line for line in self.block(lo, hi)]

    def header(self, head: str, lo: int = 1, hi: int = 3) -> list[str]:
        body = self.suite(lo, hi)
        if len(body) == 1 and not body[0].startswith("    "):
            return [f"{head} {body[0]}"]
        return [head, *body]

    def statement(self) -> list[str]:
        self.budget -= 1
        if self.budget > 0 and self.coin(0.45):
            kinds = _COMPOUND
            if self.scope.function and self.scope.await_legal:
                kinds = (*_COMPOUND, "async_for", "async_with")
            return list(getattr(self, "s_" + self.choose(kinds))())
        line = self.small()
        if self.coin(0.1):
            line = f"{line}; {self.small()}"
        if self.coin(0.05):
            line += f"  # comment{self.choose(('', *ODD_CHARACTERS))}"
        return [line]

    def small(self) -> str:
        kinds: list[str] = list(_SMALL)
        if self.scope.loop:
            kinds += ["break", "continue"]
        if self.scope.returns:
            kinds += ["return", "return"]
        if not self.strict:
            kinds += ["frame"]
        if self.scope.method:
            kinds += ["method"]
        return str(getattr(self, "m_" + self.choose(kinds))())

    def m_expr(self) -> str:
        if self.may_await(0.6):
            return f"await {self.choose(AWAITABLES)}({self.args(1)})"
        return self.expr(0)

    def m_assign(self) -> str:
        targets = [self.target() for _ in range(self.integer(1, 2))]
        value = self.expr(0)
        if value.startswith("*"):
            value = f"({value},)"
        return " = ".join([*targets, value])

    def m_augassign(self) -> str:
        kind = self.choose(("name", "attr", "subscript"))
        if kind == "name":
            target = self.choose(self.scope.names)
        elif kind == "attr":
            target = f"{self.primary(2)}.attr"
        else:
            target = f"{self.expr(2, PREC['primary'])}[{self.subscript_index(2)}]"
        return f"{target} {self.choose(BINOPS)}= {self.expr(0)}"

    def m_annassign(self) -> str:
        # Not `(x): int`, which libcst cannot parse (then the compiler reports E00).
        kind = self.choose(("name", "attr", "subscript"))
        if kind == "name":
            target = self.choose(self.scope.names)
        elif kind == "attr":
            target = f"{self.primary(2)}.attr"
        else:
            target = f"{self.expr(2, PREC['primary'])}[{self.expr(2)}]"
        annotation = self.choose(("int", "list[int]", "'str'")) if self.coin(0.8) else self.expr(2)
        if self.coin(0.3):
            return f"{target}: {annotation}"
        return f"{target}: {annotation} = {self.expr(0)}"

    def m_return(self) -> str:
        if self.scope.generator or self.coin(0.2):
            return "return"
        if self.coin(0.1):
            return f"return {self.expr(1, PREC['if'])}, *{self.expr(1, PREC['|'])}"
        return f"return {self.expr(0)}"

    def m_delete(self) -> str:
        targets = [self.target(star=False) for _ in range(self.integer(1, 2))]
        return "del " + ", ".join(targets)

    def m_pass(self) -> str:
        return "pass"

    def m_break(self) -> str:
        return "break"

    def m_continue(self) -> str:
        return "continue"

    def m_raise(self) -> str:
        kind = self.choose(("new", "bare", "from", "from_none"))
        if kind == "bare":
            return "raise"
        exc = f"{self.choose(('ValueError', 'E', 'Exception'))}({self.args(1)})"
        if self.coin(0.3):
            exc = self.expr(1)
        if kind == "from":
            return f"raise {exc} from {self.expr(1)}"
        if kind == "from_none":
            return f"raise {exc} from None"
        return f"raise {exc}"

    def m_assert(self) -> str:
        if self.coin(0.5):
            return f"assert {self.expr(0)}, {self.expr(0)}"
        return f"assert {self.expr(0)}"

    def m_import(self) -> str:
        kind = self.choose(("import", "as", "from", "from_as", "dotted", "relative"))
        name = self.choose(self.scope.names)
        if kind == "import":
            return "import json"
        if kind == "as":
            return f"import json as {name}"
        if kind == "from":
            return "from os import path, sep"
        if kind == "from_as":
            return f"from os import path as {name}"
        if kind == "dotted":
            return "import os.path"
        return "from . import sibling"

    def m_global(self) -> str:
        # A global declared mid-function conflicts with earlier uses: a fresh
        # name, which nothing else uses.
        name = self.fresh("GLOBAL_")
        return f"global {name}; {name} = {self.expr(1)}"

    def m_nonlocal(self) -> str:
        return f"nonlocal {self.choose(LOCALS[:2])}"

    def m_method(self) -> str:
        """What only a method compiles: super(), __class__, private names."""
        return self.choose(
            ("x = super().__repr__()", "y = __class__.__name__", f"self.__priv = {self.expr(1)}",
             "__priv = self.__hidden", f"super().__init__({self.args(1)})")
        )  # fmt: skip

    def m_frame(self) -> str:
        return self.choose(
            ("locals()", "vars()", "sys._getframe()", "eval('1')", "super()", "__class__", "dir()")
        )

    # compound statements

    def s_if(self) -> list[str]:
        lines = self.header(f"if {self.expr(0)}:")
        for _ in range(self.integer(0, 2)):
            lines += self.header(f"elif {self.expr(0)}:")
        if self.coin(0.5):
            lines += self.header("else:")
        return lines

    def loop_body(self, head: str) -> list[str]:
        with self.inside(loop=True):
            lines = self.header(head)
        if self.coin(0.3):
            lines += self.header("else:")
        return lines

    def s_while(self) -> list[str]:
        return self.loop_body(f"while {self.expr(0)}:")

    def for_head(self, keyword: str = "for") -> str:
        # An await in an `async for` target is a known bug (test_fuzz_findings.py).
        with self.unsupported() if keyword == "async for" else self.inside():
            target = self.target()
        iterable = self.expr(0) if self.coin(0.7) else f"range({self.expr(1)})"
        if self.coin(0.1):
            iterable = f"{self.expr(1, PREC['if'])}, *{self.expr(1, PREC['|'])}"
        return f"{keyword} {target} in {iterable}:"

    def s_for(self) -> list[str]:
        return self.loop_body(self.for_head())

    def s_async_for(self) -> list[str]:
        return self.loop_body(self.for_head("async for"))

    def with_items(self) -> str:
        items = []
        for _ in range(self.integer(1, 3)):
            item = self.expr(0, PREC["if"])
            if self.coin(0.5):
                with self.unsupported():  # E12
                    item += f" as {self.target(2, star=False)}"
            items.append(item)
        if self.coin(0.2):
            return "(" + ", ".join(items) + ")"
        return ", ".join(items)

    def s_with(self) -> list[str]:
        return self.header(f"with {self.with_items()}:")

    def s_async_with(self) -> list[str]:
        return self.header(f"async with {self.with_items()}:")

    def handler(self, keyword: str, star: bool) -> list[str]:
        exc = self.choose(EXCEPTIONS) if self.coin(0.6) else self.expr(1, PREC["if"])
        head = f"{keyword} {exc}"
        if self.coin(0.5):
            name = self.choose(("e", "e2", *self.scope.names))
            if self.coin(0.1):
                name = "GLOBAL_ONLY"  # a global when the function declares it so
            head += f" as {name}"
        changes: dict[str, Any] = {"names": (*self.scope.names, "e", "e2")}
        if star:
            changes.update(loop=False, returns=False)
        with self.inside(**changes):
            return self.header(head + ":")

    def s_try(self, star: bool = False) -> list[str]:
        lines = self.header("try:")
        keyword = "except*" if star else "except"
        handlers = self.integer(0 if not star else 1, 2)
        for i in range(handlers):
            if not star and i == handlers - 1 and self.coin(0.2):
                lines += self.header("except:")
            else:
                lines += self.handler(keyword, star)
        if handlers and self.coin(0.3):
            lines += self.header("else:")
        if not handlers or self.coin(0.4):
            lines += self.header("finally:")
        return lines

    def s_try_star(self) -> list[str]:
        return self.s_try(star=True)

    # match

    def pattern(self, depth: int, captures: list[str], top: bool = False) -> str:
        kinds = ["value", "value", "singleton", "sequence", "mapping", "class", "or", "as"]
        if not top:
            kinds += ["capture", "wildcard"]
        kind = self.choose(kinds) if depth < 3 else self.choose(("value", "singleton"))
        if kind == "value":
            return self.choose(("1", "-1", "'s'", "b'b'", "1.5", "1 + 2j", "G.x", "E.A"))
        if kind == "singleton":
            return self.choose(("None", "True", "False"))
        if kind == "capture":
            name = self.fresh("p")
            captures.append(name)
            return name
        if kind == "wildcard":
            return "_"
        if kind == "sequence":
            parts = [self.pattern(depth + 1, captures) for _ in range(self.integer(0, 3))]
            if self.coin(0.3):
                star = self.fresh("p") if self.coin(0.5) else "_"
                if star != "_":
                    captures.append(star)
                parts.insert(self.integer(0, len(parts)), "*" + star)
            if not parts or self.coin(0.5):
                return "[" + ", ".join(parts) + "]"
            return f"({', '.join(parts)},)"
        if kind == "mapping":
            keys = ("'k'", "1", "None", "G.x")
            parts = [
                f"{k}: {self.pattern(depth + 1, captures)}"
                for k in keys[: self.integer(0, len(keys))]
            ]
            if self.coin(0.3):
                rest = self.fresh("p")
                captures.append(rest)
                parts.append("**" + rest)
            return "{" + ", ".join(parts) + "}"
        if kind == "class":
            cls = self.choose(("Point", "int", "G.Point", "str"))
            parts = [self.pattern(depth + 1, captures) for _ in range(self.integer(0, 2))]
            parts += [
                f"{k}={self.pattern(depth + 1, captures)}" for k in ("x", "y")[: self.integer(0, 2)]
            ]
            return f"{cls}({', '.join(parts)})"
        if kind == "or":
            # Alternatives must bind the same names: these bind none.
            alternatives = [self.pattern(3, []) for _ in range(self.integer(2, 3))]
            return " | ".join(alternatives)
        inner = self.pattern(depth + 1, captures, top=top)
        name = self.fresh("p")
        captures.append(name)
        if inner.startswith("*") or "|" in inner or " as " in inner:
            inner = f"({inner})"
        return f"{inner} as {name}"

    def s_match(self) -> list[str]:
        lines = [f"match {self.expr(0)}:"]
        for _ in range(self.integer(1, 3)):
            captures: list[str] = []
            pattern = self.pattern(0, captures, top=True)
            guard = f" if {self.expr(1)}" if self.coin(0.3) else ""
            with self.inside(names=(*self.scope.names, *captures)):
                lines += ["    " + line for line in self.header(f"case {pattern}{guard}:")]
        if self.coin(0.3):
            lines += ["    " + line for line in self.header("case _:")]
        return lines

    # nested definitions

    def s_def(self) -> list[str]:
        name = self.fresh("fn")
        asynchronous = self.coin(0.3)
        decorators = [f"@{self.expr(1, PREC['primary'])}" for _ in range(self.integer(0, 1))]
        params = []
        for p in ("p", "q")[: self.integer(0, 2)]:
            param = p
            if self.coin(0.2):
                with self.unsupported():  # E12
                    param += f": {self.expr(2)}"
            if self.coin(0.3):
                param += f" = {self.expr(2)}"
            elif params and "=" in params[-1]:
                param += " = None"
            params.append(param)
        if self.coin(0.2):
            params.append("*args")
        with self.unsupported():  # E12
            returns = f" -> {self.expr(2)}" if self.coin(0.1) else ""
        names = (*self.scope.names, "p", "q", "args", "z")  # closures are supported
        with self.inside(
            await_legal=asynchronous, await_supported=True, loop=False, returns=True,
            generator=False, function=True, nested=True, names=names, no_walrus=False,
        ):  # fmt: skip
            body = self.block(1, 3)
        if self.coin(0.2):  # first, so that no use comes before it
            body.insert(0, self.m_nonlocal())
        head = f"{'async ' if asynchronous else ''}def {name}({', '.join(params)}){returns}:"
        return [*decorators, head, *("    " + line for line in body)]

    def s_class(self) -> list[str]:
        name = self.fresh("C")
        decorators = [f"@{self.expr(1, PREC['primary'])}" for _ in range(self.integer(0, 1))]
        bases = [self.expr(1) for _ in range(self.integer(0, 2))]
        if self.coin(0.2):
            bases.append(f"metaclass={self.expr(1)}")
        # Its body may read the function's locals; the class itself is never
        # used after its definition (held across an await it is E05).
        names = (*self.scope.names, "cx", "cy")
        with self.inside(
            await_legal=False, loop=False, returns=False, generator=False, function=False,
            names=names, no_walrus=True,
        ):  # fmt: skip
            body = self.block(1, 2)
        head = f"class {name}({', '.join(bases)}):" if bases else f"class {name}:"
        return [*decorators, head, *("    " + line for line in body)]


_EXPR_KINDS = (
    "binop", "binop", "unary", "boolop", "compare", "ifexp", "walrus", "lambda", "call",
    "call", "attribute", "subscript", "display", "comprehension", "yield", "concat",
)  # fmt: skip
_SMALL = (
    "expr", "expr", "assign", "assign", "augassign", "annassign", "delete", "pass", "raise",
    "assert", "import", "global",
)  # fmt: skip
_COMPOUND = ("if", "while", "for", "with", "try", "try_star", "match", "def", "class")


def _params(g: _Gen) -> str:
    kind = g.choose(("plain", "defaults", "star", "posonly", "kwonly", "annotated"))
    if kind == "defaults":
        return "a, b=1"
    if kind == "star":
        return "a, b, *args, **kwargs"
    if kind == "posonly":
        return "a, /, b"
    if kind == "kwonly":
        return "a, *, b=2"
    if kind == "annotated":
        return "a: int, b: 'list[int]' = []"
    return "a, b"


def _function(g: _Gen, decorator: str, name: str, kind: str = "function") -> list[str]:
    """A decorated `async def`: a module-level function, or a method
    (`kind`: method, staticmethod, classmethod) of a module-level class."""
    generator = not g.strict and g.coin(0.05)
    first = {"method": "self, ", "classmethod": "cls, "}.get(kind, "")
    names = LOCALS + ({"method": ("self", "__priv"), "classmethod": ("cls",)}.get(kind, ()))
    g.scope = _Scope(generator=generator, names=names, method=kind != "function")
    head = [decorator, f"async def {name}({first}{_params(g)}):"]
    if kind in ("staticmethod", "classmethod"):
        head.insert(g.integer(0, 1), f"@{kind}")  # above or below the decorator
    if g.coin(0.1):
        head.append('    """Docstring."""')
    body = g.block(1, 4)
    if g.coin(0.15):
        body.insert(0, "global GLOBAL_ONLY")  # then `except ... as GLOBAL_ONLY` binds the global
    if generator and not any("yield" in line for line in body):
        body.append("yield 1")
    return head + ["    " + line for line in body]


def module_source(data: bytes) -> str:
    """The module the generator makes of `data` (any bytes make one)."""
    c = _Choices(data)
    header = c.choose(HEADERS)
    out = [header, "import sys", "", "G = H = None", "GLOBAL_ONLY = 0", ""]
    counter = 0
    for i in range(c.integer(1, 3)):
        g = _Gen(choices=c, strict=c.coin(0.7), budget=c.integer(2, 12), counter=counter)
        decorator = c.choose(DECORATORS[header])
        page_break = ["\x0c"] if c.coin(0.1) else []  # a form feed line, as in the stdlib
        kind = c.choose(
            ("function", "function", "function", "method", "staticmethod", "classmethod")
        )
        if kind == "function":
            out += ["", *page_break, *_function(g, decorator, f"f{i}"), ""]
        else:
            base = c.choose(("", "(G)", "(Exception)"))
            method = _function(g, decorator, f"f{i}", kind)
            out += ["", *page_break, f"class K{i}{base}:", *("    " + line for line in method), ""]
        counter = g.counter
    if c.coin(0.1):
        out += ["", "def plain(a, b):", "    return a + b", ""]
    return "\n".join(out) + "\n"


def modules(max_size: int = 3000) -> st.SearchStrategy[str]:
    """The sources of random modules with one to three decorated functions."""
    return st.binary(min_size=max_size // 4, max_size=max_size).map(module_source)
