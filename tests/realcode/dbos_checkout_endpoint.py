# Source: dbos-inc/dbos-docs, docs/python/tutorials/workflow-communication.md
#   (checkout_endpoint: start the checkout workflow under
#   `with SetWorkflowID(idempotency_key):`, then wait for the payment id event
#   it publishes and fail with a 404 when there is none).
# Rewritten in the same shape, not copied, with the async versions of the
# DBOS calls (start_workflow_async, get_event_async), as the DBOS docs ask of
# coroutine code. Adapted: the endpoint is decorated; SetWorkflowID is a
# deterministic fake context manager setting a module-level workflow id;
# the checkout workflow and the event store are fakes recording steps (the
# workflow publishes no payment id for "sold-out" keys); HTTPException and
# Response are local classes.
# Constructs: a plain `with` whose body awaits, an await after it reading the
# handle made inside it, raise with keyword arguments.
from dataclasses import dataclass

import resumable
from resumable.testing import step

PAYMENT_ID = "payment_id"
EVENTS: dict[tuple[str, str], str] = {}
CURRENT_WORKFLOW_ID = [None]


def reset() -> None:
    EVENTS.clear()
    CURRENT_WORKFLOW_ID[0] = None


class HTTPException(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail


@dataclass
class Response:
    content: str


class SetWorkflowID:
    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id

    def __enter__(self) -> "SetWorkflowID":
        self.previous = CURRENT_WORKFLOW_ID[0]
        CURRENT_WORKFLOW_ID[0] = self.workflow_id
        return self

    def __exit__(self, *exc: object) -> None:
        CURRENT_WORKFLOW_ID[0] = self.previous


@dataclass
class WorkflowHandle:
    workflow_id: str


async def checkout_workflow() -> None:
    workflow_id = CURRENT_WORKFLOW_ID[0]
    if not workflow_id.startswith("sold-out"):
        EVENTS[(workflow_id, PAYMENT_ID)] = f"pay-{workflow_id}"


async def start_workflow_async(fn) -> WorkflowHandle:
    workflow_id = CURRENT_WORKFLOW_ID[0]
    await step("start_workflow", fn.__name__, workflow_id)
    await fn()
    return WorkflowHandle(workflow_id)


async def get_event_async(workflow_id: str, key: str) -> str | None:
    await step("get_event", workflow_id, key)
    return EVENTS.get((workflow_id, key))


@resumable.function
async def checkout_endpoint(idempotency_key: str) -> Response:
    # Start the checkout workflow at most once per idempotency key.
    with SetWorkflowID(idempotency_key):
        handle = await start_workflow_async(checkout_workflow)
    # Wait for the workflow to publish a payment id, then return it.
    payment_id = await get_event_async(handle.workflow_id, PAYMENT_ID)
    if payment_id is None:
        raise HTTPException(status_code=404, detail="Checkout failed to start")
    return Response(payment_id)


ARGS = {"checkout_endpoint": [(("key-1",), {}), (("sold-out-2",), {})]}
RAISES = (HTTPException,)
