# Source: restatedev/examples,
#   python/tutorials/tour-of-workflows-python/app/workflows/signup_with_retries.py
#   (a signup workflow: create the user, stop early if that failed, activate,
#   then send a welcome email whose terminal failure is logged, not raised).
# Rewritten in the same shape, not copied. Adapted: the workflow's main
# handler is a decorated module-level function; `ctx` is the fake context of
# tests/realcode/_restate.py; the user APIs are deterministic fakes (a user
# whose name starts with "x" cannot be created; an email on "bounce.example"
# fails terminally); `print` of the error is kept.
# Constructs: early return on a falsy awaited value, try/except with `as` and
# an f-string, positional-only options argument.
from pydantic import BaseModel

import resumable
from tests.realcode._restate import Context, TerminalError


class User(BaseModel):
    name: str
    email: str


class RunOptions(BaseModel):
    max_attempts: int
    max_retry_duration_seconds: float


def create_user(user_id: str, user: User) -> bool:
    return not user.name.startswith("x")


def activate_user(user_id: str) -> None:
    return None


def send_welcome_email(user: User) -> None:
    if user.email.endswith("@bounce.example"):
        raise TerminalError(f"mailbox {user.email} does not exist")


@resumable.function
async def run(ctx: Context, user: User) -> bool:
    user_id = ctx.key()

    success = await ctx.run_typed("create", create_user, user_id=user_id, user=user)
    if not success:
        return False

    await ctx.run_typed("activate", activate_user, user_id=user_id)

    try:
        await ctx.run_typed(
            "welcome",
            send_welcome_email,
            RunOptions(max_attempts=3, max_retry_duration_seconds=30),
            user=user,
        )
    except TerminalError as error:
        # Retries are exhausted: log it and let the signup succeed anyway.
        print(f"Failed to send welcome email after retries: {error}")

    return True


ARGS = {
    "run": [
        ((Context("u1"), User(name="Ann", email="ann@example.com")), {}),
        ((Context("u2"), User(name="xavier", email="x@example.com")), {}),
        ((Context("u3"), User(name="Bob", email="bob@bounce.example")), {}),
    ],
}
