"""``Cache-Control: no-store`` on every response that may carry PHI.

Notes, transcripts, audio, queue rows and API answers must not stay in a shared
workstation's browser cache: after Log out, the Back button has to ask the
server again (and get the login page), not show the signed note from the
cache. Pure ASGI, so streamed audio passes through untouched; only the
static files (``/static``: script, style, nothing about a patient) and the
health check may be cached.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CACHEABLE_PREFIXES", "NoStore"]

CACHEABLE_PREFIXES = ("/static/", "/healthz")
_HEADERS = ((b"cache-control", b"no-store"), (b"pragma", b"no-cache"))


class NoStore:
    """ASGI middleware: adds ``Cache-Control: no-store`` and ``Pragma: no-cache`` to
    every HTTP response outside ``CACHEABLE_PREFIXES`` (an existing Cache-Control
    header is replaced)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CACHEABLE_PREFIXES):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"cache-control", b"pragma")]
                message = {**message, "headers": [*headers, *_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_no_store)
