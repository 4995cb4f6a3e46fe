"""Statements without awaits inside a compiled function: they are emitted
unchanged (names rewritten) and must keep CPython's semantics -- imports,
comprehensions and generator expressions, walrus in a comprehension, match,
with, lambdas, global, del, f-strings, chained assignment, a nested helper
function, plain loops and try statements.

Every function also awaits, so it is compiled and checkpointed.
"""

import contextlib
import sys
from dataclasses import dataclass

import resumable
from resumable.testing import step

ARGS = {
    "match_literals_and_sequences": [
        ((0,), {}),
        (("go",), {}),
        (([1, 2, 3],), {}),
        (((4,),), {}),
        (({"k": 1, "extra": 2},), {}),
        ((3.5,), {}),
        ((None,), {}),
    ],
    "match_class_patterns": [((0, 5), {}), ((2, 3), {}), ((-1, -1), {})],
    "match_guards_and_or_patterns": [((1,), {}), ((2,), {}), ((7,), {}), ((-3,), {})],
    "with_suppress": [((True,), {}), ((False,), {})],
    "with_return_inside": [((True,), {}), ((False,), {})],
}


def note(log, x):
    log.append(x)
    return x


COUNTER = 0


@dataclass
class Point:
    x: int
    y: int


class Recorder:
    """A context manager that records enter/exit in a list."""

    def __init__(self, log, name, swallow=False):
        self.log = log
        self.name = name
        self.swallow = swallow

    def __enter__(self):
        self.log.append(("enter", self.name))
        return self.name.upper()

    def __exit__(self, kind, value, tb):
        self.log.append(("exit", self.name, kind.__name__ if kind else None))
        return self.swallow


# -- imports ---------------------------------------------------------------------------


@resumable.function
async def import_used_before_await():
    import json
    from os import path as p

    text = json.dumps({"a": [1, 2]}, sort_keys=True)
    joined = p.join("a", "b")
    v = await step("a", len(text))
    return text, joined, v


@resumable.function
async def import_used_after_await():
    import json

    v = await step("a")
    return json.dumps([v])


@resumable.function
async def import_after_await():
    v = await step("a")
    import math

    return math.isqrt(v * v)


# -- comprehensions and generator expressions ----------------------------------------------


@resumable.function
async def comprehensions_read_locals():
    items = [1, 2, 3]
    k = await step("k")
    a = [x * k for x in items]
    b = {x: x + k for x in items if x != 2}
    c = {x % k for x in items}
    d = sum(x * k for x in items)
    e = [(x, y) for x in items for y in range(x) if y != k]
    f = list(x for x in items)
    g = [[x * y for y in items] for x in items]
    return a, b, sorted(c), d, e, f, g, await step("after", d)


@resumable.function
async def comprehension_variable_shadows_local():
    x = "outer x"
    y = await step("y")
    squares = [x * x for x in range(4)]
    pairs = {x: y for x, y in [(1, 2)]}
    return x, y, squares, pairs, await step("after")


@resumable.function
async def walrus_in_comprehension_binds_function_local():
    items = [1, 2, 3, 4]
    await step("a")
    doubled = [y for v in items if (y := v * 2) > 2]
    last = y
    total = 0
    any(total := total + v for v in items)
    await step("b", last)
    return doubled, last, y, total


@resumable.function
async def generator_expression_consumed_later():
    items = [1, 2, 3]
    gen = (x * 10 for x in items)
    first = next(gen)
    rest = list(gen)
    return first, rest, await step("a")


# -- match -----------------------------------------------------------------------------------


@resumable.function
async def match_literals_and_sequences(subject):
    tag = await step("tag")
    match subject:
        case 0:
            kind = "zero"
        case "go" | "run":
            kind = "verb"
        case (x,):
            kind = ("single", x)
        case [first, *rest]:
            kind = ("list", first, rest)
        case {"k": value, **others}:
            kind = ("mapping", value, others)
        case float() as f:
            kind = ("float", f)
        case _:
            kind = "other"
    return kind, await step("after", tag)


