"""Functions whose compiled behaviour differs from the original by design.

Each difference is listed in docs/semantics.md; tests/test_deviations.py
asserts the documented behaviour (and shows the original's).
"""

import asyncio
import dataclasses
import types

import resumable
from resumable.testing import step

COUNT = 0


async def bump():
    """Not resumable: changes the module global COUNT while awaited."""
    global COUNT
    COUNT += 100
    return await step("bump", COUNT)


@resumable.function
async def global_read_before_await():
    global COUNT
    COUNT = 1
    return COUNT + await bump()


NS = types.SimpleNamespace(fn=lambda: "old")


async def rebind():
    NS.fn = lambda: "new"
    return await step("rebind")


@resumable.function
async def method_looked_up_after_await():
    return NS.fn(await rebind())


@resumable.function
async def argument_is_a_copy(items):
    await step("a")
    items.append("added after the checkpoint")
    return len(items)


@resumable.function
async def mutable_default(items=[]):  # noqa: B006
    await step("a")
    items.append(1)
    return len(items)


def numbers():
    yield from (1, 2, 3)


@resumable.function
async def loop_over_generator():
    total = 0
    for n in numbers():
        total += await step("n", n)
    return total


@resumable.function
async def unserializable_local():
    ns = types.SimpleNamespace(x=1)
    await step("a")
    return ns.x


CLEANUPS: list[str] = []


@resumable.function
async def slow_child():
    try:
        await asyncio.sleep(30)
    finally:
        CLEANUPS.append("child's finally ran")
    return "late"


@resumable.function
async def parent_that_stops_waiting():
    try:
        return await asyncio.wait_for(slow_child(), 0.05)
    except TimeoutError:
        return "gave up"


@resumable.function
async def star_raise_e():
    try:
        await step("a")
        raise ExceptionGroup("eg", [ValueError(1), TypeError(2)])
    except* ValueError as e:
        raise e


CALLBACKS: list = []


@resumable.function
async def closure_kept_outside_the_run():
    """A closure handed to code outside the run (a global list of callbacks)."""
    CALLBACKS.clear()
    k = "before"
    get = lambda: k  # noqa: E731
    CALLBACKS.append(get)
    await step("a")
    k = "after"
    return CALLBACKS[0](), CALLBACKS[0] is get


@resumable.function
async def closure_annotations_that_cannot_be_stored():
    def scale(xs: list[int], by: int) -> list[int]:
        return [x * by for x in xs]

    await step("a")
    return sorted(scale.__annotations__), scale([1], 2)


@resumable.function
async def closure_cells():
    k = 1
    get = lambda: k  # noqa: E731
    return get.__code__.co_freevars, await step("a")


class Prefilled(type):
    @classmethod
    def __prepare__(mcs, name, bases):
        return {"k": "from the namespace"}


@resumable.function
async def class_body_reads_a_local_its_namespace_holds():
    k = "the function's"

    class C(metaclass=Prefilled):
        seen = k

    return C.seen, await step("a")


@dataclasses.dataclass
class Tally:
    count: int = 0

    @resumable.function
    async def add(self, n):
        self.count += await step("add", n)  # changes the child run's copy of self
        return self.count


@resumable.function
async def method_changes_its_copy_of_self():
    tally = Tally()
    returned = await tally.add(1)
    return returned, tally.count


@resumable.function
async def comprehension_over_generator():
    return [await step("n", n) for n in numbers()]


@resumable.function
async def comprehension_builds_unserializable_list():
    spaces = [types.SimpleNamespace(x=await step("a", i)) for i in range(2)]
    return [s.x for s in spaces]


@resumable.function
async def comprehension_reads_a_later_clause_variable():
    return [1 for x in range(2) if await step("p", x) for y in y]  # noqa: F821


@resumable.function
async def comprehension_returns_lazy_generators():
    gens = [(y * x for y in range(2)) for x in range(3) if x == 2 and await step("p", x)]
    return [list(g) for g in gens]


@resumable.function
async def comprehension_reads_an_unbound_local():
    await step("a")
    if False:
        e = 1
    return [(await step("b"), e) for x in range(1)]
