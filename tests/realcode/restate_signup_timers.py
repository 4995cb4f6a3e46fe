# Source: restatedev/examples,
#   python/tutorials/tour-of-workflows-python/app/workflows/signup_with_timers.py
#   (send a verification email, then loop: race the click promise, a 15 s
#   reminder timer and a 1 day timeout; `match` on the winner: return whether
#   the secret matches, send a reminder, or fail terminally).
# Rewritten in the same shape, not copied. Adapted: the workflow's main
# handler is a decorated module-level function; `ctx`, promises, timers and
# `select` are the fakes of tests/realcode/_restate.py (when the user clicks,
# and with which secret, is scripted by the context's events); the email
# API is a deterministic fake.
# Constructs: `while True` around an awaited select and a `match` with
# sequence patterns, an await inside a case body, return/raise from cases.
from datetime import timedelta

from pydantic import BaseModel

import resumable
from tests.realcode import _restate as restate
from tests.realcode._restate import Context, TerminalError


class User(BaseModel):
    name: str
    email: str


def send_verification_email(user_id: str, user: User, verification_secret: str) -> None:
    return None


def send_reminder_email(user_id: str, user: User, verification_secret: str) -> None:
    return None


@resumable.function
async def run(ctx: Context, user: User) -> bool:
    user_id = ctx.key()
    secret = str(ctx.uuid())
    await ctx.run_typed(
        "verify",
        send_verification_email,
        user_id=user_id,
        user=user,
        verification_secret=secret,
    )

    clicked_promise = ctx.promise("email-verified", type_hint=str)
    verification_timeout = ctx.sleep(timedelta(days=1))

    while True:
        reminder_timer = ctx.sleep(timedelta(seconds=15))

        # The click, the next reminder, or the timeout.
        result = await restate.select(
            verification=clicked_promise.value(),
            reminder=reminder_timer,
            timeout=verification_timeout,
        )

        match result:
            case ["verification", clicked_secret]:
                return clicked_secret == secret
            case ["reminder", _]:
                await ctx.run_typed(
                    "remind",
                    send_reminder_email,
                    user_id=user_id,
                    user=user,
                    verification_secret=secret,
                )
            case ["timeout", _]:
                raise TerminalError("Email verification timed out after 24 hours")


_USER = User(name="Ann", email="ann@example.com")


def _secret_of(key: str) -> str:
    """The secret `run` draws for a context with this key (its first uuid)."""
    return str(Context(key).uuid())


ARGS = {
    "run": [
        # Clicked after 40 s (two reminders first), with a wrong secret.
        ((Context("v1", events={"email-verified": (40.0, "not-the-secret")}), _USER), {}),
        # Clicked after 10 s with the right secret. (The timeout path would
        # take 5760 reminders first, so it is not run.)
        ((Context("v2", events={"email-verified": (10.0, _secret_of("v2"))}), _USER), {}),
    ],
}
