"""``/ws/device``: turns the websocket into a DeviceTransport and runs a DeviceSession."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from server import __version__
from server.ingest.session import DeviceSession, TransportClosed
from server.services import Services

router = APIRouter()


class _StarletteTransport:
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws

    async def receive(self) -> str | bytes:
        try:
            message = await self.ws.receive()
        except (WebSocketDisconnect, RuntimeError) as err:
            raise TransportClosed() from err
        if message["type"] == "websocket.disconnect":
            raise TransportClosed()
        if message.get("bytes") is not None:
            return bytes(message["bytes"])
        return str(message.get("text") or "")

    async def send_text(self, text: str) -> None:
        try:
            await self.ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError) as err:
            raise TransportClosed() from err

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError):  # already closed
            await self.ws.close(code=code, reason=reason)


@router.websocket("/ws/device")
async def device_socket(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    await ws.accept()
    session = DeviceSession(
        _StarletteTransport(ws), settings=services.settings, store=services.store,
        handoff=services.handoff, devices=services.devices, run_db=services.run_db,
        server_version=__version__, peer=ws.client.host if ws.client else "",
    )
    await session.run()
