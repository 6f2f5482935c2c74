"""Security headers on every HTTP response: what a browser may run, frame and sniff.

- ``Content-Security-Policy``: scripts, styles, media and connections from this
  origin only, no inline script (the pages hold none: every handler lives in
  ``/static/app.js``, page data travels in ``<script type="application/json">``
  blocks, which browsers never execute), no plugins, no framing, forms post
  here. ``/docs`` and ``/redoc`` (the OpenAPI pages, which FastAPI builds with
  inline script) get no policy: they hold no patient data.
- ``X-Frame-Options: DENY`` (for browsers older than ``frame-ancestors``),
  ``X-Content-Type-Options: nosniff``, ``Permissions-Policy`` off for the
  camera, microphone and location, ``Referrer-Policy: same-origin`` (item ids
  in URLs never leave this site; ``no-referrer`` would make the browser send
  ``Origin: null`` with the login form, which the login refuses).
- ``Strict-Transport-Security`` when the request came over TLS (uvicorn with a
  certificate) or the deployment says it is behind TLS (``secure_cookies``).

Pure ASGI, like :mod:`server.nostore`: streamed audio passes through untouched.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["CSP", "RedactSecrets", "SecurityHeaders"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_API_DOCS = ("/docs", "/redoc")
_ALWAYS = ((b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin"),
           (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"))
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeaders:
    """ASGI middleware adding the headers above (replacing any set by a route)."""

    def __init__(self, app: Any, behind_tls: bool = False) -> None:
        self.app = app
        self.behind_tls = behind_tls

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = list(_ALWAYS)
        if not scope["path"].startswith(_API_DOCS):
            added.append((b"content-security-policy", CSP.encode()))
        if self.behind_tls or scope.get("scheme") == "https":
            added.append(_HSTS)
        names = {k for k, _ in added}

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in names]
                message = {**message, "headers": [*headers, *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


_SECRET_PARAM = re.compile(r"((?:access_token|token|ticket|code)=)[^&\s\"]+", re.IGNORECASE)


class RedactSecrets(logging.Filter):
    """Blanks credentials a client put in a URL (``?access_token=…``, ``?ticket=…``) from
    uvicorn's access log lines: the server refuses tokens in URLs, but a client may still
    send one, and a log must not keep it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_SECRET_PARAM.sub(r"\1[redacted]", a) if isinstance(a, str)
                                else a for a in record.args)
        return True
