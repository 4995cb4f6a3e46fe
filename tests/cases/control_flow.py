"""if/elif/else, while/else and for/else with awaits in tests and bodies;
for-loops over every iterable kind the runtime can checkpoint (range, list,
tuple, str, bytes, bytearray, dict and its views, set, frozenset,
enumerate, zip, reversed); break and continue; nested loops; iterables
mutated while a loop runs over them.

Every loop body awaits, so the loop position is a checkpointed cursor and
each iteration resumes from JSON.
"""

import sys

import resumable
from resumable.testing import step

ARGS = {
    "if_elif_else_await_in_tests": [((0,), {}), ((1,), {}), ((2,), {}), ((3,), {})],
    "if_await_in_bodies": [((True,), {}), ((False,), {})],
    "while_else": [((3,), {}), ((0,), {})],
    "while_break_skips_else": [((2,), {}), ((40,), {})],
    "for_range_else": [((3,), {}), ((0,), {})],
    "for_range_break_continue": [((6,), {})],
    "for_range_arguments": [((2, 11, 3), {}), ((10, 0, -4), {})],
}


def note(log, x):
    log.append(x)
    return x


async def step_list(label, n):
    """Not resumable: one awaited call that returns a list of n ints."""
    first = await step(label, n)
    return [first + i for i in range(n)]


# -- if / elif / else ------------------------------------------------------------


@resumable.function
async def if_elif_else_await_in_tests(n):
    """Each test awaits; later tests are not evaluated once one is true."""
    log = []
    if await step("t0", n) and n == 0:
        log.append("zero")
    elif (await step("t1", n)) * 0 + n == 1:
        log.append("one")
    elif n == 2 and await step("t2", n):
        log.append("two")
    else:
        log.append("else")
    return log


@resumable.function
async def if_await_in_bodies(flag):
    out = []
    if flag:
        out.append(await step("then"))
        if await step("nested", len(out)) % 2:
            out.append("odd")
        else:
            out.append(await step("even"))
    else:
        out.append(await step("else"))
    out.append(await step("after", len(out)))
    return out


@resumable.function
async def if_test_value_not_bool():
    """The test's value is only tested for truth (and only once)."""
    log = []
    if note(log, []) or await step("a"):
        log.append("yes")
    if not (note(log, "s") and await step("b") * 0):
        log.append("not")
    return log


@resumable.function
async def if_without_else_falls_through():
    x = 0
    if await step("a") > 1000:
        x = await step("never")
    elif await step("b") < 0:
        x = -1
    return x


# -- while -----------------------------------------------------------------------


@resumable.function
async def while_else(n):
    i = 0
    out = []
    while i < n:
        out.append(await step("w", i))
        i += 1
    else:
        out.append(await step("else", i))
    return out


@resumable.function
async def while_break_skips_else(limit):
    total = 0
    while total < 200:
        total += await step("add", total)
        if total > limit:
            break
    else:
        total = -1
    return total


@resumable.function
async def while_await_in_test():
    count = 0
    while await step("test", count) % 5 != 0 and count < 10:
        count += 1
    return count


@resumable.function
async def while_true_break():
    out = []
    while True:
        v = await step("v", len(out))
        out.append(v)
        if len(out) == 3:
            break
    return out


@resumable.function
async def while_continue():
    i = 0
    out = []
    while i < 6:
        i += 1
        if i % 2:
            continue
        out.append(await step("even", i))
    else:
        out.append("else")
    return out


@resumable.function
async def while_continue_after_await():
    i = 0
    out = []
    while i < 5:
        i += 1
        if await step("c", i) % 2:
            continue
        out.append(i)
    return out


# -- for over range ----------------------------------------------------------------


@resumable.function
async def for_range_else(n):
    out = []
    for i in range(n):
        out.append(await step("r", i))
    else:
        out.append("else")
    return out, n


