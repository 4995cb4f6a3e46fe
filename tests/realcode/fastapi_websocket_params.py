# Source: fastapi/fastapi, docs_src/websockets/tutorial002_an_py310.py
#   ("Using Depends and others": a dependency that rejects a connection
#   without a session cookie or token, and a keyword-only endpoint that
#   accepts, then loops answering each message with the token, the optional
#   query parameter and the item id).
# Rewritten in the same shape, not copied. Adapted: the endpoint and the
# dependency are decorated (FastAPI's injection becomes an explicit await of
# the dependency, whose result is the keyword argument the tutorial injects);
# the WebSocket is a deterministic fake dataclass with its messages inside
# (`receive_text` raises WebSocketDisconnect once they are used up), and its
# sends are recorded steps.
# Constructs: keyword-only parameters with a default, `while True` ended by
# an exception, an `if` between awaits, f-strings, a mutable dataclass
# argument advanced across awaits, `or` returning an operand.
from dataclasses import dataclass, field

import resumable
from resumable.testing import step


class WebSocketDisconnect(Exception):
    pass


class WebSocketException(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


WS_1008_POLICY_VIOLATION = 1008


@dataclass
class WebSocket:
    messages: list[str] = field(default_factory=list)

    async def accept(self) -> None:
        await step("accept")

    async def receive_text(self) -> str:
        await step("receive_text", len(self.messages))
        if not self.messages:
            raise WebSocketDisconnect(1000)
        return self.messages.pop(0)

    async def send_text(self, message: str) -> None:
        await step("send_text", message)


@resumable.function
async def get_cookie_or_token(
    websocket: WebSocket, session: str | None = None, token: str | None = None
):
    if session is None and token is None:
        raise WebSocketException(code=WS_1008_POLICY_VIOLATION)
    return session or token


@resumable.function
async def websocket_endpoint(
    *,
    websocket: WebSocket,
    item_id: str,
    q: int | None = None,
    cookie_or_token: str,
):
    await websocket.accept()
    while True:
        data = await websocket.receive_text()
        await websocket.send_text(f"Session cookie or query token value is: {cookie_or_token}")
        if q is not None:
            await websocket.send_text(f"Query parameter q is: {q}")
        await websocket.send_text(f"Message text was: {data}, for item ID: {item_id}")


@resumable.function
async def connect(
    item_id: str, messages: list[str], q: int | None = None, token: str | None = None
):
    """What FastAPI does for a connection: resolve the dependency, then run the endpoint."""
    websocket = WebSocket(messages)
    cookie_or_token = await get_cookie_or_token(websocket, token=token)
    await websocket_endpoint(
        websocket=websocket, item_id=item_id, q=q, cookie_or_token=cookie_or_token
    )


ARGS = {
    "get_cookie_or_token": [((WebSocket(),), {"session": "s3ss10n"}), ((WebSocket(),), {})],
    "websocket_endpoint": [
        (
            (),
            {
                "websocket": WebSocket(["hi", "bye"]),
                "item_id": "foo",
                "q": 3,
                "cookie_or_token": "tok",
            },
        ),
        ((), {"websocket": WebSocket(["only"]), "item_id": "bar", "cookie_or_token": "tok"}),
    ],
    "connect": [
        (("foo", ["a", "b"]), {"token": "some-key-token"}),
        (("foo", ["a"]), {}),
    ],
}
RAISES = (WebSocketDisconnect, WebSocketException)
