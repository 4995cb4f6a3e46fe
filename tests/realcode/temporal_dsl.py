# Source: temporalio/samples-python, dsl/workflow.py and dsl/workflow2.yaml
#   (DSLWorkflow: an interpreter of a small workflow language -- activity,
#   sequence and parallel statements -- whose `execute_statement` method
#   recurses over the statement tree and keeps the variables on `self`).
# Rewritten in the same shape, not copied. Adapted: the sample's shape is a
# class whose methods recurse through `self`, so the methods themselves are
# decorated (the construct under test); activities are the deterministic fake
# `execute_activity`, which records the call as a step.
# Constructs: @resumable.function on async methods, recursion through self,
# isinstance dispatch, a list comprehension building coroutines for
# asyncio.gather, state held on self across awaits.
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


class DSLWorkflow:
    def __init__(self) -> None:
        self.variables: dict[str, Any] = {}

    @resumable.function
    async def run(self, input: DSLInput) -> dict[str, Any]:
        self.variables = dict(input.variables)
        await self.execute_statement(input.root)
        return self.variables

    @resumable.function
    async def execute_statement(self, stmt: Statement) -> None:
        if isinstance(stmt, ActivityStatement):
            result = await execute_activity(
                stmt.activity.name,
                [self.variables.get(arg, "") for arg in stmt.activity.arguments],
            )
            if stmt.activity.result:
                self.variables[stmt.activity.result] = result
        elif isinstance(stmt, SequenceStatement):
            for elem in stmt.sequence.elements:
                await self.execute_statement(elem)
        elif isinstance(stmt, ParallelStatement):
            await asyncio.gather(
                *[self.execute_statement(branch) for branch in stmt.parallel.branches]
            )


def act(name: str, *arguments: str, result: str | None = None) -> ActivityStatement:
    return ActivityStatement(ActivityInvocation(name, list(arguments), result))


def seq(*elements: Statement) -> SequenceStatement:
    return SequenceStatement(Sequence(list(elements)))


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
    "DSLWorkflow.run": [((DSLWorkflow(), WORKFLOW2), {})],
    "DSLWorkflow.execute_statement": [((DSLWorkflow(), act("activity1", "x", result="y")), {})],
}
