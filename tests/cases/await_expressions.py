"""Awaits inside expressions: call arguments, operators, comparison chains,
subscripts and slices, displays, f-strings, boolean operators, conditional
expressions, walrus, nested awaits and the outermost iterable of a
comprehension.

Siblings of an await are `note(log, x)` calls, so the returned log shows
whether they were evaluated before or after the await (and only once); the
awaited `step` gets len(log) where that matters.
"""

import sys

import resumable
from resumable.testing import step

ARGS = {
    "and_or_value_context": [((0,), {}), ((3,), {})],
    "conditional_expression": [((0,), {}), ((1,), {})],
    "comparison_chain_short_circuit": [((1,), {}), ((50,), {})],
}


def note(log, x):
    log.append(x)
    return x


def collect(*args, **kwargs):
    return args, kwargs


async def step_list(label, n):
    """Not resumable: one awaited call that returns a list of n ints."""
    first = await step(label, n)
    return [first + i for i in range(n)]


async def step_dict(label, *keys):
    """Not resumable: one awaited call that returns a dict."""
    value = await step(label, len(keys))
    return {k: value for k in keys}


# -- call arguments -------------------------------------------------------------


@resumable.function
async def call_positional_arguments():
    log = []
    r = collect(note(log, "before"), await step("a", len(log)), note(log, "after"))
    return r, log


@resumable.function
async def call_keyword_arguments():
    log = []
    r = collect(x=note(log, "x"), y=await step("y", len(log)), z=note(log, "z"))
    return r, log


@resumable.function
async def call_mixed_arguments():
    log = []
    r = collect(
        note(log, 1), await step("p", len(log)), k=note(log, "k"), w=await step("w", len(log))
    )
    return r, log


@resumable.function
async def call_star_arguments():
    log = []
    r = collect(
        *note(log, [1, 2]), await step("a", len(log)), *await step_list("l", 2), note(log, "last")
    )
    return r, log


@resumable.function
async def call_star_argument_evaluated_before_keywords():
    """`*args` written after keyword arguments is still evaluated before them."""
    log = []
    r = collect(k=note(log, "k"), *note(log, [await step("s", len(log))]))
    r2 = collect(k=await step("k", len(log)), *note(log, ["star"]))
    return r, r2, log


@resumable.function
async def call_double_star_arguments():
    log = []
    r = collect(
        a=note(log, "a"),
        **note(log, {"b": 1}),
        c=await step("c", len(log)),
        **await step_dict("d", "e", "f"),
    )
    return r, log


@resumable.function
async def call_star_list_mutated_during_await():
    """`*lst` is unpacked at its position, before a later await changes lst."""
    lst = [1]
    r = collect(*lst, lst.append(2), await step("a", len(lst)), *lst)
    return r


@resumable.function
async def call_duplicate_keyword_from_double_star():
    try:
        collect(a=1, **{"a": await step("a")})
    except TypeError as e:
        return str(e)


@resumable.function
async def call_builtins_with_awaits():
    return (
        max(await step("a"), await step("b")),
        sorted([await step("c"), 3, await step("d")]),
        len(await step_list("l", 4)),
        divmod(await step("e"), 7),
    )


# -- method calls on locals -----------------------------------------------------


@resumable.function
async def method_calls_on_locals():
    lst = [3]
    d = {"a": 1}
    s = "x-y"
    lst.append(await step("app"))
    lst.extend(await step_list("ext", 2))
    lst.insert(0, await step("ins"))
    got = d.get("missing", await step("def"))
    d.update(b=await step("b"))
    parts = s.split("-", await step("n") % 2)
    joined = "+".join([s, str(await step("j"))])
    return lst, got, d, parts, joined


@resumable.function
async def method_receiver_evaluated_before_await():
    """The receiver is read before the arguments' awaits; rebinding the name
    in a later argument (walrus) does not change it."""
    lst = [1]
    old = lst
    lst.append((lst := [9]) and await step("a"))
    return old, lst


@resumable.function
async def method_on_subscript_receiver():
    log = []
    d = {"k": [1]}
    d[note(log, "k")].append(await step("a", len(log)))
    return d, log


# -- operators --------------------------------------------------------------------


