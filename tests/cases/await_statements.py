"""Awaits as statements and in the parts of simple statements: assignment
targets of every kind, augmented and annotated assignment, return, raise,
del and assert.

`note(log, x)` records non-awaited evaluation order; `step(label, ...)`
records the awaited calls (and fails at the call a test scripts).
"""

import asyncio
import sys
import types

import resumable
from resumable.testing import step

ARGS = {
    "assert_await_in_test": [((0,), {}), ((1,), {})],
    "assert_await_in_message": [((True,), {}), ((False,), {})],
    "raise_await_exception": [((1,), {}), ((2,), {})],
}


def note(log, x):
    log.append(x)
    return x


async def step_list(label, n):
    """Not resumable: one awaited call that returns a list of n ints."""
    first = await step(label, n)
    return [first + i for i in range(n)]


async def step_and_set(d, key, value):
    """Not resumable: changes d[key] while the caller awaits it."""
    d[key] = value
    return await step("set", key, value)


class Record(Exception):
    """A local object with attributes that a checkpoint can store (the codec
    stores exceptions with their __dict__; plain objects are not storable)."""


# -- plain awaits -------------------------------------------------------------


@resumable.function
async def await_as_statement():
    log = []
    await step("first")
    note(log, "between")
    await step("second", len(log))
    await step_list("list", 2)
    return log


@resumable.function
async def await_result_discarded_in_expression_statement():
    log = []
    note(log, await step("a")) + 1
    (await step("b"), note(log, "after"))
    return log


# -- assignment to names ------------------------------------------------------


@resumable.function
async def assign_name():
    x = await step("x")
    y = x + await step("y", x)
    return x, y


@resumable.function
async def assign_chained():
    a = b = await step("ab")
    c = d = [await step("cd")]
    d.append(1)
    return a, b, c, d, c is d


@resumable.function
async def assign_rebinds_name_used_in_value():
    x = 1
    x = x + await step("x", x)
    x = await step("again", x) - x
    return x


# -- tuple unpacking ----------------------------------------------------------


@resumable.function
async def unpack_tuple():
    a, b = await step_list("pair", 2)
    (c, d), e = (await step("c"), await step("d")), a
    return a, b, c, d, e


@resumable.function
async def unpack_starred():
    first, *rest = await step_list("three", 3)
    *init, last = await step_list("four", 4)
    head, *mid, tail = await step_list("five", 5)
    return first, rest, init, last, head, mid, tail


@resumable.function
async def unpack_wrong_length():
    try:
        a, b = await step_list("three", 3)
    except ValueError as e:
        return "caught", str(e)
    return a, b


@resumable.function
async def unpack_into_subscripts_and_names():
    log = []
    d = {}
    lst = [0, 0]
    d[note(log, "k")], lst[note(log, 1)], x = await step_list("three", 3)
    return log, d, lst, x


@resumable.function
async def unpack_with_await_in_target():
    d = {}
    lst = [0, 0, 0]
    d[await step("key")], lst[await step("idx", 0) % 3] = await step_list("pair", 2)
    return d, lst


# -- attribute targets --------------------------------------------------------


@resumable.function
async def assign_attribute():
    r = Record()
    r.x = await step("x")
    r.y = r.x + await step("y")
    return r.x, r.y


@resumable.function
async def assign_attribute_target_after_value():
    """The target object is evaluated after the value."""
    log = []
    r = Record()
    note(log, r).x = (note(log, "value"), await step("v", len(log)))
    return log[0] is r, log[1:], r.x


@resumable.function
async def assign_attribute_of_global_namespace():
    NS.__dict__.clear()
    NS.a = await step("a")
    NS.b = NS.a + await step("b")
    return sorted(vars(NS).items())


NS = types.SimpleNamespace()


# -- subscript targets --------------------------------------------------------


@resumable.function
async def assign_subscript():
    d = {}
    lst = [0, 0, 0]
    d["k"] = await step("k")
    lst[1] = await step("l")
    lst[-1] = d["k"] + await step("last")
    d[await step("key")] = await step("value")
    lst[await step("i", 0) % 3] = "by await"
    return d, lst


@resumable.function
async def assign_subscript_order():
    """value first, then container, then key; an await in the key runs
    after the value's."""
    log = []
    d = {}
    note(log, d)[note(log, "key")] = note(log, "value") + str(await step("v", len(log)))
    d[note(log, "k2") + str(await step("k", len(log)))] = (
        note(log, "v2"),
        await step("v2", len(log)),
    )
    return log[0] is d, log[1:], d


