# Source: PEP 530 -- Asynchronous Comprehensions,
#   https://peps.python.org/pep-0530/ (the examples
#   `result = [i async for i in aiter() if i % 2]` and
#   `result = [await fun() for fun in funcs if await condition()]`).
# Rewritten around the PEP's two comprehensions, not copied. Adapted: the
# enclosing coroutine is decorated; `aiter()` is a deterministic async
# generator at module level; `funcs` are module-level coroutine functions
# and `condition()` a recorded step that is true for every other call (a
# module-level counter, cleared by `reset()`).
# Constructs: an `async for` comprehension with a condition, a list
# comprehension awaiting both in its element and in its condition, function
# values in a list held across awaits.
import resumable
from resumable.testing import step


async def aiter(n: int):
    for i in range(n):
        await step("aiter", i)
        yield i


async def fun_a() -> str:
    return f"a{await step('fun_a')}"


async def fun_b() -> str:
    return f"b{await step('fun_b')}"


conditions = [0]


def reset() -> None:
    conditions[0] = 0


async def condition() -> bool:
    conditions[0] += 1
    await step("condition", conditions[0])
    return conditions[0] % 2 == 1


@resumable.function
async def comprehensions(n: int) -> tuple:
    odd = [i async for i in aiter(n) if i % 2]
    funcs = [fun_a, fun_b, fun_a]
    result = [await fun() for fun in funcs if await condition()]
    return odd, result


ARGS = {"comprehensions": [((5,), {})]}
