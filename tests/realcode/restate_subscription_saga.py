# Source: restatedev/examples,
#   python/tutorials/tour-of-orchestration-python/app/sagas/service.py
#   (SubscriptionSaga.add: register an undo for the payment, pay, then for
#   each subscription register an undo -- a lambda with a default argument
#   capturing the loop variable -- and subscribe; on a TerminalError undo in
#   reverse order and re-raise).
# Rewritten in the same shape, not copied. Adapted: the handler is a
# decorated module-level function; `ctx` is the fake context of
# tests/realcode/_restate.py; the APIs are deterministic fakes (as in the
# tutorial, the "Disney" subscription fails terminally).
# Constructs: lambdas reading locals (`ctx`, `payment_id`, `req`), a lambda
# default argument binding the loop variable, a list of lambdas live across
# awaits, f-strings in step names.
from pydantic import BaseModel

import resumable
from tests.realcode._restate import Context, TerminalError


class SubscriptionRequest(BaseModel):
    user_id: str
    credit_card: str
    subscriptions: list[str]


def create_recurring_payment(credit_card: str, payment_id: str) -> str:
    return f"payRef-{payment_id[:8]}"


def remove_recurring_payment(payment_id: str) -> None:
    return None


def create_subscription(user_id: str, subscription: str, payment_ref: str) -> str:
    if subscription == "Disney":
        raise TerminalError("Disney subscription is not available in this region")
    return "SUCCESS"


def remove_subscription(user_id: str, subscription: str) -> None:
    return None


@resumable.function
async def add(ctx: Context, req: SubscriptionRequest) -> None:
    compensations = []

    try:
        payment_id = str(ctx.uuid())

        # The undo for the payment comes first.
        compensations.append(
            lambda: ctx.run_typed("undo-pay", remove_recurring_payment, payment_id=payment_id)
        )

        pay_ref = await ctx.run_typed(
            "pay",
            create_recurring_payment,
            credit_card=req.credit_card,
            payment_id=payment_id,
        )

        for subscription in req.subscriptions:
            # The default argument pins this iteration's subscription.
            compensations.append(
                lambda s=subscription: ctx.run_typed(
                    f"undo-{s}",
                    remove_subscription,
                    user_id=req.user_id,
                    subscription=s,
                )
            )

            await ctx.run_typed(
                f"add-{subscription}",
                create_subscription,
                user_id=req.user_id,
                subscription=subscription,
                payment_ref=pay_ref,
            )

    except TerminalError as e:
        for compensation in reversed(compensations):
            await compensation()
        raise e


ARGS = {
    "add": [
        (
            (
                Context("s1"),
                SubscriptionRequest(
                    user_id="lee", credit_card="1111", subscriptions=["Netflix", "HBO"]
                ),
            ),
            {},
        ),
        (
            (
                Context("s2"),
                SubscriptionRequest(
                    user_id="kim", credit_card="2222", subscriptions=["Netflix", "Disney", "HBO"]
                ),
            ),
            {},
        ),
    ],
}
RAISES = (TerminalError,)
