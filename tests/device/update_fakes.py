"""Fakes for the agent update tests: tiny real wheels, a release key, a fake release
server on loopback (the device's side of the API: offer + wheel download), a fake
installer on tmp dirs."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device.update_install import InstallError


def make_wheel(version: str, *, name: str = "roomscribe",
               files: dict[str, str] | None = None) -> tuple[str, bytes]:
    """A real, installable pure-Python wheel: (file name, bytes)."""
    files = files if files is not None else {"rs_update_probe/__init__.py": "VALUE = 1\n"}
    dist = f"{name.replace('-', '_')}-{version}"
    contents = dict(files)
    contents[f"{dist}.dist-info/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    contents[f"{dist}.dist-info/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: roomscribe-tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n")
    record = []
    for path, text in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest())
        record.append(f"{path},sha256={digest.rstrip(b'=').decode()},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    contents[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in contents.items():  # fixed times: the same wheel every time
            zf.writestr(zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0)), text,
                        compress_type=zipfile.ZIP_DEFLATED)
    return f"{dist}-py3-none-any.whl", buf.getvalue()


@dataclass
class ReleaseKey:
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def write_public(self, path: Path) -> Path:
        path.write_bytes(self.public_pem())
        return path

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def offer_json(version: str, filename: str, data: bytes, signature: bytes,
               **changes: Any) -> dict[str, Any]:
    offer: dict[str, Any] = {
        "version": version, "filename": filename, "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data), "signature": base64.b64encode(signature).decode(),
        "url": f"/api/v1/agent/releases/{version}/wheel"}
    offer.update(changes)
    return offer


class FakeReleaseServer:
    """The server's device-facing release API on a loopback port (stdlib HTTP server):
    ``offer`` (None: 204) and ``wheels`` (path → bytes); requests are logged, and the
    device's bearer token is checked."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.offer: dict[str, Any] | None = None
        self.wheels: dict[str, bytes] = {}
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                outer.requests.append((url.path, parse_qs(url.query)))
                if self.headers.get("Authorization") != f"Bearer {outer.token}":
                    self._send(401, b'{"detail": "bad token"}')
                elif url.path == "/api/v1/agent/offer":
                    if outer.offer is None:
                        self._send(204, b"")
                    else:
                        self._send(200, json.dumps(outer.offer).encode())
                elif url.path in outer.wheels:
                    self._send(200, outer.wheels[url.path], "application/octet-stream")
                else:
                    self._send(404, b'{"detail": "not found"}')

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                if code != 204:
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if code != 204:
                    self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.httpd.server_address[1]}/ws/device"

    def publish(self, version: str, filename: str, data: bytes, signature: bytes,
                **changes: Any) -> None:
        self.offer = offer_json(version, filename, data, signature, **changes)
        self.wheels[self.offer["url"]] = data

    def downloads(self) -> int:
        return sum(1 for path, _ in self.requests if path.endswith("/wheel"))

    def reported(self) -> list[str]:
        """The update states the device told the server, in order."""
        return [q.get("state", [""])[0] for path, q in self.requests
                if path == "/api/v1/agent/offer"]


@contextmanager
def release_server(token: str) -> Iterator[FakeReleaseServer]:
    server = FakeReleaseServer(token)
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


class FakeInstaller:
    """Unpacks the wheel's files into the target (no pip); ``fail`` makes it raise."""

    def __init__(self, fail: str = "") -> None:
        self.fail = fail
        self.calls: list[tuple[Path, str]] = []

    def install(self, wheel: Path, target: Path, version: str) -> None:
        self.calls.append((wheel, version))
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(target)
        if self.fail:
            raise InstallError(self.fail)
