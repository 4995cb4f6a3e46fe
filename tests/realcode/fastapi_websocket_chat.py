# Source: fastapi/fastapi, docs_src/websockets/tutorial003_py39.py
#   ("Handling disconnections and multiple clients": a ConnectionManager
#   with async connect/broadcast methods and a static send_personal_message;
#   the endpoint loops reading messages, answers the sender and broadcasts,
#   and on WebSocketDisconnect removes the client and tells the others).
# Rewritten in the same shape, not copied. Adapted: the endpoint is
# decorated; the manager is a module-level instance as in the tutorial
# (`reset()` empties it and the inboxes before each run); the WebSocket is
# a deterministic fake dataclass whose `receive_text` pops the next message
# from a module-level inbox and raises WebSocketDisconnect when it is empty,
# and whose sends are recorded steps. Two other clients are connected first
# so that broadcasts go to several sockets.
# Constructs: async methods of a plain class awaited from a compiled
# function (one of them a staticmethod), `while True` ended by an exception,
# try/except with an await in the handler, f-strings, a module-level object
# mutated by the function.
from dataclasses import dataclass

import resumable
from resumable.testing import step


class WebSocketDisconnect(Exception):
    pass


INBOX: dict[int, list[str]] = {}


@dataclass
class WebSocket:
    client_id: int

    async def accept(self) -> None:
        await step("accept", self.client_id)

    async def receive_text(self) -> str:
        await step("receive_text", self.client_id)
        messages = INBOX.get(self.client_id, [])
        if not messages:
            raise WebSocketDisconnect(1000)
        return messages.pop(0)

    async def send_text(self, message: str) -> None:
        await step("send_text", self.client_id, message)


class ConnectionManager:
    def __init__(self) -> None:
        self.active_connections: list[WebSocket] = []

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.active_connections.append(websocket)

    def disconnect(self, websocket: WebSocket) -> None:
        self.active_connections.remove(websocket)

    @staticmethod
    async def send_personal_message(message: str, websocket: WebSocket) -> None:
        await websocket.send_text(message)

    async def broadcast(self, message: str) -> None:
        for connection in self.active_connections:
            await connection.send_text(message)


manager = ConnectionManager()


def reset() -> None:
    manager.active_connections[:] = [WebSocket(1), WebSocket(2)]
    INBOX.clear()
    INBOX[7] = ["hello", "anyone here?"]


@resumable.function
async def websocket_endpoint(websocket: WebSocket, client_id: int):
    await manager.connect(websocket)
    try:
        while True:
            data = await websocket.receive_text()
            await manager.send_personal_message(f"You wrote: {data}", websocket)
            await manager.broadcast(f"Client #{client_id} says: {data}")
    except WebSocketDisconnect:
        manager.disconnect(websocket)
        await manager.broadcast(f"Client #{client_id} left the chat")


ARGS = {"websocket_endpoint": [((WebSocket(7), 7), {})]}
