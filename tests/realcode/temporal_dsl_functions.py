# Source: temporalio/samples-python, dsl/workflow.py and dsl/workflow1.yaml,
#   dsl/workflow2.yaml (the DSL interpreter; see temporal_dsl.py for the
#   method-shaped version).
# Rewritten, not copied, as module-level functions so that the recursion
# itself is compiled today: `execute_statement(stmt, variables)` returns the
# bindings it made instead of writing them to `self.variables` (a child run's
# arguments are copies, so a shared dict could not carry them back); each
# parallel branch sees the variables bound before the parallel block.
# Activities are the deterministic fake `execute_activity` (a recorded step).
# Constructs: recursion (a decorated function awaiting itself), child runs
# fanned out with asyncio.gather over a list comprehension, isinstance
# dispatch, dict unpacking, dataclasses with forward references.
from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

import resumable
from resumable.testing import step


@dataclass
class ActivityInvocation:
    name: str
    arguments: list[str] = dataclasses.field(default_factory=list)
    result: str | None = None


@dataclass
class ActivityStatement:
    activity: ActivityInvocation


@dataclass
class Sequence:
    elements: list[Statement]


@dataclass
class SequenceStatement:
    sequence: Sequence


@dataclass
class Parallel:
    branches: list[Statement]


@dataclass
class ParallelStatement:
    parallel: Parallel


Statement = ActivityStatement | SequenceStatement | ParallelStatement


@dataclass
class DSLInput:
    root: Statement
    variables: dict[str, Any] = dataclasses.field(default_factory=dict)


async def execute_activity(name: str, args: list[str]) -> str:
    await step(name, *args)
    return f"[result from {name}: {' '.join(args)}]"


@resumable.function
async def run_dsl(input: DSLInput) -> dict[str, Any]:
    variables = dict(input.variables)
    variables.update(await execute_statement(input.root, variables))
    return variables


@resumable.function
async def execute_statement(stmt: Statement, variables: dict[str, Any]) -> dict[str, Any]:
    if isinstance(stmt, ActivityStatement):
        result = await execute_activity(
            stmt.activity.name,
            [variables.get(arg, "") for arg in stmt.activity.arguments],
        )
        return {stmt.activity.result: result} if stmt.activity.result else {}
    elif isinstance(stmt, SequenceStatement):
        bound: dict[str, Any] = {}
        for elem in stmt.sequence.elements:
            bound.update(await execute_statement(elem, {**variables, **bound}))
        return bound
    elif isinstance(stmt, ParallelStatement):
        results = await asyncio.gather(
            *[execute_statement(branch, variables) for branch in stmt.parallel.branches]
        )
        bound = {}
        for r in results:
            bound.update(r)
        return bound
    raise TypeError(f"unknown statement {stmt!r}")


def act(name: str, *arguments: str, result: str | None = None) -> ActivityStatement:
    return ActivityStatement(ActivityInvocation(name, list(arguments), result))


def seq(*elements: Statement) -> SequenceStatement:
    return SequenceStatement(Sequence(list(elements)))


# dsl/workflow1.yaml: three activities in sequence.
WORKFLOW1 = DSLInput(
    root=seq(
        act("activity1", "arg1", result="result1"),
        act("activity2", "result1", result="result2"),
        act("activity3", "arg2", "result2", result="result3"),
    ),
    variables={"arg1": "value1", "arg2": "value2"},
)

# dsl/workflow2.yaml: activity1, then two sequences in parallel, then activity3.
WORKFLOW2 = DSLInput(
    root=seq(
        act("activity1", "arg1", result="result1"),
        ParallelStatement(
            Parallel(
                [
                    seq(
                        act("activity2", "result1", result="result2"),
                        act("activity3", "arg2", "result2", result="result3"),
                    ),
                    seq(
                        act("activity4", "result1", result="result4"),
                        act("activity5", "arg3", "result4", result="result5"),
                    ),
                ]
            )
        ),
        act("activity3", "result3", "result5", result="result6"),
    ),
    variables={"arg1": "value1", "arg2": "value2", "arg3": "value3"},
)

ARGS = {
    "run_dsl": [((WORKFLOW1,), {}), ((WORKFLOW2,), {})],
    "execute_statement": [((act("activity4", "a", result="r"), {"a": "A"}), {})],
}
