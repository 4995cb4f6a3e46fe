"""Parameters: defaults, positional-only, keyword-only, *args and **kwargs,
argument values of every storable type, aliased arguments, a mutable default
that is only read, and calls that do not match the signature.

Functions never mutate their arguments: the ARGS values are shared by the
original and the compiled runs.
"""

import resumable
from resumable.testing import step

BIG = 2**70

ARGS = {
    "defaults": [
        ((1,), {}),
        ((1, 5), {}),
        ((1,), {"c": [7]}),
        ((), {"a": 3, "b": 4, "c": None}),
    ],
    "positional_only": [((1, 2), {}), ((1, 2, 3), {}), ((1,), {"b": 2}), ((1, 2), {"a": 9})],
    "keyword_only": [((1,), {"k": 2}), ((1,), {"k": 2, "opt": "given"}), ((1, 2), {}), ((1,), {})],
    "star_args": [((), {}), ((1,), {}), ((1, 2, 3, "x"), {})],
    "star_kwargs": [((), {}), ((), {"a": 1, "b": [2]}), ((), {"a-b": 1, "$tag": 2, "": 3})],
    "all_kinds": [
        ((1, 2), {"k": 3}),
        ((1, 2, 3, 4, 5), {"k": 6, "x": 7, "y": 8}),
        ((1,), {"b": 2, "k": 3}),
    ],
    "kwargs_collide_with_parameter": [((1,), {"a": 2}), ((), {"kwargs": 1, "a": 5})],
    "mutable_default_only_read": [((0,), {}), ((1,), {}), ((1, [10, 20]), {})],
    "argument_values_of_storable_types": [
        (
            (
                (1, (2, "t")),
                b"\x00\xff",
                {3, 1},
                frozenset({"f"}),
                {1: "one", "k": [None]},
                BIG,
                -BIG,
                1.5,
            ),
            {},
        ),
        ((float("inf"), float("-inf"), True, None, "", range(2, 9, 3), bytearray(b"ba")), {}),
    ],
    "aliased_arguments": [(((shared := [1, 2]), shared), {}), (([1, 2], [1, 2]), {})],
    "parameters_shadowing_generated_names": [((1, 2, 3, 4), {})],
    "parameters_named_like_hidden_variables": [((1, 2, 3, 4, 5), {})],
    "parameter_rebound": [((5, "s"), {})],
    "parameter_deleted": [((1, 2), {})],
    "too_many_arguments": [((1, 2, 3), {})],
    "missing_argument": [((), {})],
    "unexpected_keyword": [((1,), {"nope": 2})],
}


def note(log, x):
    log.append(x)
    return x


@resumable.function
async def defaults(a, b=2, c=None):
    x = await step("a", a)
    y = await step("b", b)
    return a, b, c, x, y


@resumable.function
async def positional_only(a, b, /, c=30):
    return a, b, c, await step("p", a, b, c)


@resumable.function
async def keyword_only(a, *, k, opt="default"):
    v = await step("k", a, k)
    return a, k, opt, v


@resumable.function
async def star_args(*args):
    out = []
    for x in args:
        out.append(await step("x", x))
    return args, type(args).__name__, out


@resumable.function
async def star_kwargs(**kwargs):
    await step("n", len(kwargs))
    return kwargs, type(kwargs).__name__, sorted(kwargs)


@resumable.function
async def all_kinds(a, /, b, *args, k, **kwargs):
    v = await step("v", a, b, k)
    w = await step("w", len(args), len(kwargs))
    return a, b, args, k, kwargs, v, w


@resumable.function
async def kwargs_collide_with_parameter(a=0, /, **kwargs):
    """A positional-only name can also be a key of **kwargs."""
    return a, kwargs, await step("c", a)


@resumable.function
async def mutable_default_only_read(i, seen=[1, 2, 3]):  # noqa: B006
    v = await step("s", seen[i])
    total = sum(seen) + await step("t", len(seen))
    return seen[i], v, total, list(seen)


@resumable.function
async def argument_values_of_storable_types(*values):
    """Each argument survives a checkpoint with its type and value."""
    before = [(type(v).__name__, repr(v)) for v in values]
    await step("n", len(values))
    after = [(type(v).__name__, repr(v)) for v in values]
    return before == after, after


@resumable.function
async def aliased_arguments(a, b):
    same = a is b
    await step("a")
    return same, a is b, a == b


@resumable.function
async def parameters_shadowing_generated_names(m, L, step_, machine):
    """Parameters named like the generated code's `m` and `L`."""
    x = await step("x", m, L)
    y = await step("y", step_, machine)
    return m, L, step_, machine, x, y


@resumable.function
async def parameters_named_like_hidden_variables(_t1, _c1, _x1, _f1, _rv):
    log = []
    r = note(log, _t1) + await step("a", _c1)
    for i in [_x1, _f1]:
        log.append(await step("i", i))
    try:
        return r, log, _rv
    finally:
        await step("fin", _rv)


@resumable.function
async def parameter_rebound(n, s):
    n = n + await step("n", n)
    s += str(await step("s"))
    return n, s


@resumable.function
async def parameter_deleted(a, b):
    del a
    await step("b", b)
    try:
        return a  # noqa: F821
    except UnboundLocalError:
        return "unbound", b


@resumable.function
async def too_many_arguments(a, b):
    return await step("never", a, b)


@resumable.function
async def missing_argument(a):
    return await step("never", a)


@resumable.function
async def unexpected_keyword(a):
    return await step("never", a)


@resumable.function
async def annotated_parameters(
    a: int = 1, *rest: str, k: "list[int]" = None, **kw: object
) -> tuple:
    return a, rest, k, kw, await step("a", a)


DEFAULT = [4, 5]


@resumable.function
async def default_evaluated_at_definition(x=DEFAULT[0], y=len(DEFAULT)):
    return x, y, await step("d", x, y)