@resumable.function
async def binary_operators():
    log = []
    a = note(log, 10) + await step("a", len(log))
    b = await step("b") - note(log, 3)
    c = note(log, 2) * await step("c") // note(log, 3) % 7
    d = (await step("d") << 2) | note(log, 1) ^ await step("e") & 0xF
    e = note(log, [1]) + [await step("f")] * 2
    f = note(log, "s") * (await step("g") % 3)
    g = 2 ** (await step("h") % 5) / 4
    return a, b, c, d, e, f, g, log


@resumable.function
async def binary_operator_errors():
    out = []
    try:
        out.append(1 / (await step("z") * 0))
    except ZeroDivisionError as e:
        out.append(str(e))
    try:
        out.append("s" + await step("t"))
    except TypeError as e:
        out.append(str(e))
    return out


@resumable.function
async def unary_operators():
    a = -await step("a")
    b = +await step("b")
    c = ~await step("c")
    d = not await step("d")
    e = -(-(await step("e")))
    return a, b, c, d, e


@resumable.function
async def left_operand_rebound_by_walrus():
    x = 1
    y = x + (x := 10) + await step("a")
    z = [x, (x := 20), await step("b"), x]
    return x, y, z


# -- comparison chains -------------------------------------------------------------


@resumable.function
async def comparison_await_first():
    log = []
    a = await step("a") < note(log, 100) < note(log, 200)
    b = await step("b") > note(log, 100) > note(log, "never")
    return a, b, log


@resumable.function
async def comparison_await_middle():
    log = []
    a = note(log, 0) < await step("a", len(log)) < note(log, 100)
    b = note(log, 1000) < await step("b", len(log)) < note(log, "never")
    c = note(log, 0) <= await step("c") != note(log, -1) < note(log, 99)
    return a, b, c, log


@resumable.function
async def comparison_await_last():
    log = []
    a = note(log, 0) < note(log, 1) < await step("a", len(log))
    b = note(log, 0) == note(log, 0) != await step("b")
    return a, b, log


@resumable.function
async def comparison_chain_short_circuit(n):
    """A later await never runs once an earlier comparison is false."""
    log = []
    a = note(log, n) < 10 < await step("a", n)
    b = note(log, n) > 10 > await step("b", n) > await step("c")
    return a, b, log


@resumable.function
async def comparison_all_awaits():
    a = await step("a") < await step("b") < await step("c")
    b = await step("d") <= await step("d") <= await step("e")
    return a, b


@resumable.function
async def comparison_operator_kinds():
    lst = [1, 2, await step("x")]
    a = await step("x") in lst
    b = await step("y") not in lst
    c = None is not await step("z")
    d = lst is [await step("w")]  # noqa: F632
    return a, b, c, d


@resumable.function
async def comparison_middle_operand_evaluated_once():
    log = []
    r = 0 < note(log, await step("m")) < 1000 > note(log, await step("n"))
    return r, log


# -- subscripts and slices ----------------------------------------------------------


@resumable.function
async def subscripts():
    log = []
    lst = [10, 20, 30, 40]
    d = {"k": 1, (1, 2): "t"}
    a = lst[await step("i") % 4]
    b = note(log, lst)[await step("j", len(log)) % 4]
    c = d[note(log, "k")] + await step("c", len(log))
    e = d[1, await step("two") * 0 + 2]
    f = note(log, [[1, 2], [3, 4]])[await step("r") % 2][note(log, 1)]
    return a, b, c, e, f, log


@resumable.function
async def slices():
    lst = list(range(10))
    a = lst[await step("lo") % 4 :]
    b = lst[: await step("hi") % 8]
    c = lst[await step("lo2") % 3 : await step("hi2") % 10 : await step("st") % 3 + 1]
    d = lst[::-1][await step("x") % 5 :]
    e = "abcdef"[1 : await step("y") % 6]
    return a, b, c, d, e


@resumable.function
async def subscript_container_read_before_await():
    """The container expression is evaluated before the index's await."""
    d = {"a": {"k": "old"}}
    r = d["a"][(d.update(a={"k": "new"}), await step("k"))[0] or "k"]
    return r, d


@resumable.function
async def subscript_errors():
    out = []
    try:
        out.append([1, 2][await step("i")])
    except IndexError as e:
        out.append(str(e))
    try:
        out.append({}[await step("k")])
    except KeyError as e:
        out.append(e.args)
    return out


# -- displays ------------------------------------------------------------------------