@resumable.function
async def match_class_patterns(x, y):
    await step("a")
    match Point(x, y):
        case Point(x=0, y=yy):
            r = ("on y axis", yy)
        case Point(x=xx, y=yy) if xx == yy + 1:
            r = ("diagonal-ish", xx, yy)
        case Point(x=xx) if xx < 0:
            r = ("negative", xx)
        case _:
            r = "elsewhere"
    return r, await step("b")


@resumable.function
async def match_guards_and_or_patterns(n):
    log = []
    v = await step("v", n)
    match n:
        case 1 | 2 if note(log, "guard1") and n == 2:
            r = "two"
        case 1 | 2:
            r = "one"
        case int(m) if m > 0:
            r = ("positive", m)
        case int():
            r = "non-positive"
    return r, log, v, await step("after", len(log))


@resumable.function
async def match_capture_then_await():
    """Names captured by a pattern are function locals that live across awaits."""
    data = {"user": "ann", "items": [1, 2]}
    match data:
        case {"user": str(name), "items": [*items]}:
            pass
    v = await step("v", name)
    return name, items, v


@resumable.function
async def match_failed_capture_keeps_previous_value():
    a = "before"
    await step("a")
    match [1, 2, 3]:
        case [a, 99, _]:
            r = "matched"
        case _:
            r = "default"
    return r, a


# -- with ---------------------------------------------------------------------------------


@resumable.function
async def with_suppress(raise_it):
    d = {}
    await step("a")
    with contextlib.suppress(KeyError):
        if raise_it:
            d["missing"]
        d["set"] = 1
    return d, await step("b")


@resumable.function
async def with_context_manager_class():
    log = []
    await step("a")
    with Recorder(log, "one") as name, Recorder(log, "two") as name2:
        log.append(("body", name, name2))
    v = await step("b", len(log))
    with Recorder(log, "swallow", swallow=True):
        raise ValueError("swallowed")
    try:
        with Recorder(log, "propagate"):
            raise KeyError("out")
    except KeyError:
        log.append("caught")
    return log, v


@resumable.function
async def with_return_inside(early):
    log = []
    await step("a")
    with Recorder(log, "r"):
        if early:
            return "early", log
    await step("b")
    return "late", log


@resumable.function
async def with_break_and_continue_in_awaiting_loop():
    log = []
    for i in range(4):
        await step("i", i)
        with Recorder(log, str(i)):
            if i == 1:
                continue
            if i == 2:
                break
        log.append(("after with", i))
    return log


@resumable.function
async def with_first_item_awaits():
    """An await in the first `with` item is allowed (outside the block)."""
    log = []
    with Recorder(log, str(await step("name"))) as n:
        log.append(n)
    return log


# -- lambdas ---------------------------------------------------------------------------------


@resumable.function
async def lambdas_not_using_locals():
    items = [("b", 2), ("a", 3), ("c", 1)]
    await step("a")
    by_value = sorted(items, key=lambda p: p[1])
    by_name = sorted(items, key=lambda p: p[0], reverse=True)
    k = 3
    scaled = list(map(lambda x, k=k: x * k, [1, 2]))
    return by_value, by_name, scaled, await step("b")


# -- global -------------------------------------------------------------------------------------


@resumable.function
async def global_counter():
    global COUNTER
    COUNTER = 0
    COUNTER += 1
    v = await step("a", COUNTER)
    COUNTER += v
    await step("b", COUNTER)
    COUNTER *= 2
    return COUNTER


@resumable.function
async def global_read_without_declaration():
    await step("a")
    return COUNTER >= 0, repr(Point(1, 2)), len(sys.argv) >= 0


# -- del ------------------------------------------------------------------------------------------


@resumable.function
async def del_statements():
    x = 1
    lst = [1, 2, 3, 4]
    d = {"a": 1, "b": 2}
    await step("a")
    del x
    del lst[0], d["a"]
    del lst[1:]
    out = [lst, d]
    try:
        x  # noqa: B018, F821
    except UnboundLocalError:
        out.append(str(sys.exception()))
    try:
        del x  # noqa: F821
    except UnboundLocalError:
        out.append("del unbound")
    await step("b")
    return out


@resumable.function
async def del_then_rebind_across_await():
    x = [1]
    del x
    await step("a")
    x = [2]
    await step("b")
    return x


# -- f-strings --------------------------------------------------------------------------------------


