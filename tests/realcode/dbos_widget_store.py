# Source: dbos-inc/dbos-docs, docs/python/examples/widget-store.md
#   (checkout_workflow: create an order, reserve inventory or cancel the
#   order, publish a payment id as an event, wait for the payment status
#   message, then mark the order paid and start dispatch, or undo the
#   reservation and cancel; finally publish the order id).
# Rewritten in the same shape, not copied, as a coroutine workflow (DBOS
# docs: coroutine workflows use the async versions of the context methods).
# Adapted: @DBOS.workflow becomes @resumable.function; DBOS.workflow_id
# becomes the argument `workflow_id`; the transactions, set_event, recv and
# start_workflow are deterministic fakes recording a step (the inventory is
# sold out for "order-soldout"; what the payment page sends comes from a
# module-level table by workflow id); logging is kept.
# Constructs: an early return after an awaited falsy result, if/else on an
# awaited message, Enum .value as a keyword argument, f-strings, str().
import logging
from enum import Enum

import resumable
from resumable.testing import step

logger = logging.getLogger("widget_store")

PAYMENT_ID = "payment_id"
PAYMENT_STATUS = "payment_status"
ORDER_ID = "order_id"

PAYMENTS = {"order-paid": "paid", "order-declined": "failed"}


class OrderStatus(Enum):
    PENDING = 0
    DISPATCHED = 1
    PAID = 2
    CANCELLED = -1


async def run_tx_step(name: str, fn, workflow_id: str, **kwargs):
    """Stands for ds.run_tx_step: one recorded transaction."""
    await step(name, *kwargs.values())
    return fn(workflow_id, **kwargs)


def create_order(workflow_id: str) -> int:
    return 1000 + len(workflow_id)


def reserve_inventory(workflow_id: str) -> bool:
    return workflow_id != "order-soldout"


def undo_reserve_inventory(workflow_id: str) -> None:
    return None


def update_order_status(workflow_id: str, order_id: int, status: int) -> None:
    return None


async def set_event_async(key: str, value: object) -> None:
    await step("set_event", key, value)


async def recv_async(workflow_id: str, topic: str) -> str | None:
    await step("recv", topic)
    return PAYMENTS.get(workflow_id)


async def start_workflow_async(name: str, *args: object) -> None:
    await step("start_workflow", name, *args)


@resumable.function
async def checkout_workflow(workflow_id: str) -> None:
    # Create a new order.
    order_id = await run_tx_step("create_order", create_order, workflow_id)

    # Reserve inventory; cancel the order if none is left.
    inventory_reserved = await run_tx_step("reserve_inventory", reserve_inventory, workflow_id)
    if not inventory_reserved:
        logger.error(f"Failed to reserve inventory for order {order_id}")
        await run_tx_step(
            "update_order_status",
            update_order_status,
            workflow_id,
            order_id=order_id,
            status=OrderStatus.CANCELLED.value,
        )
        await set_event_async(PAYMENT_ID, None)
        return

    # Tell the checkout endpoint where to send the customer to pay.
    await set_event_async(PAYMENT_ID, workflow_id)

    # Wait for the payment page's message.
    payment_status = await recv_async(workflow_id, PAYMENT_STATUS)

    # Paid: mark the order and dispatch it. Otherwise give the inventory back.
    if payment_status == "paid":
        logger.info(f"Payment successful for order {order_id}")
        await run_tx_step(
            "update_order_status",
            update_order_status,
            workflow_id,
            order_id=order_id,
            status=OrderStatus.PAID.value,
        )
        await start_workflow_async("dispatch_order_workflow", order_id)
    else:
        logger.warning(f"Payment failed for order {order_id}")
        await run_tx_step("undo_reserve_inventory", undo_reserve_inventory, workflow_id)
        await run_tx_step(
            "update_order_status",
            update_order_status,
            workflow_id,
            order_id=order_id,
            status=OrderStatus.CANCELLED.value,
        )

    # Tell the payment endpoint which order to show.
    await set_event_async(ORDER_ID, str(order_id))


ARGS = {
    "checkout_workflow": [
        (("order-paid",), {}),
        (("order-declined",), {}),
        (("order-soldout",), {}),
    ],
}
