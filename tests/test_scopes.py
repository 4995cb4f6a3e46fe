"""scopes.py pairs every lambda, nested function, class and comprehension of
a compiled function with its symbol table, in the order CPython's symtable
creates the tables. The running CPython is the oracle: random modules dense
with scopes in every place one can stand (headers, displays, calls,
conditional expressions, f-strings, every statement), each lambda with
parameters of its own, are analyzed; a scope walked out of symtable's order
meets a table of another kind, name, parameters or line, an InternalError.
Reduced findings: tests/test_fuzz_findings.py
test_scopes_matched_with_their_symbol_tables.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable

import pytest

from resumable_compiler.analyze import _function_table
from resumable_compiler.parse import parse
from resumable_compiler.scopes import captured_names

EXAMPLES = 40


class _Program:
    """One random function body (seeded: the same seed, the same text)."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.names = 0
        self.awaits = True  # False inside nested definitions

    def param(self) -> str:
        self.names += 1
        return f"p{self.names}"

    def expr(self, d: int = 0, walrus: bool = True, awaits: bool = True, fs: bool = False) -> str:
        r = self.r
        if d > 2 or r.random() < 0.25:
            return r.choice(["a", "G", "(1)", "'s'", "b"])

        def e(walrus: bool = walrus, awaits: bool = awaits, fs: bool = fs) -> str:
            return self.expr(d + 1, walrus, awaits and self.awaits, fs)

        def c() -> str:  # no walrus in a comprehension's iterables
            return e(walrus=False)

        choices: list[Callable[[], str]] = [
            lambda: f"(lambda {self.param()}, *, {self.param()}={e()}: {e(awaits=False)})",
            lambda: f"(lambda {self.param()}={e()}: {e(awaits=False)})",
            lambda: f"[{c()} for v{d} in {c()} if {c()} for w{d} in {c()}]",
            lambda: f"{{{c()} for v{d} in {c()}}}",
            lambda: f"{{{c()}: {c()} for v{d} in {c()} if {c()}}}",
            lambda: f"list({c()} for v{d} in {c()})",
            lambda: f"({c()} for v{d} in {c()} for u{d} in {c()})",
            lambda: f"({e()} if {e()} else {e()})",
            lambda: f"{{{e()}: {e()}, **{e()}, {e()}: {e()}}}",
            lambda: f"{e()}({e()}, k={e()}, *{e()}, **{e()})",
            lambda: f"{e()}(x={e()}, *{e()})",
            lambda: f"{e()}[{e()}:{e()}, {e()}]",
            lambda: f"({e()} < {e()} < {e()})",
            lambda: f"({e()} and {e()} or {e()})",
            lambda: f"[*{e()}, {e()}]",
            lambda: f"{{{e()}, *{e()}}}",
            lambda: f"{e()}.attr",
        ]
        if not fs:  # no f-string in an f-string (3.11)
            choices.append(lambda: f'f"{{({e(fs=True)})!r:{{({e(fs=True)})}}}}{{({e(fs=True)})}}"')
        if walrus:
            choices.append(lambda: f"(z{d} := {e()})")
        if awaits and self.awaits:
            choices.append(lambda: f"(await {e()})")
        return r.choice(choices)()

    def block(self, indent: int, d: int) -> str:
        return "".join(self.statement(indent, d) for _ in range(self.r.randrange(1, 4)))

    def nested(self, indent: int, d: int) -> str:
        awaits, self.awaits = self.awaits, False
        try:
            return self.block(indent, d)
        finally:
            self.awaits = awaits

    def statement(self, indent: int, d: int = 0) -> str:
        i, e = " " * indent, self.expr
        n = indent + 4
        choices: list[Callable[[], str]] = [
            lambda: f"{i}x = {e()}\n",
            lambda: f"{i}{e()}[{e()}] = y = {e()}\n",
            lambda: f"{i}y: {e()} = {e()}\n",
            lambda: f"{i}y[{e()}] += {e()}\n",
            lambda: f"{i}assert {e()}, {e()}\n",
            lambda: f"{i}raise {e()} from {e()}\n",
            lambda: f"{i}del y[{e()}]\n",
        ]
        if d < 2:
            p, q, k = self.param(), self.param(), self.param()
            choices += [
                lambda: (
                    f"{i}try:\n{self.block(n, d + 1)}{i}except {e()} as w:\n"
                    f"{self.block(n, d + 1)}{i}else:\n{self.block(n, d + 1)}"
                    f"{i}finally:\n{self.block(n, d + 1)}"
                ),
                lambda: (
                    f"{i}try:\n{self.block(n, d + 1)}{i}except* {e()}:\n"
                    f"{self.block(n, d + 1)}{i}else:\n{self.block(n, d + 1)}"
                ),
                lambda: (
                    f"{i}for t in {e()}:\n{self.block(n, d + 1)}{i}else:\n{self.block(n, d + 1)}"
                ),
                lambda: f"{i}while {e()}:\n{self.block(n, d + 1)}",
                lambda: f"{i}with {e()} as w, {e()}:\n{self.block(n, d + 1)}",
                lambda: (
                    f"{i}if {e()}:\n{self.block(n, d + 1)}{i}elif {e()}:\n"
                    f"{self.block(n, d + 1)}{i}else:\n{self.block(n, d + 1)}"
                ),
                lambda: (
                    f"{i}match {e()}:\n{i}    case [1, *r] if {e()}:\n"
                    f"{self.block(n + 4, d + 1)}{i}    case _:\n{self.block(n + 4, d + 1)}"
                ),
                lambda: (
                    f"{i}@{e()}\n{i}@{e()}\n{i}def h({p}: {e()} = {e()}, /, *{q}: {e()}, "
                    f"{k}: {e()} = {e()}, **kw: {e()}) -> {e()}:\n{self.nested(n, d + 1)}"
                ),
                lambda: (
                    f"{i}@{e()}\n{i}class C({e()}, *{e()}, k={e()}, **{e()}):\n"
                    f"{self.nested(n, d + 1)}"
                ),
            ]
        return self.r.choice(choices)()


def _module(seed: int, future: bool) -> str:
    head = "from __future__ import annotations\n" if future else ""
    body = _Program(seed).block(4, 0)
    return f"{head}import resumable\nG = None\n\n\n@resumable.function\nasync def f(a, b):\n{body}"


@pytest.mark.parametrize("future", [False, True], ids=["annotations-evaluated", "pep-563"])
def test_every_scope_is_paired_with_its_symbol_table(future: bool) -> None:
    analyzed = 0
    for seed in range(EXAMPLES):
        source = _module(seed, future)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:  # under PEP 563 a walrus or await in an annotation is an error
                compile(source, "m.py", "exec", dont_inherit=True)
            except SyntaxError:
                continue
            parsed = parse("m.py", source)
        assert not parsed.errors, source
        fn = parsed.functions[0]
        table = _function_table(parsed.table, fn)
        local_names = frozenset(s.get_name() for s in table.get_symbols() if s.is_local())
        captured_names(parsed, fn.node, table, local_names)  # InternalError: a pair disagrees
        analyzed += 1
    assert analyzed > EXAMPLES // 3