@resumable.function
async def list_and_tuple_displays():
    log = []
    a = [note(log, 1), await step("a", len(log)), note(log, 2)]
    b = (note(log, 3), await step("b", len(log)), note(log, 4))
    c = [*note(log, [5, 6]), await step("c"), *await step_list("l", 2), *note(log, (7,))]
    d = (*await step_list("t", 2),)
    e = [await step("single")]
    return a, b, c, d, e, log


@resumable.function
async def dict_displays():
    log = []
    a = {note(log, "k"): await step("v", len(log)), note(log, "k2"): note(log, "v2")}
    b = {await step("key"): note(log, "value")}
    c = {"x": 1, **note(log, {"y": 2}), "z": await step("z"), **await step_dict("d", "x", "w")}
    d = {"dup": 1, "dup": await step("dup")}  # noqa: F601
    return a, b, c, d, log


@resumable.function
async def set_displays():
    log = []
    a = {note(log, 1), await step("a", len(log)), note(log, 2)}
    b = {*note(log, [3, 4]), *await step_list("s", 3)}
    return sorted(a), sorted(b), log


@resumable.function
async def star_unpacking_of_list_mutated_by_later_element():
    lst = [1, 2]
    r = [*lst, lst.append(3), await step("a"), *lst]
    return r


# -- f-strings --------------------------------------------------------------------------


@resumable.function
async def fstring_fields():
    log = []
    x = "ex"
    s = f"<{note(log, 'a')}|{await step('b', len(log))}|{note(log, 'c')}>"
    t = f"{x}{await step('c')}{x}"
    u = f"{await step('only')}"
    return s, t, u, log


@resumable.function
async def fstring_conversions_and_specs():
    width = 6
    s = f"{await step('r')!r}|{await step('s')!s:>5}|{await step('a')!a}|{await step('f'):08.3f}|{'q'!r:^{width}}"
    t = f"{'text'!r}{await step('x'):{width}}"
    return s, t


@resumable.function
async def fstring_debug_form():
    x = 3
    name = "n"
    s = f"{x=} {await step('a')} {name = !s} {await step('b'):>6} {x + 1=} {x=:>4}"
    return s


@resumable.function
async def fstring_earlier_field_formatted_before_await():
    lst = [1]
    s = f"{lst}{lst.append(2)}{await step('a')}{lst}"
    return s


@resumable.function
async def fstring_concatenated():
    x = 1
    s = "plain " f"{x}" f"{await step('a')}" " tail"  # fmt: skip
    return s


# -- and / or / not ----------------------------------------------------------------------


@resumable.function
async def and_or_value_context(n):
    """The result of and/or is the deciding operand, not a bool."""
    log = []
    a = note(log, n) or await step("a", n)
    b = note(log, n) and await step("b", n)
    c = await step("c", n) and note(log, "c-right")
    d = await step("d", n) * 0 or note(log, "")
    e = note(log, []) or note(log, "") or await step("e")
    f = note(log, n) and note(log, "f") and await step("f", n)
    return a, b, c, d, e, f, log


@resumable.function
async def and_or_short_circuit_skips_await():
    log = []
    a = note(log, 0) and await step("never-and")
    b = note(log, "x") or await step("never-or")
    c = (note(log, 1) or await step("never")) and await step("runs")
    return a, b, c, log


@resumable.function
async def and_or_mixed_precedence():
    a = await step("a") and 0 or await step("b")
    b = 0 or await step("c") and ""
    c = not (await step("d") and await step("e"))
    return a, b, c


@resumable.function
async def not_operator():
    a = not await step("a")
    b = not (await step("b") * 0)
    c = not not await step("c")
    return a, b, c


# -- conditional expressions ----------------------------------------------------------------


@resumable.function
async def conditional_expression(n):
    log = []
    a = note(log, "yes") if await step("t", n) % 2 else note(log, "no")
    b = await step("body", n) if n else await step("orelse", n)
    c = (await step("x") if note(log, n) else note(log, "n false")) + 1 if n else "outer-else"
    return a, b, c, log


@resumable.function
async def conditional_expression_value_is_operand():
    a = [] if await step("a") else "never"
    b = await step("b") * 0 if True else 1
    return a, b


# -- walrus --------------------------------------------------------------------------------


@resumable.function
async def walrus_binds_await():
    if (n := await step("n")) > 0:
        out = n
    pair = [m := await step("m"), m + 1]
    total = (k := await step("k", n)) + k
    return n, out, pair, m, total, k


