# Source: restatedev/examples,
#   python/end-to-end-applications/chat-bot/backend/backend/utils/command_router.py
#   (execute_command: `match` on the action a chat command asks for --
#   create, cancel, list or status of a task workflow -- with awaits inside
#   the cases, all wrapped in a try that turns any failure into a
#   TerminalError naming the command).
# Rewritten in the same shape, not copied. Adapted: execute_command is
# decorated; `ctx` is the fake context of tests/realcode/_restate.py; the
# helpers that start, cancel and query task workflows are plain coroutines
# recording a step (the task types are a module-level table, as in the
# sample); the SDK's SuspendedException is a local class.
# Constructs: `match` on an Enum attribute with awaits in case bodies,
# `raise` inside a case caught by the enclosing `except Exception as e`,
# raising a new exception in a handler (implicit __context__), pydantic
# model_copy/model_dump, json.dumps in f-strings, `del` of a dict item.
import json
from enum import Enum
from typing import Any

from pydantic import BaseModel

import resumable
from resumable.testing import step
from tests.realcode._restate import Context, TerminalError


class SuspendedException(Exception):
    """Stands for restate.vm.SuspendedException."""


class Action(Enum):
    CREATE = "create"
    CANCEL = "cancel"
    LIST = "list"
    STATUS = "status"
    OTHER = "other"


class TaskOpts(BaseModel):
    task_name: str
    task_type: str
    params: dict[str, Any] | None


class GptTaskCommand(BaseModel):
    action: Action
    message: str
    task_name: str | None = None
    task_type: str | None = None
    params: dict[str, Any]


class RunningTask(BaseModel):
    task_name: str
    task_id: str
    task_type: str
    params: dict


class ActiveTasks(BaseModel):
    tasks: dict[str, RunningTask] = {}


class CommandResult(BaseModel):
    new_active_tasks: ActiveTasks = ActiveTasks()
    task_message: str | None = None


TASK_TYPES = {"reminder": "ReminderTask", "flight_price": "FlightPriceWatcher"}


async def start_task(ctx: Context, session_id: str, task_opts: TaskOpts) -> str:
    service = TASK_TYPES.get(task_opts.task_type)
    if not service:
        raise ValueError(f"Unknown task type: {task_opts.task_type}")
    task_id = str(ctx.uuid())
    await step("start_task", service, task_opts.task_name, session_id)
    return task_id


async def cancel_task(ctx: Context, task_type: str, task_id: str) -> None:
    service = TASK_TYPES.get(task_type)
    if not service:
        raise ValueError(f"Unknown task type: {task_type}")
    await step("cancel_task", service, task_id)


async def get_task_status(ctx: Context, task_type: str, workflow_id: str) -> Any:
    service = TASK_TYPES.get(task_type)
    if not service:
        raise ValueError(f"Unknown task type: {task_type}")
    n = await step("get_task_status", service, workflow_id)
    return {"status": "running", "checks": n}


@resumable.function
async def execute_command(
    ctx: Context,
    session_id: str,
    active_tasks: ActiveTasks,
    command: GptTaskCommand,
) -> CommandResult:
    try:
        match command.action:
            case Action.CREATE:
                task_opts = TaskOpts(**command.model_dump())
                if task_opts.task_name in active_tasks.tasks:
                    raise TerminalError(f"Task with name {task_opts.task_name} already exists.")
                task_id = await start_task(ctx, session_id, task_opts)
                new_active_tasks = active_tasks.model_copy()
                new_active_tasks.tasks[task_opts.task_name] = RunningTask(
                    task_id=task_id, **command.model_dump()
                )
                return CommandResult(
                    new_active_tasks=new_active_tasks,
                    task_message=f"The task '{task_opts.task_name}' of type {task_opts.task_type} "
                    f"has been created: {json.dumps(task_opts.params, indent=4)}",
                )
            case Action.CANCEL:
                task = active_tasks.tasks.get(command.task_name)
                if task is None:
                    return CommandResult(
                        task_message=f"No task with name '{command.task_name}' is currently active."
                    )
                await cancel_task(ctx, task.task_type, task.task_id)
                new_active_tasks = active_tasks.model_copy()
                del new_active_tasks.tasks[command.task_name]
                return CommandResult(
                    new_active_tasks=new_active_tasks,
                    task_message=f"Removed task '{command.task_name}'",
                )
            case Action.LIST:
                return CommandResult(
                    task_message="tasks = " + active_tasks.model_dump_json(indent=4)
                )
            case Action.STATUS:
                task = active_tasks.tasks.get(command.task_name)
                if task is None:
                    return CommandResult(
                        task_message=f"No task with name '{command.task_name}' is currently active."
                    )
                status = await get_task_status(ctx, task.task_type, task.task_id)
                return CommandResult(
                    task_message=f"{command.task_name}.status = {json.dumps(status, indent=4)}"
                )
            case Action.OTHER:
                return CommandResult()
            case _:
                raise ValueError("Unknown action type")
    except Exception as e:
        if not isinstance(e, SuspendedException):
            raise TerminalError(f"Failed to interpret command: {e!s}\nCommand:\n{command}")
        else:
            raise e


def _tasks() -> ActiveTasks:
    return ActiveTasks(
        tasks={
            "walk": RunningTask(
                task_name="walk", task_id="t-1", task_type="reminder", params={"at": "9am"}
            )
        }
    )


def _command(action: Action, name: str | None, kind: str | None = None) -> GptTaskCommand:
    return GptTaskCommand(
        action=action, message="...", task_name=name, task_type=kind, params={"every": "day"}
    )


ARGS = {
    "execute_command": [
        ((Context("c1"), "session-1", _tasks(), _command(Action.CREATE, "lunch", "reminder")), {}),
        ((Context("c2"), "session-1", _tasks(), _command(Action.CREATE, "walk", "reminder")), {}),
        ((Context("c3"), "session-1", _tasks(), _command(Action.CREATE, "fly", "teleport")), {}),
        ((Context("c4"), "session-1", _tasks(), _command(Action.CANCEL, "walk")), {}),
        ((Context("c5"), "session-1", _tasks(), _command(Action.STATUS, "walk")), {}),
        ((Context("c6"), "session-1", _tasks(), _command(Action.STATUS, "nothing")), {}),
        ((Context("c7"), "session-1", _tasks(), _command(Action.LIST, None)), {}),
    ],
}
RAISES = (TerminalError,)
