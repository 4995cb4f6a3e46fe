"""Methods and function values.

Methods of module-level classes: instance methods, staticmethods and
classmethods in both decorator orders, run directly (the ARGS keys
"Class.method") and awaited from a running function, where each is a child
run whose `self` (or `cls`) goes through the codec. Zero-argument `super()`
and `__class__`, also across awaits and with `super()` evaluated before an
awaited argument; private names (`self.__step`, a local `__total`, private methods, a nested
`def __f` and `class __C`, closures over a private local) mangled as CPython
mangles them; a method of a
class nested in a class; CPython's RuntimeErrors of `super()` with no
argument to take.

Function values held in a local across an await: decorated functions, a
module-level function and class, built-in functions, bound methods of stored
objects (plain, decorated, a classmethod, a built-in method).

No method changes `self`: the ARGS objects are shared by the original and the
compiled runs, and a method's changes to `self` do not reach a caller that
awaited it (docs/semantics.md, "Known differences").
"""

import dataclasses

import resumable
from resumable.testing import step


@dataclasses.dataclass
class Base:
    n: int = 0

    async def describe(self, k):
        """Not decorated: awaited through super(), one step."""
        return "base", self.n, await step("describe", self.n, k)

    def label(self):
        return f"base-{self.n}"

    async def label_later(self):
        return self.label() + "!"


@dataclasses.dataclass
class Counter(Base):
    __step: int = 1  # the field _Counter__step

    @resumable.function
    async def bump(self, k):
        x = await step("bump", self.n, k)
        return self.n + x * self.__step

    @resumable.function
    async def describe(self, k):
        first = await step("first", k)
        base = await super().describe(k + first)
        return base, super().label(), __class__.__name__, type(self).__name__

    @resumable.function
    async def super_before_an_awaited_argument(self, k):
        # super() is evaluated first and held across the await of its argument.
        return await super().describe(await step("argument", k))

    @resumable.function
    async def private_names(self, k):
        __total = self.__step  # the local _Counter__total
        for i in range(k):
            __total += await step("private", i, self.__step)
        return __total, self.__negate(__total)

    def __negate(self, v):
        return -v

    @resumable.function
    async def raises(self, k):
        await step("raises", k)
        raise ValueError("bad", self.n, k)

    @staticmethod
    @resumable.function
    async def static_above(a, b=2):
        return a + await step("static_above", a, b)

    @resumable.function
    @staticmethod
    async def static_below(a):
        return await step("static_below", a)

    @classmethod
    @resumable.function
    async def class_above(cls, n):
        value = await step("class_above", n)
        return cls(n + value), cls.__name__

    @resumable.function
    @classmethod
    async def class_below(cls, n):
        made = await cls.class_above(n)
        return made, await step("class_below", n), __class__ is Counter


@dataclasses.dataclass
class Outer:
    n: int = 0

    @dataclasses.dataclass
    class Inner:
        v: int = 1

        @resumable.function
        async def nested_class_method(self, k):
            return self.v + await step("inner", k), __class__.__qualname__

    @resumable.function
    async def __hidden(self, k):
        return await step("hidden", self.n, k)

    @resumable.function
    async def private_definitions(self, k):
        r = await self.__hidden(k)  # a private decorated method, as a child run

        def __plus_one(x):  # binds the local _Outer__plus_one, keeps its __name__
            return x + 1

        class __Box:
            __z = 5  # mangled with the nested class's own name: _Box__z

            def get(self):
                return self.__z

        return __plus_one(r), __plus_one.__name__, __Box.__name__, __Box().get()

    @resumable.function
    async def closures_over_private_names(self, k):
        __bonus = 1  # the local _Outer__bonus, shared with the closures below
        price = lambda x: x * self.n + __bonus + k  # noqa: E731

        def bump():
            nonlocal __bonus
            __bonus += 1
            return price(1)

        first = await step("closures", k)  # price and bump are held across the await
        return price(first), bump(), __bonus, price.__qualname__, bump.__qualname__

    @staticmethod
    @resumable.function
    async def super_without_arguments():
        await step("static")
        return super().n

    @resumable.function
    async def super_after_del_self(self):
        await step("deleted")
        del self
        return super().n


@dataclasses.dataclass
class Sub(Counter):
    @resumable.function
    async def bump(self, k):
        # super() of a decorated method: Counter.bump as a child run.
        inner = await super().bump(k)
        return inner * 10, __class__ is Sub, await super().label_later()


ARGS = {
    "Counter.bump": [((Counter(2, 3), 1), {})],
    "Counter.describe": [((Counter(4), 2), {}), ((Sub(1), 0), {})],
    "Counter.super_before_an_awaited_argument": [((Counter(3), 5), {})],
    "Counter.private_names": [((Counter(1, 4), 3), {}), ((Counter(1, 4), 0), {})],
    "Counter.raises": [((Counter(6), 1), {})],
    "Counter.static_above": [((1,), {}), ((1, 5), {})],
    "Counter.static_below": [((2,), {})],
    "Counter.class_above": [((3,), {})],
    "Counter.class_below": [((4,), {})],
    "Sub.bump": [((Sub(5, 2), 1), {})],
    "Outer.private_definitions": [((Outer(3), 2), {})],
    "Outer.closures_over_private_names": [((Outer(2), 3), {})],
    "Outer.super_without_arguments": [((), {})],
    "Outer.super_after_del_self": [((Outer(1),), {})],
    "call_methods": [((2,), {})],
    "method_raises": [((3,), {})],
    "choose": [((True, 3), {}), ((False, 4), {})],
    "held_callables": [((3,), {})],
    "held_across_a_loop": [((4,), {})],
}


@resumable.function
async def call_methods(n):
    c = Counter(n, 3)
    results = [await c.bump(1)]
    results.append(await c.describe(2))
    results.append(await c.private_names(2))
    results.append(await Counter.static_above(1))
    results.append(await c.static_below(2))
    results.append(await Counter.class_above(3))
    results.append(await c.class_below(4))
    results.append(await Sub(5).bump(1))
    results.append(await Sub.class_above(1))
    results.append(await Outer.Inner(7).nested_class_method(1))
    return results, c


@resumable.function
async def method_raises(n):
    try:
        await Counter(n).raises(1)
    except ValueError as e:
        return "caught", e.args, await step("after", n)


# -- function values held across an await -------------------------------------------


@resumable.function
async def order_apples(n):
    return "apples", await step("apples", n)


@resumable.function
async def order_bananas(n):
    return "bananas", await step("bananas", n)


def fee(amount):
    return amount // 10


@resumable.function
async def choose(cheap, n):
    order = order_apples if cheap else order_bananas
    await step("choose", cheap)
    return await order(n)


@resumable.function
async def held_callables(n):
    c = Counter(n, 2)
    by_name = fee
    cls = Counter
    size = len
    order = sorted
    label = c.label
    join = "-".join
    bump = c.bump
    make = Counter.class_above
    static = Counter.static_above
    await step("held", n)
    return (
        by_name(n * 10),
        cls(n).n,
        size([1] * n),
        order([3, 1, 2]),
        label(),
        join(["a", "b"]),
        await bump(1),
        await make(n),
        await static(n),
        label == c.label,
        bump.__self__ is c,
    )


@resumable.function
async def held_across_a_loop(n):
    steps = [order_apples, order_bananas, Counter(n).bump, max]
    out = []
    for i, call in enumerate(steps):
        if call is max:
            out.append(call(i, await step("max", i)))
        else:
            out.append(await call(i))
    return out