@resumable.function
async def walrus_value_used_by_later_await():
    log = []
    r = (p := note(log, 5)) + await step("p", p)
    return p, r, log


@resumable.function
async def walrus_in_call_argument():
    r = collect((a := await step("a")), a * 2, b=(b := a + 1))
    return r, a, b


# -- nested awaits ----------------------------------------------------------------------------


@resumable.function
async def nested_awaits():
    a = await step("outer", await step("inner"))
    b = await step("o", await step("m", await step("i")))
    c = await step("two", await step("x"), await step("y"))
    return a, b, c


# -- comprehensions whose outermost iterable awaits -------------------------------------------


@resumable.function
async def comprehension_outer_iterable():
    k = 3
    a = [x * 2 for x in await step_list("l", 3)]
    b = {x: x * k for x in await step_list("d", 2)}
    c = {x % 2 for x in await step_list("s", 4)}
    d = sum(x for x in await step_list("g", 3))
    e = [(x, y) for x in await step_list("n", 2) for y in range(x % 3)]
    f = [x for x in await step_list("f", 5) if x % 2]
    return a, b, sorted(c), d, e, f


@resumable.function
async def comprehension_outer_iterable_is_evaluated_in_function_scope():
    x = "function x"
    out = [x for x in await step_list("l", 2)]
    return out, x


# -- callees --------------------------------------------------------------------------------


FUNCS = [abs, str]


@resumable.function
async def callee_is_subscript_of_global():
    log = []
    r = FUNCS[note(log, 1)](await step("a", len(log)))
    s = FUNCS[await step("i") % 2](-5)
    return r, s, log


# -- truth tests call __bool__ once --------------------------------------------------------


class Flag:
    """Truth value `value`; every __bool__ call is recorded in `log`."""

    def __init__(self, log, value):
        self.log = log
        self.value = value

    def __bool__(self):
        self.log.append(("bool", self.value))
        return self.value


@resumable.function
async def bool_called_once_in_value_context():
    log = []
    a = bool(Flag(log, False) or await step("a"))
    b = await step("b") if Flag(log, True) else "never"
    c = not Flag(log, False) and await step("c")
    d = bool(await step("d") and Flag(log, True))
    return a, b, c, d, log


# -- unpacking: errors and when a lone `*args` is converted ---------------------------------


@resumable.function
async def unpacking_errors_in_displays():
    out = []
    bad = 5
    try:
        collect(*bad, await step("never-1"))
    except TypeError:
        out.append(str(sys.exception()))
    try:
        [*bad, await step("never-2")]
    except TypeError:
        out.append(str(sys.exception()))
    try:
        {**bad, "a": await step("never-3")}
    except TypeError:
        out.append(str(sys.exception()))
    return out


@resumable.function
async def call_double_star_not_a_mapping():
    """CPython: "collect() argument after ** must be a mapping, not int"."""
    bad = 5
    try:
        collect(**bad, b=await step("never"))
    except TypeError:
        return str(sys.exception())


@resumable.function
async def call_double_star_not_a_mapping_callee_names():
    """The message names the callee: a method, a builtin, a subscript."""
    bad = 5
    lst = [2, 1]
    out = []
    try:
        lst.sort(**bad, key=await step("never-1"))
    except TypeError:
        out.append(str(sys.exception()))
    try:
        max(**bad, default=await step("never-2"))
    except TypeError:
        out.append(str(sys.exception()))
    try:
        FUNCS[0](**bad, x=await step("never-3"))
    except TypeError:
        out.append(str(sys.exception()))
    return out


@resumable.function
async def call_lone_star_not_iterable_fails_at_call():
    """A lone `*args` is checked when the call is made, after the keyword
    arguments (and their awaits) were evaluated."""
    bad = 5
    try:
        collect(k=await step("a"), *bad)
    except TypeError:
        return str(sys.exception())


@resumable.function
async def call_lone_star_list_converted_at_call():
    """A lone `*lst` becomes the argument tuple when the call is made: a
    change made while the keyword arguments are evaluated is seen."""
    lst = [1]
    return collect(*lst, k=(lst.append(2), await step("a"))[1])


# -- the f-string debug form of an awaiting field -------------------------------------------


@resumable.function
async def fstring_debug_form_of_await():
    """`{await ...=}`: the text is the source, the value is the await's."""
    x = 1
    return f"{await step('a')=}|{x=} {await step('b')=:>6} {await step('c') = !s}"