@resumable.function
async def for_range_break_continue(n):
    out = []
    for i in range(n):
        if i == 1:
            continue
        if await step("b", i) > 1000 or i == 4:
            break
        out.append(i)
    else:
        out.append("else")
    return out, i


@resumable.function
async def for_range_arguments(start, stop, stride):
    out = []
    for i in range(start, stop, stride):
        out.append((i, await step("i", i)))
    return out


@resumable.function
async def for_loop_variable_after_loop():
    for i in range(3):
        await step("i", i)
    last = i
    for j in []:
        await step("never", j)
    try:
        j  # noqa: B018
    except UnboundLocalError:
        unbound = True
    return last, unbound


@resumable.function
async def for_iterable_evaluated_once():
    log = []
    for x in note(log, [1, 2, 3]):
        await step("x", x)
    return log


@resumable.function
async def for_iterable_awaits_body_plain():
    out = []
    for x in await step_list("l", 3):
        out.append(x * 2)
    return out


@resumable.function
async def for_iterable_and_body_await():
    out = []
    for x in await step_list("l", 3):
        out.append(await step("x", x))
    return out


# -- for over sequences -------------------------------------------------------------


@resumable.function
async def for_list_break_continue():
    out = []
    for x in [5, 6, 7, 8, 9]:
        if x == 6:
            continue
        if x == 9:
            break
        out.append(await step("x", x))
    else:
        out.append("else")
    return out


@resumable.function
async def for_tuple_else():
    out = []
    for x in (1, "two", (3,)):
        out.append((x, await step("t", len(out))))
    else:
        out.append("else")
    return out


@resumable.function
async def for_str():
    out = []
    for ch in "héllo":
        if ch == "l":
            continue
        out.append(ch + str(await step("ch", ch)))
    return out


@resumable.function
async def for_bytes_and_bytearray():
    out = []
    for b in b"\x00ab\xff":
        out.append(b + await step("b", b))
        if b == 98:
            break
    for b in bytearray(b"xy"):
        out.append(await step("ba", b))
    return out


@resumable.function
async def for_tuple_target_unpacking():
    out = []
    for a, (b, *c) in [(1, (2, 3, 4)), (5, (6,))]:
        out.append((a, b, c, await step("u", a)))
    return out


# -- for over dicts and views ----------------------------------------------------------


@resumable.function
async def for_dict_keys_default():
    d = {"a": 1, 2: "b", (3,): None}
    out = []
    for k in d:
        out.append((k, await step("k", len(out))))
    else:
        out.append("else")
    return out


@resumable.function
async def for_dict_views():
    d = {"x": 1, "y": 2, "z": 3}
    out = []
    for k in d.keys():
        if k == "y":
            continue
        out.append(await step("key", k))
    for v in d.values():
        out.append(v + await step("value", v))
    for k, v in d.items():
        if k == "z":
            break
        out.append((k, v, await step("item", k)))
    else:
        out.append("else")
    return out


@resumable.function
async def for_dict_values_read_live():
    """Changing values (not keys) during iteration is allowed and seen."""
    d = {"a": 1, "b": 2, "c": 3}
    out = []
    for k, v in d.items():
        out.append((k, v))
        d["c"] = await step("set", k)
    return out, d


@resumable.function
async def for_dict_changed_size():
    d = {"a": 1, "b": 2}
    out = []
    try:
        for k in d:
            out.append(await step("k", k))
            d["new" + k] = 0
    except RuntimeError as e:
        out.append(str(e))
    return out, d


@resumable.function
async def for_dict_items_changed_size_escapes():
    d = {"a": 1, "b": 2}
    for k, v in d.items():
        await step("k", k)
        del d[k]


@resumable.function
async def for_dict_size_restored_before_next_step():
    """Adding and removing a key between two steps leaves the size unchanged."""
    d = {"a": 1, "b": 2}
    out = []
    for k in d:
        out.append(await step("k", k))
        d["tmp"] = 0
        del d["tmp"]
    return out, d


