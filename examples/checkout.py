"""The checkout flow from Dispatch's "resumable functions" page, made resumable.

    resumable compile examples/                     # writes examples/__resumable__/checkout.py
    python examples/checkout.py --crash-after-charge   # charges, then the process is killed
    python examples/checkout.py                     # resumes: no second charge
    python examples/checkout.py --new               # a fresh order

Runs live in the embedded store, `.resumable/state.db` in the working
directory. Every await in `checkout` is a checkpoint; the script prints each
one (the state, the source line, the live locals that were saved) and every
side effect, so you can see that a resumed run does not charge the card again.
"""

from __future__ import annotations

import argparse
import os
import signal
import uuid

import resumable

CRASH_AFTER_CHARGE = False


@resumable.function
async def charge_credit_card(user_id: str) -> str:
    print(f"  charging the card of {user_id} (idempotency key {resumable.idempotency_key()})")
    return f"receipt-{user_id}"


@resumable.function
async def send_email_confirmation(user_id: str, order_id: str, receipt_id: str) -> None:
    if CRASH_AFTER_CHARGE:
        print("  ... the process is killed (SIGKILL) before the email is sent")
        os.kill(os.getpid(), signal.SIGKILL)
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
        f"checkpoint {checkpoint.seq} of {checkpoint.run_id}: {checkpoint.function} "
        f"({checkpoint.source}) saved {{{saved}}}"
    )


def main() -> None:
    global CRASH_AFTER_CHARGE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crash-after-charge", action="store_true", help="kill the process")
    parser.add_argument("--new", action="store_true", help="start a new order")
    args = parser.parse_args()
    CRASH_AFTER_CHARGE = args.crash_after_charge
    order_id = f"order-{uuid.uuid4().hex[:6]}" if args.new else "order-456"

    rt = resumable.Runtime(on_checkpoint=show)  # sqlite:///.resumable/state.db
    try:
        before = rt.status(order_id)
    except KeyError:
        before = "new"
    print(f"run {order_id} ({before}) in {rt.url}")
    receipt = rt.run(checkout, "user_123", order_id, run_id=order_id)
    print(f"checkout returned {receipt!r}")


if __name__ == "__main__":
    main()
