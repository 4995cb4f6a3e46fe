# Source: temporalio/samples-python, polling/frequent/activities.py,
#   polling/frequent/workflows.py and polling/test_service.py (an activity that
#   polls a flaky service in a loop until it answers; the workflow runs it).
# Rewritten in the same shape, not copied. Adapted: the activity and the
# workflow are decorated module-level functions (the workflow's call to the
# activity is a child run); the service is the deterministic fake
# `get_service_result`, down until its third call per name (a module-level
# counter, as in the sample; `reset()` clears it before each run), and
# `asyncio.sleep(1)` and the heartbeat are recorded steps.
# Constructs: `while True` around nested try statements, `return` from inside
# a try, `except Exception` swallowing a failure, a re-raising
# `except asyncio.CancelledError`, a dataclass argument, a child run.
import asyncio
from collections import Counter
from dataclasses import dataclass

import resumable
from resumable.testing import step

ERROR_ATTEMPTS = 3
attempts: Counter[str] = Counter()


def reset() -> None:
    attempts.clear()


class ServiceDown(Exception):
    pass


@dataclass
class ComposeGreetingInput:
    greeting: str
    name: str


async def get_service_result(input: ComposeGreetingInput) -> str:
    await step("get_service_result", input.name)
    attempts[input.name] += 1
    if attempts[input.name] == ERROR_ATTEMPTS:
        return f"{input.greeting}, {input.name}!"
    raise ServiceDown("service is down")


async def heartbeat_and_sleep(details: str, seconds: int) -> None:
    await step("heartbeat", details)
    await step("sleep", seconds)


@resumable.function
async def compose_greeting(input: ComposeGreetingInput) -> str:
    while True:
        try:
            try:
                result = await get_service_result(input)
                return result
            except Exception:
                # The service is down: try again shortly.
                pass
            await heartbeat_and_sleep("Invoking activity", 1)
        except asyncio.CancelledError:
            raise


@resumable.function
async def greeting_workflow(name: str) -> str:
    return await compose_greeting(ComposeGreetingInput("Hello", name))


ARGS = {
    "compose_greeting": [((ComposeGreetingInput("Hi", "poller"),), {})],
    "greeting_workflow": [(("World",), {})],
}