@resumable.function
async def for_dict_same_size_other_key():
    """Deleting a key not yet visited and adding another (same size): CPython
    skips the deleted key and yields the new one."""
    d = {"a": 1, "b": 2, "c": 3}
    out = []
    try:
        for k in d:
            out.append(k)
            await step("k", k)
            if k == "a":
                del d["c"]
                d["z"] = 26
    except RuntimeError as e:
        out.append(str(e))
    return out


@resumable.function
async def for_dict_same_size_replace_current_key():
    """Replacing the current key with a new one (same size): CPython yields the
    remaining keys and then raises 'dictionary keys changed during iteration'."""
    d = {"a": 1, "b": 2, "c": 3}
    out = []
    try:
        for k in d:
            out.append(k)
            await step("k", k)
            if k == "a":
                del d["a"]
                d["z"] = 26
    except RuntimeError as e:
        out.append(str(e))
    return out


# -- for over sets --------------------------------------------------------------------------


@resumable.function
async def for_set_and_frozenset():
    out = []
    for x in {3, 1, 2}:
        out.append(x + await step("s", x))
    for x in frozenset([10, 20]):
        if x == 20:
            continue
        out.append(await step("f", x))
    return sorted(out)


@resumable.function
async def for_set_order_kept_across_resume():
    s = {"pear", "apple", "fig", "kiwi", "plum"}
    order = list(s)
    out = []
    for x in s:
        out.append(x)
        await step("x", len(out))
    return out == order


@resumable.function
async def for_set_changed_size():
    s = {1, 2, 3}
    out = []
    try:
        for x in s:
            out.append(await step("x", x))
            s.add(x + 10)
    except RuntimeError as e:
        out.append(str(e))
    return out


# -- enumerate / zip / reversed -------------------------------------------------------------


@resumable.function
async def for_enumerate():
    out = []
    for i, x in enumerate(["a", "b", "c"]):
        if i == 1:
            continue
        out.append((i, x, await step("e", i)))
    for i, x in enumerate("xyz", 10):
        out.append((i, await step("s", i)))
        if x == "y":
            break
    for i, k in enumerate({"p": 1, "q": 2}, start=-1):
        out.append((i, k, await step("d", i)))
    return out


@resumable.function
async def for_enumerate_nested_in_zip():
    out = []
    for (i, a), b in zip(enumerate("ab", 1), [10, 20, 30]):
        out.append((i, a, b, await step("z", i)))
    return out


@resumable.function
async def for_zip():
    out = []
    for a, b in zip([1, 2, 3], "xyzw"):
        out.append((a, b, await step("z", a)))
    for a, b, c in zip(range(5), (7, 8), [0, 0, 0]):
        out.append((a, b, c, await step("three", a)))
    for t in zip():
        out.append(await step("never"))
    return out


@resumable.function
async def for_zip_strict_equal():
    out = []
    for a, b in zip([1, 2], (3, 4), strict=True):
        out.append(await step("z", a, b))
    else:
        out.append("else")
    return out


@resumable.function
async def for_zip_strict_second_shorter():
    out = []
    try:
        for a, b in zip([1, 2, 3], [4, 5], strict=True):
            out.append(await step("z", a, b))
    except ValueError as e:
        out.append(str(e))
    return out


@resumable.function
async def for_zip_strict_third_shorter():
    out = []
    try:
        for t in zip("ab", "cd", "e", strict=True):
            out.append(await step("z", *t))
    except ValueError as e:
        out.append(str(e))
    return out


@resumable.function
async def for_zip_strict_first_shorter():
    out = []
    try:
        for t in zip([1], [2, 3], [4, 5], strict=True):
            out.append(await step("z", *t))
    except ValueError as e:
        out.append(str(e))
    return out


@resumable.function
async def for_zip_strict_escapes():
    for a, b in zip(range(3), range(2), strict=True):
        await step("z", a, b)


