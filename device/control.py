"""The local control endpoint: a unix socket speaking one JSON line per request.

A push button, a GPIO script or IT can drive the room without the network::

    $ echo '{"cmd": "start"}' | socat - UNIX-CONNECT:/run/roomscribe/control.sock
    {"ok": true, "state": "listening", "encounter_id": "5b0e..."}

Commands: ``start``, ``stop``, ``mute``, ``unmute``, ``status``, and ``consent`` with
``"consent": "verbal" | "written" | "withdraw"`` and ``"by": "<who obtained it>"``
(the patient's consent for the visit in progress, or with ``"encounter": "<id>"`` for
an earlier visit still in the spool: a withdrawal deletes its unsent audio). Each reply is one
JSON object with ``ok`` (bool), ``state`` and ``encounter_id``, plus ``error``
when ``ok`` is false. The socket is mode 0660: root and the agent's group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ControlError

__all__ = ["COMMANDS", "ControlServer", "request"]

log = logging.getLogger(__name__)

COMMANDS = ("start", "stop", "mute", "unmute", "status", "consent")
#: Request fields passed on to the handler (as keyword arguments) for ``consent``.
_PARAMS = ("consent", "by", "encounter")
_MAX_LINE = 4096
_IDLE_TIMEOUT_S = 60.0

Handler = Callable[..., dict[str, Any]]


class ControlServer:
    """Serves :data:`COMMANDS` on a unix socket, answering through ``handler``."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = Path(path)
        self._handler = handler
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ControlError(f"cannot create {self.path.parent}: {err.strerror}") from err
        if self.path.exists() or self.path.is_symlink():
            if _is_listening(self.path):
                raise ControlError(f"another agent is already listening on {self.path}")
            self.path.unlink()  # left behind by an agent that died
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=_MAX_LINE)
            os.chmod(self.path, 0o660)
        except OSError as err:
            raise ControlError(f"cannot listen on {self.path}: {err.strerror or err}") from err
        log.info("control: listening on %s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), _IDLE_TIMEOUT_S)
                except ValueError:  # longer than _MAX_LINE
                    writer.write(_encode({"ok": False, "error": "request line too long"}))
                    await writer.drain()
                    return
                if not line:
                    return
                if not line.strip():
                    continue
                writer.write(_encode(self.answer(line)))
                await writer.drain()
        except (TimeoutError, ConnectionError):
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def answer(self, line: bytes) -> dict[str, Any]:
        """Handle one request line; never raises."""
        try:
            request = json.loads(line)
        except ValueError:
            return {"ok": False, "error": 'request is not JSON; send {"cmd": "status"}'}
        cmd = request.get("cmd") if isinstance(request, dict) else None
        if cmd not in COMMANDS:
            return {"ok": False, "error": f"unknown cmd {cmd!r}; use one of {', '.join(COMMANDS)}"}
        assert isinstance(request, dict)
        params = {k: str(request[k]) for k in _PARAMS if k in request}
        try:
            if cmd == "consent":
                return self._handler(str(cmd), **params)
            return self._handler(str(cmd))
        except Exception as err:  # the agent keeps running whatever a client sends
            log.exception("control: %s failed", cmd)
            return {"ok": False, "error": f"{cmd} failed: {err}"}


def _encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(", ", ": ")).encode() + b"\n"


def _is_listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def request(path: Path, cmd: str, timeout: float = 5.0, **params: str) -> dict[str, Any]:
    """Send one command (with ``params``, for ``consent``) to a running agent and return
    its reply (blocking client)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as err:
            raise ControlError(f"no agent listening on {path}; is roomscribe-device running?") \
                from err
        except PermissionError as err:
            raise ControlError(f"permission denied on {path}; run as root or as a member of "
                               "the agent's group") from err
        except OSError as err:
            raise ControlError(f"cannot connect to {path}: {err.strerror or err}") from err
        try:
            sock.sendall(json.dumps({"cmd": cmd, **params}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError as err:
            raise ControlError(f"the agent did not answer within {timeout:g} s") from err
        except OSError as err:
            raise ControlError(f"control socket error: {err}") from err
    try:
        reply = json.loads(data)
    except ValueError as err:
        raise ControlError(f"the agent's reply is not JSON: {data[:200]!r}") from err
    if not isinstance(reply, dict):
        raise ControlError(f"the agent's reply is not a JSON object: {data[:200]!r}")
    return reply
