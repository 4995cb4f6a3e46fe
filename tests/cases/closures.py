"""Lambdas, nested functions and classes that use the function's locals.

They read and write them through the locals object, so late binding,
`nonlocal` and cells shared by several closures are CPython's; a lambda or
nested function held across an await is stored by its definition (with its
defaults and attributes) and rebuilt over the run's locals after every
checkpoint, crash or not.
"""

import functools

import resumable
from resumable.testing import step

ARGS = {
    "closure_in_handler": [((0,), {}), ((1,), {})],
    "closures_in_containers": [(([3, 1, 2],), {})],
}


@resumable.function
async def counter_object():
    """A closure-based counter (the classic make_counter), held across awaits."""
    n = 0

    def incr(by=1):
        nonlocal n
        n += by
        return n

    def get():
        return n

    incr()
    await step("a", get())
    incr(5)
    v = await step("b", get())
    incr(v)
    return get(), n, incr.__name__, get.__qualname__


@resumable.function
async def closures_in_containers(xs):
    """Closures inside a list and a dict, the same closure held twice."""
    k = await step("k")
    ops = {"add": lambda x: x + k, "mul": lambda x: x * k}
    chain = [ops["add"], ops["mul"], ops["add"]]
    await step("a", len(chain))
    k = 3
    out = []
    for x in xs:
        for op in chain:
            x = op(x)
        out.append(x)
    same = chain[0] is chain[2] and chain[0] is ops["add"]
    return out, same, await step("b", sum(out))


@resumable.function
async def closure_in_handler(fail):
    """A closure defined in an except block reads the handled exception."""
    try:
        if fail:
            raise ValueError("bad", fail)
        describe = lambda: "fine"
    except ValueError as e:
        detail = e.args
        describe = lambda: f"failed with {detail}"
    first = describe()
    await step("a")
    detail = ("changed",)
    return first, describe()


@resumable.function
async def mutable_default_shared_with_a_local():
    """A default evaluated once; identity with a local survives a checkpoint."""
    seen = []

    def remember(x, acc=seen):
        acc.append(x)
        return len(acc)

    remember(1)
    await step("a")
    remember(2)
    shared = remember.__defaults__[0] is seen
    return seen, shared, await step("b", len(seen))


@resumable.function
async def closure_with_attributes_and_names():
    """Attributes, a changed __name__ and __doc__ survive; wraps sets them."""
    tag = "t"

    def f1():
        """doc"""
        return tag

    f1.calls = 0
    f1.__name__ = "renamed"

    @functools.wraps(f1, assigned=("__doc__",), updated=())
    def f2():
        return tag * 2

    await step("a")
    f1.calls += 1
    tag = "u"
    return f1(), f1.calls, f1.__name__, f1.__doc__, f2(), f2.__doc__, f2.__qualname__


@resumable.function
async def generator_and_async_closures():
    """A nested generator function and a nested coroutine function, held across awaits."""
    items = [1, 2]

    def numbers():
        for i in items:
            yield i * 10

    async def total():
        return sum(numbers()) + await step("inner", len(items))

    await step("a")
    items.append(3)
    t = await total()
    return list(numbers()), t


@resumable.function
async def closure_reads_variable_assigned_only_later():
    """A closure defined before its variable is bound: NameError-like at the
    call before, the value after."""
    get = lambda: late
    try:
        get()
    except NameError as e:
        before = type(e).__name__
    await step("a")
    late = 5
    return before, get(), await step("b")


@resumable.function
async def class_methods_read_and_write_locals():
    """Methods of a class defined in the function use the function's locals."""
    hits = 0

    class Hit:
        def __init__(self, w):
            nonlocal hits
            hits += w

    Hit(2)
    Hit(3)
    await step("a", hits)
    return hits


@resumable.function
async def closure_over_deleted_variable():
    """`del` of a variable a closure uses: the closure sees it unbound."""
    x = 1
    get = lambda: x
    await step("a", get())
    del x
    try:
        get()
    except NameError as e:
        message = type(e).__name__
    x = 7
    return message, get(), await step("b")


@resumable.function
async def nested_annotations_are_evaluated():
    """Annotations of a nested def or class are evaluated where it is defined,
    as in the original (this module has no `from __future__ import
    annotations`); a closure keeps annotations a checkpoint can hold."""
    kind = int

    def conv(x: kind, *, base: "str" = "") -> str:
        return base + str(x)

    class Box:
        size: kind = 1

    before = (dict(conv.__annotations__), Box.__annotations__)
    await step("a")
    return before, conv.__annotations__, conv(3)
