# Source: restatedev/examples, python/patterns-use-cases/parallelizework/app.py
#   (FanOutWorker.run: split a task durably, start one durable action per
#   subtask, wait for all with restate.gather, then collect each result with
#   `[await result for result in results_done]` and aggregate).
# Rewritten in the same shape, not copied. Adapted: the handler is a
# decorated module-level function; `ctx`, its futures and `gather` are the
# fakes of tests/realcode/_restate.py; split/execute/aggregate are
# deterministic fakes.
# Constructs: a list comprehension of not-yet-awaited futures, a list
# comprehension whose element awaits, pydantic models.
from pydantic import BaseModel

import resumable
from tests.realcode import _restate as restate
from tests.realcode._restate import Context


class Task(BaseModel):
    description: str


class SubTasks(BaseModel):
    subtasks: list[str]


class Result(BaseModel):
    description: str


def split(task: Task) -> SubTasks:
    return SubTasks(subtasks=task.description.split(","))


def execute_subtask(subtask: str) -> str:
    return subtask.strip().upper()


def aggregate(results: list[str]) -> Result:
    return Result(description=" + ".join(results))


@resumable.function
async def run(ctx: Context, task: Task) -> Result:
    # Split the task into subtasks.
    subtasks = await ctx.run_typed("split task", split, task=task)

    # Fan out: start every subtask.
    result_promises = [
        ctx.run_typed(f"execute {subtask}", execute_subtask, subtask=subtask)
        for subtask in subtasks.subtasks
    ]

    # Fan in: wait for all, then read each result.
    results_done = await restate.gather(*result_promises)
    results = [await result for result in results_done]

    return aggregate(results)


ARGS = {
    "run": [((Context("t1"), Task(description="wash, dry, fold")), {})],
}
