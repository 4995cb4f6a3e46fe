"""The compiler's error codes, in one place.

Every pass reports through these, and `docs/semantics.md` lists the same
codes (a test compares the table with this registry):

    parsed.error(node, codes.ASYNC_GENERATOR, "`yield` in ...", fix="...")
        -> shop.py:12:9: error[E01]: `yield` in ...

A code is never reused: once the construct behind it is supported, it stays
here as `retired` (the docs table says "retired: ..."), so an old message
still means one thing.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CODES", "Code"]


@dataclass(frozen=True)
class Code:
    """One kind of compile error: its code, what it is about, the usual fix."""

    code: str
    construct: str
    #: What the table in docs/semantics.md says is refused.
    summary: str
    fix: str
    retired: bool = False

    def __str__(self) -> str:
        return self.code


SYNTAX = Code("E00", "syntax", "a syntax error (CPython's message and position)", "fix the syntax")
ASYNC_GENERATOR = Code(
    "E01", "async generator", "`yield` in the function (an async generator)", "return a list"
)
GENERATOR_AWAIT = Code(
    "E02",
    "generator expression",
    "`await` inside a generator expression",
    "a list comprehension or a loop",
)
FRAME_ACCESS = Code(
    "E03",
    "frame access",
    "frame access: `locals()`, `vars()`, `dir()` without arguments, `eval`/`exec` without a "
    "namespace (or with `None`), `sys._getframe()`, `inspect.currentframe()`; zero-argument "
    "`super()` or `__class__` outside a method, or in a function, lambda or class nested in one",
    "pass the values explicitly",
)
PLACEMENT = Code(
    "E04",
    "decorated function",
    "`@resumable.function` on a nested function, a method of a class defined inside a function, "
    "or a function that is not `async def`",
    "move it (or its class) to module level",
)
FUNCTION_VALUE = Code(
    "E05",
    "class value",
    "a local bound to a class defined in the function and used after an await (lambdas and "
    "nested functions may be: they are stored as closures)",
    "define the class at module level, or again after the await",
)
CONTEXT_MANAGER = Code(
    "E06",
    "with",
    "`async with`, `async for`, or a `with` block that awaits",
    "a helper coroutine awaited as one step",
    retired=True,
)
EXCEPT_STAR = Code(
    "E07",
    "try/except*",
    "`try`/`except*` containing an await",
    "a helper coroutine",
    retired=True,
)
LAZY_LOOP = Code(
    "E08",
    "for",
    "a `for` loop over a generator expression whose body awaits",
    "a list comprehension",
)
COMPREHENSION = Code(
    "E09",
    "comprehension",
    "`async for` inside a list/set/dict comprehension (an async comprehension)",
    "a helper coroutine awaited as one step, then a plain comprehension",
    retired=True,
)
MATCH = Code(
    "E10",
    "match",
    "`match` containing an await",
    "await before the `match`, or `if`/`elif`",
    retired=True,
)
CLOSURE = Code(
    "E11",
    "closure",
    "a lambda, nested function or class that reads or writes the function's locals",
    "pass the values as arguments",
    retired=True,
)
AWAIT_POSITION = Code(
    "E12",
    "await position",
    "`await` in a position not supported yet: a nested function's annotations, a `with ... as` "
    "target, a comprehension's `for` target",
    "await into a variable first",
)
DUNDER_LOCAL = Code("E13", "name", "a local variable with a dunder name", "rename it")
COMPREHENSION_CLOSURE = Code(
    "E14",
    "lambda",
    "a lambda inside a comprehension that awaits, using the comprehension's variables",
    "bind the value as a default (`lambda x=x: ...`), or move the awaits out of the comprehension",
)

#: Every code, in order.
CODES: tuple[Code, ...] = tuple(
    sorted((v for v in dict(globals()).values() if isinstance(v, Code)), key=lambda c: c.code)
)
