"""List, set and dict comprehensions with awaits past their first iterable:
in the element, the conditions, the inner iterables and nested
comprehensions. Each keeps its own scope, CPython's order of evaluation and
the effects of the items before an exception.
"""

import dataclasses

import resumable
from resumable.testing import step

ARGS = {
    "unpacking_target_fails_midway": [(([(1, 2), (3, 4, 5)],), {}), (([(1, 2)],), {})],
    "rerun_in_a_loop": [((3,), {})],
}


def note(log, x):
    log.append(x)
    return x


@dataclasses.dataclass
class Box:
    value: object = None


@resumable.function
async def prices_of_orders():
    orders = [{"id": i, "qty": i % 3} for i in range(5)]
    priced = [
        {"id": o["id"], "total": o["qty"] * await step("price", o["id"])}
        for o in orders
        if o["qty"]
    ]
    by_id = {p["id"]: p["total"] for p in priced}
    return priced, by_id


@resumable.function
async def first_iterable_is_evaluated_first():
    log = []
    r = [
        (note(log, ("elt", x)), await step("e", x))
        for x in note(log, "first iterable") and range(2)
        if note(log, ("if", x)) is not None
    ]
    return r, log


@resumable.function
async def variable_shadows_a_local_and_reads_it_in_first_iterable():
    x = [3, 4]
    r = [await step("s", x) for x in x]
    return r, x


@resumable.function
async def nested_comprehensions_each_have_their_variables():
    x = "local"
    grid = [[await step("c", x, y) for x in range(y)] for y in range(3)]
    return grid, x


@resumable.function
async def same_name_in_two_clauses():
    # Both clauses bind the comprehension's one `x`.
    return [x for x in [[1, 2], [3]] for x in x if await step("p", x) % 2]


@resumable.function
async def walrus_binds_in_the_function():
    r = [y for x in range(4) if (y := await step("w", x)) % 3]
    return r, y


@resumable.function
async def walrus_in_a_native_inner_clause():
    r = [z for x in range(3) if await step("p", x) for z in range(x) if (last := z * 10)]
    return r, last


@resumable.function
async def exception_keeps_the_effects_of_earlier_items():
    log = []
    try:
        [note(log, await step("s", x)) // (2 - x) for x in range(4)]
    except ZeroDivisionError as e:
        return log, repr(e)


@resumable.function
async def unpacking_target_fails_midway(pairs):
    try:
        return [a + b + await step("s", a) for a, b in pairs]
    except ValueError as e:
        return "failed", repr(e)


@resumable.function
async def attribute_target():
    box = Box()
    r = [box.value + await step("s", box.value) for box.value in range(3)]
    return r, box.value


@resumable.function
async def list_grows_while_iterated():
    xs = [1, 2]
    r = [xs.append(x + 10) or await step("s", x) for x in xs if x < 12]
    return r, xs


@resumable.function
async def dict_changes_size_while_iterated():
    d = {1: "a", 2: "b"}
    try:
        return [d.setdefault(k * 10, await step("s", k)) for k in d]
    except RuntimeError as e:
        return "changed", str(e), d


@resumable.function
async def set_of_results():
    return sorted({await step("s", x) % 4 for x in range(6) if x != 3})


@resumable.function
async def dict_key_then_value_order():
    log = []
    d = {note(log, ("k", x)): note(log, ("v", await step("v", x))) for x in range(2)}
    return d, log


@resumable.function
async def dict_duplicate_keys_keep_first_key():
    d = {k: await step("s", k) for k in [1, 1.0, True, 2]}
    return [(type(k).__name__, v) for k, v in d.items()]


@resumable.function
async def comprehension_in_a_condition_and_a_loop():
    total = 0
    for round in range(2):
        if [x for x in range(3) if await step("p", round, x) % 2]:
            total += sum([await step("s", round, x) for x in range(round + 1)])
    return total


@resumable.function
async def rerun_in_a_loop(n):
    out = []
    i = 0
    while i < n:
        out.append([i * x + await step("s", i, x) for x in range(i)])
        i += 1
    return out


@resumable.function
async def fstring_debug_of_a_variable():
    return [f"{x=} {await step('s', x)}" for x in range(2)]


@resumable.function
async def inner_native_comprehension_reads_the_variable():
    return [await step("s", x) + sum(y * x for y in range(x)) for x in range(4)]


@resumable.function
async def comprehension_in_finally_and_handler():
    try:
        try:
            raise KeyError("k")
        finally:
            r = [await step("f", x) for x in range(2)]
    except KeyError as e:
        return r, [(await step("h", x), repr(e)) for x in range(2)]
