# Source: restatedev/examples, python/basics/app/0_durable_execution.py
#   (SubscriptionService.add: create a recurring payment with an idempotency
#   key, then one subscription per item, each action a durable step).
# Rewritten in the same shape, not copied. Adapted: the handler is a
# decorated module-level function; `ctx` is the deterministic fake context of
# tests/realcode/_restate.py, whose `run_typed` records each action as a step;
# the payment and subscription APIs are deterministic fakes.
# Constructs: a pydantic model argument, str(uuid) from the context, keyword
# arguments to an awaited call, a for loop whose body awaits.
from pydantic import BaseModel

import resumable
from tests.realcode._restate import Context


class SubscriptionRequest(BaseModel):
    user_id: str
    credit_card: str
    subscriptions: list[str]


def create_recurring_payment(credit_card: str, payment_id: str) -> str:
    return f"payment-reference-{credit_card[-4:]}-{payment_id[:8]}"


def create_subscription(user_id: str, subscription: str, payment_ref: str) -> str:
    return "SUCCESS"


@resumable.function
async def add(ctx: Context, req: SubscriptionRequest):
    # The context gives a stable idempotency key for the payment.
    payment_id = str(ctx.uuid())

    pay_ref = await ctx.run_typed(
        "recurring payment",
        create_recurring_payment,
        credit_card=req.credit_card,
        payment_id=payment_id,
    )

    for subscription in req.subscriptions:
        await ctx.run_typed(
            "subscription",
            create_subscription,
            user_id=req.user_id,
            subscription=subscription,
            payment_ref=pay_ref,
        )


ARGS = {
    "add": [
        (
            (
                Context("sam"),
                SubscriptionRequest(
                    user_id="Sam Beckett",
                    credit_card="1234-5678-9012-3456",
                    subscriptions=["Netflix", "Disney+", "HBO Max"],
                ),
            ),
            {},
        ),
    ],
}
