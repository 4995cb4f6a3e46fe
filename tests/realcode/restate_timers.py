# Source: restatedev/examples,
#   python/tutorials/tour-of-orchestration-python/app/timers/service.py
#   (PaymentsWithTimeout.process: start a payment that a webhook confirms
#   through an awakeable; race the confirmation against a 30 s timer with
#   `match await restate.select(...)`; on timeout cancel the payment).
# Rewritten in the same shape, not copied. Adapted: the handler is a
# decorated module-level function; `ctx`, the awakeable, the timer and
# `select` are the fakes of tests/realcode/_restate.py (when the confirmation
# arrives is scripted by the context's events); the payment API is a
# deterministic fake.
# Constructs: `match await ...` with a sequence pattern capturing a value,
# an await inside a case body, a tuple-returning call unpacked into locals.
from datetime import timedelta

from pydantic import BaseModel

import resumable
from tests.realcode import _restate as restate
from tests.realcode._restate import Context


class PaymentRequest(BaseModel):
    amount: int
    currency: str
    customer_id: str
    order_id: str


class PaymentResult(BaseModel):
    success: bool
    transaction_id: str | None = None
    error_message: str | None = None


def init_payment(req: PaymentRequest, payment_id: str, confirmation_id: str) -> str:
    return f"ref-{req.order_id}-{payment_id[:6]}"


def cancel_payment(pay_ref: str) -> None:
    return None


@resumable.function
async def process(ctx: Context, req: PaymentRequest) -> PaymentResult:
    confirmation_id, confirmation_promise = ctx.awakeable(type_hint=PaymentResult)
    payment_id = str(ctx.uuid())

    pay_ref = await ctx.run_typed(
        "pay",
        init_payment,
        req=req,
        payment_id=payment_id,
        confirmation_id=confirmation_id,
    )

    # Whichever comes first: the confirmation or the timeout.
    match await restate.select(
        confirmation=confirmation_promise, timeout=ctx.sleep(timedelta(seconds=30))
    ):
        case ["confirmation", result]:
            return result
        case _:
            await ctx.run_typed("cancel-payment", cancel_payment, pay_ref=pay_ref)
            return PaymentResult(
                success=False, transaction_id=None, error_message="Payment timeout"
            )


_REQ = PaymentRequest(amount=42, currency="EUR", customer_id="c1", order_id="o9")

ARGS = {
    "process": [
        # Confirmed after 5 s.
        (
            (
                Context(
                    "p1",
                    events={"awakeable": (5.0, PaymentResult(success=True, transaction_id="tx-1"))},
                ),
                _REQ,
            ),
            {},
        ),
        # Never confirmed: the timer wins.
        ((Context("p2"), _REQ), {}),
    ],
}
