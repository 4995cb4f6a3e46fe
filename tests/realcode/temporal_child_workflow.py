# Source: temporalio/samples-python, hello/hello_child_workflow.py (a workflow
#   that runs a child workflow with a dataclass input) and
#   hello/hello_exception.py (a workflow whose activity always fails; the
#   failure reaches the caller wrapped, with the activity's error as cause).
# Rewritten in the same shape, not copied. Adapted: workflow classes are
# module-level functions, `execute_child_workflow` is awaiting the decorated
# child directly, and `execute_activity` is the deterministic fake below,
# which records the call and wraps a failure in ActivityError (raise ... from),
# as the Temporal SDK does.
# Constructs: a child run returning an f-string, an exception with a
# __cause__ chain crossing a decorated function.
from dataclasses import dataclass

import resumable
from resumable.testing import step


@dataclass
class ComposeGreetingInput:
    greeting: str
    name: str


class ActivityError(Exception):
    pass


@resumable.function
async def compose_greeting_child(input: ComposeGreetingInput) -> str:
    return f"{input.greeting}, {input.name}!"


@resumable.function
async def greeting_workflow(name: str) -> str:
    return await compose_greeting_child(ComposeGreetingInput("Hello", name))


def compose_greeting_activity(input: ComposeGreetingInput) -> str:
    raise RuntimeError(f"Greeting exception: {input.greeting}, {input.name}!")


async def execute_activity(activity, arg):
    await step(activity.__name__, arg.name)
    try:
        return activity(arg)
    except Exception as err:
        raise ActivityError("Activity task failed") from err


@resumable.function
async def failing_greeting_workflow(name: str) -> str:
    return await execute_activity(compose_greeting_activity, ComposeGreetingInput("Hello", name))


ARGS = {
    "compose_greeting_child": [((ComposeGreetingInput("Hey", "child"),), {})],
    "greeting_workflow": [(("World",), {})],
    "failing_greeting_workflow": [(("World",), {})],
}
RAISES = (ActivityError,)
