"""The checkout flow from Dispatch's "resumable functions" page, made resumable.

    resumable compile examples/       # writes examples/__resumable__/checkout.py
    python examples/checkout.py       # runs checkout through its state machine

Every await in `checkout` is a checkpoint; this script prints each one (the
state, the source line, and the live locals that were saved).
"""

from __future__ import annotations

import resumable


@resumable.function
async def charge_credit_card(user_id: str) -> str:
    print(f"  charging the card of {user_id}")
    return f"receipt-{user_id}"


@resumable.function
async def send_email_confirmation(user_id: str, order_id: str, receipt_id: str) -> None:
    print(f"  emailing {user_id}: order {order_id} paid ({receipt_id})")


@resumable.function
async def mark_order_as_completed(order_id: str) -> None:
    print(f"  order {order_id} completed")


@resumable.function
async def checkout(user_id: str, order_id: str) -> str:
    receipt_id = await charge_credit_card(user_id)
    await send_email_confirmation(user_id, order_id, receipt_id)
    await mark_order_as_completed(order_id)
    return receipt_id


def show(checkpoint: resumable.CheckpointInfo) -> None:
    saved = ", ".join(f"{k}={v!r}" for k, v in checkpoint.locals.items())
    print(
        f"checkpoint {checkpoint.seq}: {checkpoint.function} state {checkpoint.state} "
        f"({checkpoint.source}) saved {{{saved}}}"
    )


def main() -> None:
    rt = resumable.Runtime("memory://", on_checkpoint=show)
    receipt = rt.run(checkout, "user_123", "order_456", run_id="order-456")
    print(f"checkout returned {receipt!r}")


if __name__ == "__main__":
    main()
