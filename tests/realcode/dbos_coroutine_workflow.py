# Source: dbos-inc/dbos-docs, docs/python/tutorials/workflow-tutorial.md
#   ("Coroutine (Async) Workflows": a workflow that sleeps durably, awaits an
#   async step and runs a transaction in a thread with asyncio.to_thread;
#   "Running Async Steps In Parallel": four steps started in a fixed order
#   and awaited with asyncio.gather(..., return_exceptions=True)).
# Rewritten in the same shape, not copied. Adapted: @DBOS.workflow and
# @DBOS.step become @resumable.function (a step awaited by a workflow is a
# child run); DBOS.sleep_async and the HTTP call are recorded steps; the
# transaction is a plain function; step3 fails for an empty argument.
# Constructs: asyncio.to_thread as one awaited call, gather with
# return_exceptions=True collecting a child run's exception as a value.
import asyncio

import resumable
from resumable.testing import step


async def sleep_async(seconds: float) -> None:
    """Stands for DBOS.sleep_async (a durable sleep)."""
    await step("sleep", seconds)


@resumable.function
async def example_step() -> str:
    status = await step("GET https://example.com")
    return f"<html>{status}</html>"


def example_transaction(body: str) -> int:
    return len(body)


@resumable.function
async def example_workflow(friend: str) -> int:
    await sleep_async(10)
    body = await example_step()
    result = await asyncio.to_thread(example_transaction, body)
    return result


@resumable.function
async def step1(arg: str) -> str:
    return f"step1({arg}) = {await step('step1', arg)}"


@resumable.function
async def step2(arg: str) -> str:
    return f"step2({arg}) = {await step('step2', arg)}"


@resumable.function
async def step3(arg: str) -> str:
    if not arg:
        raise ValueError("step3 needs an argument")
    return f"step3({arg}) = {await step('step3', arg)}"


@resumable.function
async def step4(arg: str) -> str:
    return f"step4({arg}) = {await step('step4', arg)}"


@resumable.function
async def parallel_steps(third: str) -> list:
    # Started in a deterministic order, awaited together; failures are collected.
    results = await asyncio.gather(
        step1("arg1"),
        step2("arg2"),
        step3(third),
        step4("arg4"),
        return_exceptions=True,
    )
    return results


ARGS = {
    "example_step": [((), {})],
    "example_workflow": [(("Mike",), {})],
    "step1": [(("a",), {})],
    "step2": [(("b",), {})],
    "step3": [(("c",), {}), (("",), {})],
    "step4": [(("d",), {})],
    "parallel_steps": [(("arg3",), {}), (("",), {})],
}
RAISES = (ValueError,)
