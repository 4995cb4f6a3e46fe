"""The checkout flow of examples/checkout.py behind a FastAPI app, with the
worker in the app's process (resumable.fastapi).

    cd examples/fastapi_checkout
    resumable compile .                # writes __resumable__/app.py
    python -m uvicorn app:app          # store: $RESUMABLE_STORE, else .resumable/state.db

    curl -X POST localhost:8000/buy -H 'content-type: application/json' \\
         -d '{"user_id": "user_123", "order_id": "order-456"}'
    curl 'localhost:8000/orders/order-456?wait=10'

`POST /buy` dispatches `checkout(user_id, order_id)` with the order id as
run id and answers at once (202, {"run_id": ...}); the in-app worker drives
the run. Sending the same order again answers the same run; the same order
id with other arguments answers 409. The mail server is down for the first
two attempts of every confirmation email (a simulated outage), so every
order goes through retries. Kill the server at any moment and start it
again: the order completes, and a card that was charged is not charged again.

Side effects are written to files in $CHECKOUT_DATA (default
`.resumable/checkout/` in the working directory): `charges.log` (one line per
charge), `emails.log`, `completed.log`, and `attempts/` (the email attempts
so far, per idempotency key, so that a restarted server does not fail the
email twice more). `CHECKOUT_SLOW_EMAIL=seconds` delays each email attempt
(to kill the server while it is sent). With `CHECKOUT_API_TOKEN` set, the
runs API of resumable.fastapi is served under /resumable too.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

import resumable
from resumable.fastapi import Resumable, ResumableAPI
from resumable.ids import check_run_id


def data_folder() -> Path:
    folder = Path(os.environ.get("CHECKOUT_DATA") or os.path.join(".resumable", "checkout"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def record(name: str, line: str) -> None:
    with open(data_folder() / name, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def next_attempt(key: str) -> int:
    """Count an attempt of the step with idempotency key `key`, durably."""
    folder = data_folder() / "attempts"
    folder.mkdir(exist_ok=True)
    path = folder / hashlib.sha256(key.encode()).hexdigest()[:32]
    count = int(path.read_text() or 0) + 1 if path.exists() else 1
    path.write_text(str(count))
    return count


class MailServerDown(ConnectionError):
    """The simulated outage: retried, as any ConnectionError."""


@resumable.function
async def charge_credit_card(user_id: str, order_id: str) -> str:
    key = resumable.idempotency_key()  # what a payment API would dedupe on
    record("charges.log", f"{order_id} {user_id} {key}")
    return f"receipt-{order_id}"


async def mail_delay() -> None:
    """$CHECKOUT_SLOW_EMAIL seconds, read when the await runs: resumed after a
    restart, the await asks the process it runs in (a delay read in the
    decorated function before the await would be part of its checkpoint)."""
    await asyncio.sleep(float(os.environ.get("CHECKOUT_SLOW_EMAIL") or 0))


@resumable.function(retry=resumable.Retry(max_attempts=5, initial_delay=0.2, max_delay=2.0))
async def send_email_confirmation(user_id: str, order_id: str, receipt_id: str) -> None:
    await mail_delay()
    attempt = next_attempt(resumable.idempotency_key())
    if attempt <= 2:
        raise MailServerDown(f"mail server unavailable (attempt {attempt} for {order_id})")
    record("emails.log", f"{order_id} {user_id} {receipt_id} attempt {attempt}")


@resumable.function
async def mark_order_as_completed(order_id: str) -> None:
    record("completed.log", order_id)


@resumable.function
async def checkout(user_id: str, order_id: str) -> str:
    receipt_id = await charge_credit_card(user_id, order_id)
    await send_email_confirmation(user_id, order_id, receipt_id)
    await mark_order_as_completed(order_id)
    return receipt_id


app = FastAPI(title="checkout")
token = os.environ.get("CHECKOUT_API_TOKEN")
api = ResumableAPI(functions={"checkout": checkout}, token=token) if token else None
durable = Resumable(app, api=api)  # the store: $RESUMABLE_STORE, else .resumable/state.db

#: Bodies beyond this are refused (413) before they are parsed.
MAX_BODY = 64 * 1024


@app.middleware("http")
async def limit_body(request: Request, call_next: Any) -> Any:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return _json(413, {"detail": f"the body is larger than {MAX_BODY} bytes"})
    return await call_next(request)


@app.exception_handler(RequestValidationError)
async def invalid_body(request: Request, exc: RequestValidationError) -> Response:
    """422 naming what is wrong, without echoing the input back (FastAPI's
    own handler echoes it, and fails with a 500 on text JSON may carry but
    UTF-8 cannot: a lone surrogate)."""
    errors = [
        {"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()
    ]
    return _json(422, {"detail": errors})


def _json(status: int, content: Any) -> Response:
    body = json.dumps(content, ensure_ascii=True, default=str)  # \uXXXX escapes: always valid
    return Response(body, status_code=status, media_type="application/json")


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    user_id: Annotated[str, Field(min_length=1, max_length=200)]
    order_id: str


def check_order_id(order_id: str) -> None:
    try:
        check_run_id(order_id)
    except (TypeError, ValueError) as e:
        raise HTTPException(422, f"order_id: {e}") from None


@app.post("/buy", status_code=202)
def buy(order: Order) -> dict[str, str]:
    """Start the checkout of an order (a sync handler: FastAPI runs it in a
    thread, where the store's write does not hold up the event loop)."""
    check_order_id(order.order_id)
    try:
        run_id = checkout.dispatch(order.user_id, order.order_id, run_id=order.order_id)
    except resumable.RunConflict as e:
        raise HTTPException(409, f"order {order.order_id!r} exists with other details: {e}")
    return {"run_id": run_id}


@app.get("/orders/{order_id}")
async def order_status(order_id: str, wait: Annotated[float, Query(ge=0, le=30)] = 0) -> Any:
    """The order's status, and its receipt once completed; `?wait=seconds`
    waits that long for it to end first (the run goes on either way)."""
    check_order_id(order_id)
    rt = durable.runtime
    run = await rt.store.io(rt.store.get, order_id)
    if run is None or run.function != checkout.function_id:
        raise HTTPException(404, f"no order {order_id!r}")
    if wait:
        try:
            await rt.wait(order_id, timeout=wait)
        except TimeoutError:
            pass  # still going: its status says so
        except Exception:
            pass  # failed: its status and reason say so
    run = await rt.store.io(rt.store.get, order_id)
    assert run is not None
    out: dict[str, Any] = {"order_id": order_id, "status": run.status}
    if run.status == "completed":
        out["receipt_id"] = await asyncio.to_thread(rt.result, order_id)
    elif run.reason:
        out["reason"] = run.reason
    return out
