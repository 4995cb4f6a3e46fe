# Source: dbos-inc/dbos-docs, docs/python/tutorials/workflow-tutorial.md
#   ("Running Async Steps In Parallel", the example DBOS does not allow:
#   two nested async functions, each awaiting two steps in sequence, run
#   together with asyncio.gather(..., return_exceptions=True)).
# Rewritten in the same shape, not copied. Adapted: the enclosing workflow
# is a decorated module-level function; the steps are plain coroutines that
# record a step and yield once to the event loop, so the two sequences
# interleave deterministically (step1, step3, step2, step4).
# Constructs: nested async functions (function values) called in the operand
# of an await, gather with return_exceptions=True.
import asyncio

import resumable
from resumable.testing import step


async def _step(name: str, arg: str) -> int:
    value = await step(name, arg)
    await asyncio.sleep(0)
    return value


async def step1(arg: str) -> int:
    return await _step("step1", arg)


async def step2(arg: str) -> int:
    return await _step("step2", arg)


async def step3(arg: str) -> int:
    return await _step("step3", arg)


async def step4(arg: str) -> int:
    return await _step("step4", arg)


@resumable.function
async def interleaved_workflow() -> list:
    async def seq_a():
        await step1("arg1")
        await step2("arg3")

    async def seq_b():
        await step3("arg2")
        await step4("arg4")

    results = await asyncio.gather(seq_a(), seq_b(), return_exceptions=True)
    return results


ARGS = {"interleaved_workflow": [((), {})]}