@resumable.function
async def for_reversed():
    out = []
    for x in reversed([1, 2, 3]):
        out.append(await step("l", x))
    for x in reversed(range(0, 10, 4)):
        if x == 4:
            continue
        out.append(await step("r", x))
    for k in reversed({"a": 1, "b": 2, "c": 3}):
        out.append((k, await step("d", k)))
        if k == "b":
            break
    for k, v in reversed({"x": 1, "y": 2}.items()):
        out.append((k, v, await step("i", v)))
    for ch in reversed("ab"):
        out.append(await step("s", ch))
    return out


@resumable.function
async def for_reversed_list_shrinks():
    lst = [1, 2, 3, 4, 5]
    out = []
    for x in reversed(lst):
        out.append(await step("x", x))
        if x == 5:
            del lst[2:]
    return out, lst


# -- mutating a list while iterating it -----------------------------------------------------


@resumable.function
async def for_list_appends_seen():
    lst = [1, 2]
    out = []
    for x in lst:
        out.append(await step("x", x))
        if x < 4:
            lst.append(x + 2)
    return out, lst


@resumable.function
async def for_list_appends_through_alias_seen():
    """The cursor and the alias are the same list after every resume."""
    lst = [1, 2]
    alias = lst
    out = []
    for x in lst:
        out.append(await step("x", x))
        if x < 3:
            alias.append(x + 10)
    return out, lst is alias


@resumable.function
async def for_list_removal_skips():
    lst = [1, 2, 3, 4, 5]
    out = []
    for x in lst:
        out.append(await step("x", x))
        lst.remove(x)
    return out, lst


@resumable.function
async def for_list_rebinding_name_does_not_change_loop():
    lst = [1, 2, 3]
    out = []
    for x in lst:
        out.append(await step("x", x))
        lst = ["other"]
    return out, lst


@resumable.function
async def for_list_cleared_after_exhaustion_check():
    lst = [1, 2, 3]
    out = []
    for x in lst:
        out.append(await step("x", x))
        if x == 2:
            lst.clear()
    else:
        out.append("else")
    return out


# -- nested loops ----------------------------------------------------------------------------


@resumable.function
async def nested_for_loops_break_continue():
    out = []
    for i in range(3):
        for j in "abc":
            if j == "b":
                continue
            if i == 1:
                break
            out.append((i, j, await step("ij", i)))
        else:
            out.append(("inner-else", i))
        if i == 2:
            break
        out.append(await step("outer", i))
    else:
        out.append("outer-else")
    return out


@resumable.function
async def nested_while_in_for():
    out = []
    for x in [2, 3]:
        n = 0
        while n < x:
            n += 1
            if n == 2:
                continue
            out.append(await step("w", x, n))
        else:
            out.append(("else", x))
    return out


@resumable.function
async def nested_loops_same_list():
    lst = [1, 2]
    out = []
    for a in lst:
        for b in lst:
            out.append((a, b, await step("ab", a, b)))
    return out


@resumable.function
async def loop_with_only_some_iterations_awaiting():
    out = []
    for i in range(6):
        if i % 3 == 0:
            out.append(await step("a", i))
        else:
            out.append(i)
    return out


# -- truth tests ----------------------------------------------------------------------------


class Flag:
    """Truth value `value`; every __bool__ call is recorded in `log`."""

    def __init__(self, log, value):
        self.log = log
        self.value = value

    def __bool__(self):
        self.log.append(("bool", self.value))
        return self.value


@resumable.function
async def if_tests_call_bool_once():
    log = []
    if Flag(log, False) or await step("a"):
        log.append("then 1")
    if Flag(log, True) and not await step("b"):
        log.append("never")
    if not Flag(log, False):
        log.append(await step("c"))
    if (await step("d") and Flag(log, False)) or Flag(log, True):
        log.append("then 4")
    return log


@resumable.function
async def if_complex_tests():
    out = []
    a = await step("a")
    if a > 5 and (await step("b") < 0 or not await step("c") * 0):
        out.append(1)
    if not (a < 0 or await step("d") < 0) and a < await step("e") < 1000:
        out.append(2)
    if 0 <= a < (await step("f")) > 3:
        out.append(3)
    if (n := await step("g")) and n > 100:
        out.append("never")
    out.append(n)
    return out


