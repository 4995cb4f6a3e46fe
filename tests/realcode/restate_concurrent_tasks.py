# Source: restatedev/examples,
#   python/tutorials/tour-of-orchestration-python/app/concurrenttasks/service.py
#   (ParallelSubscriptionService.add: pay, then start one durable action per
#   subscription without awaiting it, and wait for all with restate.gather).
# Rewritten in the same shape, not copied. Adapted: the handler is a
# decorated module-level function; `ctx`, its durable futures and `gather`
# are the fakes of tests/realcode/_restate.py (a future is a dataclass, so
# the list of started actions can be held across the await); the APIs are
# deterministic fakes; the models keep the sample's camelCase alias config.
# Constructs: futures created in a loop and held in a list across an await,
# `await gather(*list)`, pydantic models with model_config, f-string step names.
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

import resumable
from tests.realcode import _restate as restate
from tests.realcode._restate import Context


class SubscriptionRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, alias_generator=to_camel)

    user_id: str
    credit_card: str
    subscriptions: list[str]


class SubscriptionResult(BaseModel):
    model_config = ConfigDict(populate_by_name=True, alias_generator=to_camel)

    success: bool
    payment_ref: str


def create_recurring_payment(credit_card: str, payment_id: str) -> str:
    return f"payRef-{payment_id}"


def create_subscription(user_id: str, subscription: str, payment_ref: str) -> str:
    return "SUCCESS"


@resumable.function
async def add(ctx: Context, req: SubscriptionRequest) -> SubscriptionResult:
    payment_id = str(ctx.uuid())

    pay_ref = await ctx.run_typed(
        "pay",
        create_recurring_payment,
        credit_card=req.credit_card,
        payment_id=payment_id,
    )

    # Start every subscription at once.
    subscription_tasks = []
    for subscription in req.subscriptions:
        task = ctx.run_typed(
            f"add-{subscription}",
            create_subscription,
            user_id=req.user_id,
            subscription=subscription,
            payment_ref=pay_ref,
        )
        subscription_tasks.append(task)

    # Wait for all of them.
    await restate.gather(*subscription_tasks)

    return SubscriptionResult(success=True, payment_ref=pay_ref)


ARGS = {
    "add": [
        (
            (
                Context("alice"),
                SubscriptionRequest(
                    userId="alice", creditCard="4242", subscriptions=["Netflix", "Disney", "HBO"]
                ),
            ),
            {},
        ),
    ],
}