@resumable.function
async def fstring_debug_and_formats():
    x = 42
    name = "ann"
    await step("a")
    return f"{x=} {x = } {name=!s} {x=:>5} {x!r:<4}| {x:#x} {3.14159:.2f} {'nested'!r:>{x // 4}}"


# -- assignment forms ------------------------------------------------------------------------------


@resumable.function
async def chained_assignment_shares_object():
    a = b = []
    c = d = e = 0
    await step("a")
    a.append(1)
    c += 1
    return a, b, a is b, c, d, e


@resumable.function
async def unpacking_and_swap():
    a, b = 1, 2
    a, b = b, a
    first, *rest = "xyz"
    await step("a")
    (p, q), r = (a, b), rest
    return a, b, first, rest, p, q, r


@resumable.function
async def annotated_names():
    x: int = 1
    y: list[int]
    await step("a")
    y = [x]
    return x, y


# -- nested function helper --------------------------------------------------------------------------


@resumable.function
async def nested_helper_before_first_await():
    def helper(v):
        return v * 2 + 1

    prepared = [helper(i) for i in range(3)]
    del helper
    v = await step("a", len(prepared))
    return prepared, v


@resumable.function
async def nested_helper_not_live_at_await():
    def double(v):
        return v * 2

    a = double(3)
    v = await step("a", a)
    return a, v


# -- plain loops and try statements -------------------------------------------------------------------


@resumable.function
async def plain_loops_with_break_continue_else():
    out = []
    await step("a")
    for i in range(6):
        if i == 1:
            continue
        if i == 4:
            break
        out.append(i)
    else:
        out.append("never")
    n = 0
    while n < 3:
        n += 1
    else:
        out.append(("while else", n))
    v = await step("b", len(out))
    return out, v


@resumable.function
async def plain_loop_returns_from_function():
    items = [1, 5, 9]
    await step("a")
    for x in items:
        if x > 3:
            return x
    return None


@resumable.function
async def plain_loop_inside_awaiting_loop():
    out = []
    for i in range(3):
        for j in range(3):
            if j > i:
                break
            out.append((i, j))
        else:
            out.append(("inner else", i))
        await step("i", i)
    return out


@resumable.function
async def plain_try_statements():
    out = []
    await step("a")
    try:
        out.append(1 // 0)
    except ZeroDivisionError:
        out.append(("handled", repr(sys.exception())))
    else:
        out.append("never")
    finally:
        out.append("finally")
    try:
        pass
    finally:
        out.append("finally 2")
    out.append(sys.exception())
    await step("b")
    return out


@resumable.function
async def plain_try_return_in_finally():
    await step("a")
    for i in range(3):
        try:
            raise ValueError(i)
        finally:
            break  # noqa: B012
    try:
        return "try"
    finally:
        return "finally", i  # noqa: B012


@resumable.function
async def assert_and_raise_without_await():
    await step("a")
    assert True, "never"
    try:
        assert 1 > 2, "message"
    except AssertionError:
        msg = sys.exception().args
    try:
        raise KeyError("k") from None
    except KeyError:
        suppressed = sys.exception().__suppress_context__
    return msg, suppressed


@resumable.function
async def nested_class_before_first_await():
    class Tmp:
        kind = "tmp"

        def twice(self, v):
            return v * 2

    made = (Tmp.kind, Tmp().twice(4))
    del Tmp
    return made, await step("a")


@resumable.function
async def nested_definitions_qualname():
    """__qualname__ of a nested def, class and lambda names the function
    (it shows in reprs and in CPython's TypeError messages)."""

    def helper():
        pass

    class Tmp:
        pass

    names = (helper.__qualname__, Tmp.__qualname__, (lambda: 0).__qualname__)
    try:
        helper(1)
    except TypeError:
        message = str(sys.exception())
    del helper, Tmp
    return names, message, await step("a")


# -- try statements without awaits whose handler binds a name ---------------------------------


@resumable.function
async def try_without_await_binds_as_name():
    await step("a")
    try:
        raise ValueError("x")
    except ValueError as e:
        text = str(e)
    try:
        e  # noqa: B018
    except NameError:
        unbound = True
    return text, unbound


@resumable.function
async def try_without_await_before_first_await():
    try:
        {}["k"]
    except KeyError as e:
        args = e.args
    return args, await step("a")