@resumable.function
async def assign_slice():
    lst = list(range(6))
    lst[1:3] = [await step("s")]
    lst[await step("lo", 0) % 2 : -1] = ["x", "y"]
    return lst


# -- augmented assignment -----------------------------------------------------


@resumable.function
async def augassign_name_int():
    total = 10
    total += await step("a")
    total -= await step("b", total)
    total *= 1 + await step("c") % 3
    total //= 1 + await step("d") % 5
    total **= 2
    total %= 1000 + await step("e")
    return total


@resumable.function
async def augassign_name_list_in_place():
    lst = [1]
    alias = lst
    lst += await step_list("ext", 2)
    lst += [await step("one")]
    return lst, alias, lst is alias


@resumable.function
async def augassign_name_string():
    s = "a"
    s += str(await step("n"))
    s += f"-{await step('f', s)}"
    s *= 2
    return s


@resumable.function
async def augassign_attribute():
    r = Record()
    r.n = 1
    r.items = [0]
    alias = r.items
    r.n += await step("n")
    r.items += [await step("i")]
    r.s = "x"
    r.s += str(await step("s"))
    return r.n, r.items, alias is r.items, alias, r.s


@resumable.function
async def augassign_subscript():
    d = {"n": 1, "s": "x", "l": [0]}
    lst = [5, 6]
    alias = d["l"]
    d["n"] += await step("n")
    d["s"] += str(await step("s"))
    d["l"] += [await step("l")]
    lst[-1] += await step("lst")
    return d, lst, alias is d["l"]


@resumable.function
async def augassign_subscript_reads_before_await():
    """The current d["k"] is read before the await; the callee changes it."""
    d = {"k": 1}
    d["k"] += await step_and_set(d, "k", 100)
    return d


@resumable.function
async def augassign_subscript_order():
    """Container and key are evaluated before the value."""
    log = []
    d = {"k": 1}
    note(log, d)[note(log, "k")] += note(log, 1) + await step("v", len(log))
    return log[0] is d, log[1:], d


@resumable.function
async def augassign_await_in_key():
    d = {}
    key = await step("k")
    d[key] = 1
    d[await step("k")] += await step("v")
    return d


@resumable.function
async def augassign_unbound_name():
    try:
        x += await step("never")  # noqa: F821
    except UnboundLocalError as e:
        return "unbound", str(e)
    x = 1
    return x


@resumable.function
async def augassign_missing_key():
    d = {}
    try:
        d["missing"] += await step("never")
    except KeyError as e:
        return "missing", e.args
    return d


# -- annotated assignment -----------------------------------------------------


@resumable.function
async def annotated_assignment():
    x: int = await step("x")
    y: list[int] = [x, await step("y")]
    d: dict = {}
    d["k"]: int = await step("k")
    z: "int"  # noqa: F842
    return x, y, d


# -- return -------------------------------------------------------------------


@resumable.function
async def return_await():
    return await step("r")


@resumable.function
async def return_tuple_with_awaits():
    log = []
    return note(log, "a"), await step("b", len(log)), note(log, "c"), log


# -- raise ----------------------------------------------------------------------


@resumable.function
async def raise_await_exception(n):
    raise ValueError(await step("v", n))


@resumable.function
async def raise_from_await_cause():
    try:
        raise KeyError(await step("k")) from ValueError(await step("cause"))
    except KeyError as e:
        return e.args, repr(e.__cause__), e.__suppress_context__


@resumable.function
async def raise_escapes_with_cause():
    cause = ValueError(await step("c"))
    raise RuntimeError(await step("r")) from cause


@resumable.function
async def raise_from_none_after_await():
    try:
        {}["missing"]
    except KeyError:
        raise ValueError(await step("v")) from None


# -- del ------------------------------------------------------------------------


@resumable.function
async def del_subscript_with_await_key():
    d = {"a": 1, "b": 2}
    key = "a" if await step("which") % 2 else "b"
    del d[key]
    lst = [1, 2, 3, 4]
    del lst[await step("i", 0) % 4]
    d2 = {n: n for n in range(100)}
    del d2[await step("k")], d2[await step("k2")]
    return d, lst, len(d2)


@resumable.function
async def del_slice_with_await():
    lst = list(range(8))
    del lst[await step("lo", 1) % 3 : 5]
    return lst


@resumable.function
async def del_missing_key_with_await():
    d = {}
    try:
        del d[await step("k")]
    except KeyError as e:
        return e.args
    return d


@resumable.function
async def del_name_then_await():
    x = await step("x")
    y = x
    del x
    await step("after del")
    try:
        return x  # noqa: F821
    except UnboundLocalError:
        return y, str(sys.exception())


