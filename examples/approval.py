"""Charge, wait up to three days for a human to approve, refund if nobody does.

    resumable compile examples/
    python examples/approval.py start order-7 &      # charges, then waits for approval
    kill -9 %1                                       # the waiting process dies
    python examples/approval.py start order-7 &      # waits again: no second charge
    python examples/approval.py approve order-7 ann  # another process sends the event
                                                     # -> the first one ships, and prints it

`start` runs the flow in this process and returns its result. While it waits,
the run is a row in the store (`.resumable/state.db`) with its deadline; the
process only looks at that row (once a second), so killing it loses nothing.
`approve` sends the "approved" event from any process (so does `resumable
runs send-event order-7 approved '"ann"'`), also before the run waits. A
worker (`resumable worker --module approval`, from examples/) would drive
the run instead, holding no task for it while it waits.
`python examples/approval.py timeout order-8` shows the other path: its
approval window is 2 s, nobody approves, and the charge is refunded.
"""

from __future__ import annotations

import argparse
import sys

import resumable

#: How long a human has to approve (the `timeout` command makes it 2 s).
APPROVAL_WINDOW = 3 * 86400


@resumable.function
async def charge(order_id: str) -> str:
    print(f"  charging {order_id} (idempotency key {resumable.idempotency_key()})")
    return f"receipt-{order_id}"


@resumable.function
async def refund(receipt: str) -> None:
    print(f"  refunding {receipt}")


@resumable.function
async def ship(order_id: str, approver: str) -> None:
    print(f"  shipping {order_id}, approved by {approver}")


@resumable.function
async def approval(order_id: str) -> str:
    receipt = await charge(order_id)
    try:
        approver = await resumable.wait_event("approved", timeout=APPROVAL_WINDOW)
    except TimeoutError:
        await refund(receipt)
        return "refunded"
    await ship(order_id, approver)
    return f"shipped (approved by {approver})"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "approve", "timeout"])
    parser.add_argument("order_id")
    parser.add_argument("approver", nargs="?", default="someone")
    args = parser.parse_args(argv)
    if args.command == "approve":
        with resumable.Runtime() as rt:
            try:
                rt.send_event(args.order_id, "approved", args.approver)
            except (LookupError, ValueError) as e:
                print(e, file=sys.stderr)
                return 1
        print(f"sent 'approved' to {args.order_id}")
        return 0
    if args.command == "timeout":
        global APPROVAL_WINDOW
        APPROVAL_WINDOW = 2
        with resumable.Runtime() as rt:
            print(f"{args.order_id}: {rt.run(approval, args.order_id, run_id=args.order_id)}")
        return 0
    with resumable.Runtime() as rt:
        print(f"{args.order_id}: {rt.run(approval, args.order_id, run_id=args.order_id)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
