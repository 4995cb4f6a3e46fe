# Source: dbos-inc/dbos-docs, docs/python/reference/queues.md
#   ("enqueue_async" example: a workflow enqueues one async step per task so
#   they run concurrently, keeps the handles, and returns
#   `[await handle.get_result() for handle in task_handles]`).
# Rewritten in the same shape, not copied. Adapted: @DBOS.workflow and
# @DBOS.step become @resumable.function; the queue is a deterministic fake
# whose `enqueue_async` records the enqueue as a step and returns a handle
# (a dataclass, so it can be held across awaits) whose `get_result` awaits the
# step as a child run.
# Constructs: handles collected in a loop across awaits, a list
# comprehension whose element awaits a method call.
from dataclasses import dataclass
from typing import Any

import resumable
from resumable.testing import step


@dataclass
class WorkflowHandle:
    fn: Any
    args: tuple = ()

    async def get_result(self) -> Any:
        return await self.fn(*self.args)


@dataclass
class Queue:
    name: str

    async def enqueue_async(self, fn: Any, *args: Any) -> WorkflowHandle:
        await step("enqueue", self.name, fn.__name__, *args)
        return WorkflowHandle(fn, args)


queue = Queue("example_queue")


@resumable.function
async def process_task_async(task: str) -> str:
    n = await step("process", task)
    return f"{task}: {n}"


@resumable.function
async def process_tasks(tasks: list[str]) -> list[str]:
    task_handles = []
    # Enqueue every task so that they run concurrently.
    for task in tasks:
        handle = await queue.enqueue_async(process_task_async, task)
        task_handles.append(handle)
    # Then wait for each result, in order.
    return [await handle.get_result() for handle in task_handles]


ARGS = {
    "process_task_async": [(("one",), {})],
    "process_tasks": [((["one", "two", "three"],), {})],
}