@resumable.function
async def while_walrus_test():
    out = []
    i = 0
    while (v := await step("v", i)) % 4 != 0 and i < 6:
        out.append(v)
        i += 1
    return out, v


# -- maybe-unbound variables across awaits ------------------------------------------------------


@resumable.function
async def conditionally_bound_variable():
    if await step("a") > 1000:
        x = "bound"
    await step("b")
    try:
        return x  # noqa: F821
    except UnboundLocalError:
        return "unbound", str(sys.exception())


@resumable.function
async def variable_bound_in_loop_body_only():
    out = []
    for i in range(3):
        if i == 1:
            y = await step("y", i)
        out.append(await step("i", i))
        try:
            out.append(y)  # noqa: F821
        except UnboundLocalError:
            out.append("unbound")
    return out


# -- iterables the runtime rejects like CPython ------------------------------------------------


@resumable.function
async def for_over_non_iterable():
    out = []
    for bad in (5, None):
        try:
            for x in bad:
                out.append(await step("never", x))
        except TypeError:
            out.append(str(sys.exception()))
    try:
        for x in reversed({1, 2}):
            out.append(await step("never", x))
    except TypeError:
        out.append(str(sys.exception()))
    try:
        for x in zip([1], 5):
            out.append(await step("never", x))
    except TypeError:
        out.append(str(sys.exception()))
    try:
        for x in enumerate([1], "s"):
            out.append(await step("never", x))
    except TypeError:
        out.append(str(sys.exception()))
    return out


@resumable.function
async def for_else_skipped_by_exception():
    out = []
    try:
        for i in range(3):
            out.append(await step("i", i))
            if i == 1:
                raise KeyError(i)
        else:
            out.append("never")
    except KeyError:
        out.append("caught")
    return out


@resumable.function
async def for_loop_variable_deleted_in_body():
    out = []
    for i in range(2):
        await step("i", i)
        del i
        try:
            out.append(i)  # noqa: F821
        except UnboundLocalError:
            out.append("deleted")
    return out


@resumable.function
async def conditionally_deleted_variable():
    x = "bound"
    if await step("a") < 1000:
        del x
    await step("b")
    try:
        return x
    except UnboundLocalError:
        return "deleted"


# -- loop headers and targets -------------------------------------------------------------------


@resumable.function
async def for_lazy_iterable_arguments_await():
    """enumerate/zip/reversed calls whose arguments await."""
    out = []
    names = ["a", "b"]
    for i, x in enumerate(await step_list("l", 2), start=await step("start") % 5):
        out.append((i, x, await step("e", i)))
    for n, v in zip(names, await step_list("z", 3)):
        out.append((n, v, await step("z", v)))
    for v in reversed(await step_list("r", 2)):
        out.append(await step("r", v))
    return out


@resumable.function
async def for_loop_targets_subscript_and_attribute():
    d = {}
    slots = [0, 0]
    out = []
    for d["k"] in ["x", "y"]:
        out.append((d["k"], await step("k", d["k"])))
    for i, slots[i] in enumerate([5, 6]):
        out.append(await step("s", i))
    return out, d, slots


@resumable.function
async def for_range_of_await():
    out = []
    for i in range(await step("n") % 4):
        out.append(await step("i", i))
    return out


@resumable.function
async def if_comparison_chains_evaluation_order():
    log = []
    out = []
    if note(log, 0) < note(log, 1) < await step("a", len(log)):
        out.append("last")
    if note(log, 0) < await step("b", len(log)) < note(log, 1000):
        out.append("middle")
    if await step("c") > note(log, 1000) > note(log, "never"):
        out.append("never")
    while note(log, 5) < await step("d", len(log)) < note(log, 6):
        out.append("never")
    return out, log
