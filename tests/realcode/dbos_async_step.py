# Source: dbos-inc/dbos-docs, docs/python/tutorials/step-tutorial.md
#   ("Coroutine Steps": an async step that opens an aiohttp ClientSession
#   with `async with`, gets a page with a nested `async with`, and returns
#   `await response.text()`).
# Rewritten in the same shape, not copied. Adapted: @DBOS.step becomes
# @resumable.function; `aiohttp` is a deterministic fake namespace whose
# session and response are async context managers recording their calls.
# Constructs: nested `async with ... as`, an await and a return inside them.
from types import SimpleNamespace

import resumable
from resumable.testing import step


class _Response:
    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> "_Response":
        await step("response.open", self.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await step("response.close", self.url)

    async def text(self) -> str:
        n = await step("response.text", self.url)
        return f"<html>{self.url} {n}</html>"


class _ClientSession:
    async def __aenter__(self) -> "_ClientSession":
        await step("session.open")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await step("session.close")

    def get(self, url: str) -> _Response:
        return _Response(url)


aiohttp = SimpleNamespace(ClientSession=_ClientSession)


@resumable.function
async def example_step() -> str:
    async with aiohttp.ClientSession() as session:  # noqa: SIM117 (the tutorial's shape)
        async with session.get("https://example.com") as response:
            return await response.text()


ARGS = {"example_step": [((), {})]}
