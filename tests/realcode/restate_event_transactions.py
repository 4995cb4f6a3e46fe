# Source: restatedev/examples, python/patterns-use-cases/eventtransactions/app.py
#   (UserFeed.processPost: create a post, poll its moderation status with
#   `while await ... == Status.PENDING: await ctx.sleep(...)`, then update
#   the user's feed through a lambda reading the function's locals).
# Rewritten in the same shape, not copied. Adapted: the handler is a
# decorated module-level function; `ctx` is the fake context of
# tests/realcode/_restate.py (its sleep is a timer future); the moderation
# service is a deterministic fake that answers PENDING until its third poll
# of a post (a module-level counter, cleared by `reset()`).
# Constructs: an await in a `while` condition compared with an Enum member,
# a lambda reading locals passed to an awaited call.
from collections import Counter
from datetime import timedelta
from enum import Enum

from pydantic import BaseModel

import resumable
from tests.realcode._restate import Context

polls: Counter[str] = Counter()


def reset() -> None:
    polls.clear()


class Status(Enum):
    PENDING = "PENDING"
    DONE = "DONE"


class SocialMediaPost(BaseModel):
    content: str
    metadata: str


def create_post(user_id: str, post: SocialMediaPost) -> str:
    return f"{user_id}-post-{len(post.content)}"


def get_post_status(post_id: str) -> Status:
    polls[post_id] += 1
    return Status.PENDING if polls[post_id] < 3 else Status.DONE


def update_user_feed(user_id: str, post_id: str) -> str:
    return f"feed of {user_id} shows {post_id}"


@resumable.function
async def process_post(ctx: Context, post: SocialMediaPost):
    user_id = ctx.key()

    post_id = await ctx.run_typed("profile update", create_post, user_id=user_id, post=post)

    # Wait for moderation; this only holds back this user's later posts.
    while await ctx.run_typed("post status", get_post_status, post_id=post_id) == Status.PENDING:
        await ctx.sleep(timedelta(seconds=5))

    await ctx.run_typed("update feed", lambda: update_user_feed(user_id, post_id))


ARGS = {
    "process_post": [
        (
            (
                Context("user-9"),
                SocialMediaPost(content="Hi! This is my first post!", metadata="public"),
            ),
            {},
        ),
    ],
}
