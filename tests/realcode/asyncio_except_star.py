# Source: python/cpython, Doc/library/asyncio-task.rst ("Terminating a Task
#   Group": jobs spawned in a TaskGroup, a task that raises a private
#   exception to stop the group, caught with `except*`),
#   https://docs.python.org/3/library/asyncio-task.html#terminating-a-task-group
# Rewritten in the same shape, not copied. Adapted: main is decorated and
# returns what the jobs reported; print and asyncio.sleep are recorded
# steps (a sleep of t seconds yields to the loop 2*t times, so the jobs and
# the terminating task interleave deterministically: job 1 finishes, job 2 is
# cancelled).
# Constructs: `try`/`except*` around an `async with` TaskGroup whose body
# awaits, a task created after an await inside the group.
import asyncio

import resumable
from resumable.testing import step


class TerminateTaskGroup(Exception):
    """Raised to terminate a task group."""


async def say(text: str) -> None:
    await step("print", text)


async def sleep(seconds: float) -> None:
    await step("sleep", seconds)
    for _ in range(int(seconds * 2)):
        await asyncio.sleep(0)


async def force_terminate_task_group() -> None:
    raise TerminateTaskGroup()


async def job(task_id: int, sleep_time: float) -> None:
    await say(f"Task {task_id}: start")
    await sleep(sleep_time)
    await say(f"Task {task_id}: done")


@resumable.function
async def main() -> str:
    try:
        async with asyncio.TaskGroup() as group:
            # Spawn some tasks.
            group.create_task(job(1, 0.5))
            group.create_task(job(2, 1.5))
            # Sleep for 1 second.
            await sleep(1)
            # Add a task that raises, forcing the group to terminate.
            group.create_task(force_terminate_task_group())
    except* TerminateTaskGroup:
        pass
    return "terminated"


ARGS = {"main": [((), {})]}
