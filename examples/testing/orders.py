"""An order pipeline, the worked example of docs/testing.md.

`place_order` reserves stock for each item, charges the total, waits a day
before shipping (a durable timer), and releases the stock if the charge
fails. The steps are plain coroutines standing for services; the tests in
test_orders.py property-test the compiled function against this source.
"""

from __future__ import annotations

from dataclasses import dataclass

import resumable


@dataclass
class Item:
    sku: str
    qty: int
    price: int  # cents


async def reserve(sku: str, qty: int) -> str:
    return f"res-{sku}-{qty}"


async def release(reservation: str) -> None:
    return None


async def charge(order_id: str, cents: int, key: str) -> str:
    if cents > 1_000_000:
        raise PaymentDeclined(order_id, cents)
    return f"rcpt-{order_id}"


async def ship(order_id: str, reservations: list[str]) -> str:
    return f"ship-{order_id}-{len(reservations)}"


class PaymentDeclined(Exception):
    pass


@resumable.function(
    retry=resumable.Retry(max_attempts=4, initial_delay=0.5, non_retryable=(PaymentDeclined,))
)
async def place_order(order_id: str, items: list[Item], express: bool = False) -> dict:
    reservations = []
    total = 0
    for item in items:
        if item.qty <= 0:
            continue
        reservations.append(await reserve(item.sku, item.qty))
        total += item.qty * item.price
    try:
        receipt = await charge(order_id, total, resumable.idempotency_key())
    except PaymentDeclined:
        for reservation in reservations:
            await release(reservation)
        return {"order": order_id, "status": "declined", "total": total}
    if not express:
        await resumable.sleep(86400)  # ship tomorrow
    tracking = await ship(order_id, reservations)
    return {"order": order_id, "status": "shipped", "receipt": receipt, "tracking": tracking}
