import sys

import resumable
from resumable.testing import step

ARGS = {
    "loops": [((7,), {}), ((0,), {})],
    "tries": [((3,), {})],
    "returns_in_finally": [((4,), {}), ((2,), {})],
    "exprs": [((2, 9), {}), ((8, 1), {})],
}


@resumable.function
async def loops(n):
    total = 0
    for i in range(n):
        if i % 2:
            continue
        total += await step("a", i)
        if total > 50:
            break
    else:
        total -= 1
    while total < 100:
        total += await step("w", total)
    return total


@resumable.function
async def tries(x):
    out = []
    try:
        out.append(await step("t1", x))
        try:
            out.append(await step("t2", x))
        except ValueError as e:
            out.append(str(e))
        finally:
            out.append(await step("f1"))
    except Exception as e:
        out.append(repr(e))
        y = await step("handler", len(out))
        out.append(sys.exception() is e)
    else:
        out.append("else")
    finally:
        out.append(await step("fin"))
    return out


@resumable.function
async def returns_in_finally(n):
    for i in range(n):
        try:
            if i == 2:
                return await step("ret", i)
            await step("body", i)
        finally:
            await step("fin", i)
            if i == 1:
                continue
    return -1


@resumable.function
async def exprs(a, b):
    x = [a, await step("x", a), b]
    d = {a: await step("d", b), "k": b}
    s = f"{a}-{await step('f', b)!r}-{b:>4}"
    c = a < await step("c", a) < b + 100
    t = (await step("or", 0)) or (await step("or2", 1))
    u = a if await step("if", a) > 5 else b
    return x, d, s, c, t, u
