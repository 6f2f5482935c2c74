"""The update's HTTP side: ask the server for its offer, download the wheel.

    GET {server}/api/v1/agent/offer?version=V&state=S&reason=R
        Authorization: Bearer <device token>
        200 {"version", "filename", "sha256", "size", "signature" (base64), "url"}
        204 nothing offered to this device
    GET {server}{offer.url}          the wheel, same bearer token

``{server}`` is the device's websocket URL turned back into HTTP(S) (``wss://h:p/ws/device``
→ ``https://h:p``); TLS is verified against ``ca_bundle`` as the uplink does. Blocking
(urllib): the updater runs these in a thread.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from . import __version__
from .update import MAX_WHEEL_BYTES, Offer

__all__ = ["OFFER_PATH", "FetchError", "HttpReleaseClient", "ReleaseClient", "http_base"]

OFFER_PATH = "/api/v1/agent/offer"
_CHUNK = 1 << 16


class FetchError(Exception):
    """The server could not be asked, or answered something unusable."""


class ReleaseClient(Protocol):
    def offer(self, running: str, state: str, reason: str) -> Offer | None: ...

    def download(self, offer: Offer, dest: Path) -> None: ...


def http_base(ws_url: str) -> str:
    """``wss://h:p/x/ws/device`` → ``https://h:p/x`` (``ws://`` → ``http://``)."""
    url = urlsplit(ws_url)
    scheme = "https" if url.scheme == "wss" else "http"
    path = url.path
    if path.endswith("/ws/device"):
        path = path[: -len("/ws/device")]
    return f"{scheme}://{url.netloc}{path.rstrip('/')}"


class HttpReleaseClient:
    def __init__(self, server_url: str, token: str, *, ca_bundle: Path | None = None,
                 timeout_s: float = 30.0) -> None:
        self.base = http_base(server_url)
        self._token = token
        self.timeout_s = timeout_s
        self._context: ssl.SSLContext | None = None
        if self.base.startswith("https:"):
            try:
                self._context = ssl.create_default_context(
                    cafile=str(ca_bundle) if ca_bundle else None)
            except (OSError, ssl.SSLError) as err:
                raise FetchError(f"cannot use CA bundle {ca_bundle}: {err}") from err

    def _open(self, path: str) -> Any:
        req = urllib.request.Request(self.base + path, headers={
            "Authorization": f"Bearer {self._token}", "Accept": "application/json",
            "User-Agent": f"roomscribe-device/{__version__}"})
        try:
            return urllib.request.urlopen(req, timeout=self.timeout_s, context=self._context)
        except urllib.error.HTTPError as err:
            detail = err.read(400).decode("utf-8", "replace").strip()
            raise FetchError(f"HTTP {err.code} from {path.split('?')[0]}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            raise FetchError(f"cannot reach {self.base}: {getattr(err, 'reason', err)}") \
                from err

    def offer(self, running: str, state: str, reason: str) -> Offer | None:
        """The server's offer for this device (None: nothing offered). ``running``,
        ``state``, ``reason``: what this agent tells IT about its updates."""
        query = urllib.parse.urlencode({"version": running, "state": state,
                                        "reason": reason[:300]})
        with self._open(f"{OFFER_PATH}?{query}") as resp:
            if resp.status == 204:
                return None
            raw = resp.read(65536)
        try:
            return Offer.from_json(json.loads(raw))
        except ValueError as err:  # includes JSONDecodeError
            raise FetchError(str(err)) from err

    def download(self, offer: Offer, dest: Path) -> None:
        """The wheel into ``dest`` (at most ``offer.size`` bytes, or FetchError)."""
        limit = min(offer.size, MAX_WHEEL_BYTES)
        got = 0
        with self._open(offer.url) as resp, open(dest, "wb") as out:
            while chunk := resp.read(_CHUNK):
                got += len(chunk)
                if got > limit:
                    raise FetchError(f"the server sent more than the {offer.size} bytes "
                                     "offered")
                out.write(chunk)