# -- assert ---------------------------------------------------------------------


@resumable.function
async def assert_await_in_test(n):
    assert await step("t", n) % 2 == 0
    return "passed"


@resumable.function
async def assert_await_in_message(ok):
    log = []
    assert ok, f"{note(log, 'msg')} {await step('m')}"
    await step("after", len(log))
    return log


@resumable.function
async def assert_caught():
    try:
        assert await step("t") < 0, ("too big", await step("m"))
    except AssertionError as e:
        return e.args


# -- more augmented assignment: the target is read before the value --------------------


@resumable.function
async def augassign_name_rebound_by_walrus_in_value():
    """`x += (x := 10) + ...` adds to the x read before the value (CPython loads
    the target first)."""
    x = 1
    x += (x := 10) + await step("w")
    return x


@resumable.function
async def augassign_attribute_object_rebound_in_value():
    """The object whose attribute is updated is evaluated before the value."""
    first = Record()
    first.n = 1
    r = first
    r.n += (r := Record()) and await step("a")
    return first.n, hasattr(r, "n")


@resumable.function
async def augassign_subscript_container_rebound_in_value():
    first = {"k": 1}
    d = first
    d["k"] += bool(d := {}) + await step("a")
    return first, d


@resumable.function
async def augassign_global_name():
    global TOTAL
    TOTAL = 5
    TOTAL += await step("a")
    TOTAL *= await step("b") % 3 + 1
    return TOTAL


TOTAL = 0


# -- more assignment targets ---------------------------------------------------------------


@resumable.function
async def chained_assignment_with_await_in_target():
    """Targets are assigned left to right, after the value; a target's await
    runs after the earlier targets were stored."""
    d = {}
    a = d[await step("k", 0)] = b = await step("v")
    return a, b, d


@resumable.function
async def starred_target_is_subscript():
    d = {}
    first, *d[await step("k")] = await step_list("l", 3)
    return first, d


@resumable.function
async def attribute_target_object_from_await():
    records = [Record(), Record()]
    records[await step("i") % 2].x = await step("x")
    return [getattr(r, "x", None) for r in records]


# -- awaiting other awaitables ------------------------------------------------------------


@resumable.function
async def await_asyncio_awaitables():
    log = []
    log.append(await asyncio.sleep(0))
    log.append(await asyncio.sleep(0, "result"))
    log.append(await asyncio.gather(step("g1"), step("g2"), step_list("g3", 2)))
    log.append(await asyncio.wait_for(step("w"), timeout=10))
    log.append(await asyncio.ensure_future(step("task")))
    return log


@resumable.function
async def await_returns_none_and_return_without_value():
    x = await asyncio.sleep(0)
    await step("a", x)
    return


# -- unbound names and missing globals raise before the await ---------------------------------


@resumable.function
async def unbound_local_fails_before_await():
    if await step("flag") > 1000:
        x = 1
    try:
        y = x + await step("never")  # noqa: F821
    except UnboundLocalError:
        return "unbound", str(sys.exception())
    return y


@resumable.function
async def missing_global_fails_before_await():
    try:
        return NOT_DEFINED_ANYWHERE + await step("never")  # noqa: F821
    except NameError:
        return str(sys.exception())


@resumable.function
async def raise_cause_evaluated_after_exception():
    log = []
    try:
        raise note(log, KeyError("k")) from note(log, ValueError(await step("c", len(log))))
    except KeyError as e:
        return log, repr(e.__cause__)


@resumable.function
async def nested_tuple_target_with_await():
    d = {}
    (a, d[await step("k")]), *rest = [(1, 2), 3, 4]
    return a, d, rest


# -- global names as targets of awaiting statements -------------------------------------------

G = None


@resumable.function
async def global_names_as_targets():
    global G
    out = []
    G = await step("assign")
    out.append(G)
    if (G := await step("walrus", G)) > 0:
        out.append(G)
    for G in range(2):
        out.append(await step("loop", G))
    out.append(G)
    G, x = await step_list("pair", 2)
    out.append((G, x))
    del G
    await step("after del")
    out.append("G" in globals())
    G = "restored"
    return out


# -- locals holding module-level functions, classes and modules across awaits -------------------


@resumable.function
async def locals_holding_functions_classes_and_modules():
    import types as mod  # a checkpoint holds a module its function imports (or the project's)

    kinds = [ValueError, KeyError, Record]
    fn = note
    await step("a")
    log = []
    fn(log, await step("b"))
    return [k.__name__ for k in kinds], log, mod.__name__, fn is note, kinds[2] is Record
