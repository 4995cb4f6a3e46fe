# Source: dbos-inc/dbos-demo-apps, python/pydantic-research-agent/main.py
#   (deep_research: a durable research agent that publishes its status as a
#   pydantic model through DBOS.set_event_async, plans with one agent, starts
#   one search workflow per planned step, gathers their results with
#   `[await task.get_result() for task in tasks_handles]`, and analyses them).
# Rewritten in the same shape, not copied. Adapted: @DBOS.workflow becomes
# @resumable.function (the search workflow is a child run); the three LLM
# agents, set_event_async, start_workflow_async and format_as_xml are
# deterministic fakes (the planner makes one search per comma-separated part
# of the query); the status timestamp is a fixed string instead of
# datetime.now().
# Constructs: a pydantic model mutated between awaits, handles held in a list
# across awaits, a list comprehension whose element awaits, a for loop over
# an attribute of an awaited result.
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

import resumable
from resumable.testing import step

AGENT_STATUS = "agent_status"


class WebSearchStep(BaseModel):
    search_terms: str


class WebSearchPlan(BaseModel):
    web_search_steps: list[WebSearchStep]
    analysis_instructions: str


class AgentStatus(BaseModel):
    created_at: str
    query: str
    report: str | None
    status: str
    agent_id: str = ""


@dataclass
class RunResult:
    output: Any


@dataclass
class FakeAgent:
    name: str

    async def run(self, prompt: str) -> RunResult:
        n = await step(self.name, prompt)
        if self.name == "plan_agent":
            parts = [p.strip() for p in prompt.split(",")]
            return RunResult(
                WebSearchPlan(
                    web_search_steps=[WebSearchStep(search_terms=p) for p in parts],
                    analysis_instructions="compare the findings",
                )
            )
        return RunResult(f"{self.name}[{n}]: {prompt[:40]}")


dbos_plan_agent = FakeAgent("plan_agent")
dbos_search_agent = FakeAgent("search_agent")
dbos_analysis_agent = FakeAgent("analysis_agent")


async def set_event_async(key: str, value: BaseModel) -> None:
    """Stands for DBOS.set_event_async."""
    await step("set_event", key, value.status, value.report)


@dataclass
class WorkflowHandleAsync:
    fn: Any
    args: tuple

    async def get_result(self) -> Any:
        return await self.fn(*self.args)


async def start_workflow_async(fn: Any, *args: Any) -> WorkflowHandleAsync:
    """Stands for DBOS.start_workflow_async: the child runs when its result is awaited."""
    await step("start_workflow", fn.__name__, *args)
    return WorkflowHandleAsync(fn, args)


def format_as_xml(data: dict) -> str:
    return "".join(f"<{k}>{v}</{k}>" for k, v in data.items())


@resumable.function
async def search_workflow(search_terms: str) -> str:
    result = await dbos_search_agent.run(search_terms)
    return result.output


@resumable.function
async def deep_research(query: str) -> str:
    # A status the frontend can display, updated as the agent goes.
    agent_status = AgentStatus(
        created_at="2025-01-01T00:00:00",
        query=query,
        report=None,
        status="PLANNING",
    )
    await set_event_async(AGENT_STATUS, agent_status)
    result = await dbos_plan_agent.run(query)
    plan = result.output
    tasks_handles: list[WorkflowHandleAsync] = []

    agent_status.status = "SEARCHING"
    await set_event_async(AGENT_STATUS, agent_status)
    for search_step in plan.web_search_steps:
        # Start each search without waiting for it.
        task_handle = await start_workflow_async(search_workflow, search_step.search_terms)
        tasks_handles.append(task_handle)

    search_results = [await task.get_result() for task in tasks_handles]

    agent_status.status = "ANALYZING"
    await set_event_async(AGENT_STATUS, agent_status)
    analysis_result = await dbos_analysis_agent.run(
        format_as_xml(
            {
                "query": query,
                "search_results": search_results,
                "instructions": plan.analysis_instructions,
            }
        ),
    )
    agent_status.report = analysis_result.output
    agent_status.status = "COMPLETED"
    await set_event_async(AGENT_STATUS, agent_status)
    return analysis_result.output


ARGS = {
    "search_workflow": [(("durable execution",), {})],
    "deep_research": [(("durable execution, python coroutines",), {})],
}
