# Source: temporalio/samples-python, hello/hello_parallel_activity.py
#   (SayHelloWorkflow: five activities started at once with asyncio.gather,
#   results sorted because they may complete in any order).
# Rewritten in the same shape, not copied. Adapted: the workflow's `run`
# method is a module-level function taking the names; the activity is the
# deterministic fake `say_hello`, which records its call as a step and yields
# to the event loop a number of times that depends on the name, so the
# activities really finish out of order.
import asyncio

import resumable
from resumable.testing import step


async def say_hello(name: str) -> str:
    await step("say_hello", name)
    for _ in range(len(name) % 3):
        await asyncio.sleep(0)
    return f"Hello, {name}!"


@resumable.function
async def say_hello_to_all(a: str, b: str, c: str, d: str, e: str) -> list[str]:
    results = await asyncio.gather(
        say_hello(a),
        say_hello(b),
        say_hello(c),
        say_hello(d),
        say_hello(e),
    )
    return list(sorted(results))


ARGS = {
    "say_hello_to_all": [(("user5", "user3", "u1", "user22", "bob"), {})],
}
