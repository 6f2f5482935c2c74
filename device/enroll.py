"""One-time enrolment: trade a code from the server's admin UI for a device token.

HTTP contract (the server side implements it)::

    POST {server}/api/v1/devices/enroll
    Content-Type: application/json
    {"code": "<one-time code>", "agent_version": "0.1.0"}

    200 {"device_id": str, "room_id": str, "token": str, "ws_path": "/ws/device"}
    400 / 404 / 410 {"detail": "..."}     unknown, already used, or expired code
    422 {"detail": [{"msg": ...}]}        a malformed code

TLS is verified (against ``--ca-bundle`` if given, else the system CAs);
plain ``http://`` is accepted only for a loopback server (development). The
token goes to a 0600 file and the room's TOML config is written (keeping any
keys it already had, such as ``input_device``) and then loaded back to prove
it is valid.
"""

from __future__ import annotations

import json
import ssl
import tomllib
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import __version__
from .errors import ConfigError, EnrolmentError
from .fsutil import write_atomic
from .settings import is_loopback_host, load_settings

__all__ = ["ENROL_PATH", "Enrolment", "enroll", "write_enrolment", "ws_url"]

ENROL_PATH = "/api/v1/devices/enroll"
_KEY_ORDER = ("server_url", "device_id", "room_id", "token_file", "ca_bundle", "allow_insecure",
              "input_device", "spool_dir", "spool_max_mb", "frame_ms", "control_socket")


@dataclass(frozen=True, slots=True)
class Enrolment:
    device_id: str
    room_id: str
    token: str = ""
    ws_path: str = "/ws/device"

    def __repr__(self) -> str:  # never print the token
        return f"Enrolment(device_id={self.device_id!r}, room_id={self.room_id!r})"


def _check_server(server: str) -> str:
    url = urlsplit(server)
    if url.scheme not in ("https", "http") or not url.hostname:
        raise EnrolmentError(f"--server must be https://host[:port], got {server!r}")
    if url.scheme == "http" and not is_loopback_host(url.hostname):
        raise EnrolmentError("--server must use https:// (plain http:// only to a loopback host)")
    return server.rstrip("/")


def ws_url(server: str, ws_path: str) -> str:
    """``https://h:p/prefix`` + ``/ws/device`` → ``wss://h:p/prefix/ws/device``."""
    url = urlsplit(server.rstrip("/"))
    scheme = "wss" if url.scheme == "https" else "ws"
    return f"{scheme}://{url.netloc}{url.path}/{ws_path.lstrip('/')}"


def enroll(server: str, code: str, *, ca_bundle: Path | None = None,
           timeout: float = 15.0) -> Enrolment:
    """POST the one-time code; return what the server assigned. Raises EnrolmentError."""
    base = _check_server(server)
    if not code.strip():
        raise EnrolmentError("the enrolment code is empty")
    body = json.dumps({"code": code.strip(), "agent_version": __version__}).encode()
    req = urllib.request.Request(
        base + ENROL_PATH, data=body, method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json",
                 "User-Agent": f"roomscribe-device/{__version__}"},
    )
    context = None
    if base.startswith("https:"):
        try:
            context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
        except (OSError, ssl.SSLError) as err:
            raise EnrolmentError(f"cannot use CA bundle {ca_bundle}: {err}") from err
    host = urlsplit(base).hostname
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            raw = resp.read(65536)
    except urllib.error.HTTPError as err:
        detail = _detail(err.read(65536)) or err.reason
        if err.code in (400, 404, 410, 422):
            raise EnrolmentError(
                f"the server refused enrolment code (HTTP {err.code}): {detail}; "
                "ask for a new code") from None
        raise EnrolmentError(f"enrolment failed: HTTP {err.code} from {host}: {detail}") \
            from None
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise EnrolmentError(
                f"TLS certificate of {host} not trusted ({reason.verify_message}); "
                "pass --ca-bundle with the clinic's CA") from err
        raise EnrolmentError(f"cannot reach {host}: {reason}") from err
    except TimeoutError as err:
        raise EnrolmentError(f"{host} did not answer within {timeout:g} s") from err
    except OSError as err:
        raise EnrolmentError(f"cannot reach {host}: {err}") from err
    return _parse(raw)


def _detail(raw: bytes) -> str:
    try:
        obj = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:200]
    detail = obj.get("detail", obj) if isinstance(obj, dict) else obj
    if isinstance(detail, list):  # a validation error: [{"msg": ...}, ...]
        return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d)
                         for d in detail)[:200]
    return str(detail)[:200]


def _parse(raw: bytes) -> Enrolment:
    try:
        obj = json.loads(raw)
    except ValueError as err:
        raise EnrolmentError("the server's enrolment answer is not JSON") from err
    if not isinstance(obj, dict):
        raise EnrolmentError("the server's enrolment answer is not a JSON object")
    fields = {}
    for key in ("device_id", "room_id", "token", "ws_path"):
        value = obj.get(key, "/ws/device" if key == "ws_path" else None)
        if not isinstance(value, str) or (key != "room_id" and not value):
            raise EnrolmentError(f"the server's enrolment answer lacks {key!r}")
        fields[key] = value
    return Enrolment(**fields)


def write_enrolment(
    enrolment: Enrolment, *, server: str, room_config: Path, token_file: Path,
    ca_bundle: Path | None = None, options: Mapping[str, Any] | None = None,
) -> None:
    """Write the token (0600) and the room config, then prove the config loads.

    ``options`` sets further config keys (``spool_dir``, ``control_socket``,
    ``frame_ms``...); ``None`` values are left out. Keys already in an existing
    config are kept unless replaced.
    """
    url = ws_url(server, enrolment.ws_path)
    token_file = token_file.absolute()
    _write_atomic(token_file, enrolment.token + "\n", 0o600)
    values: dict[str, Any] = {}
    if room_config.exists():
        try:
            values = tomllib.loads(room_config.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            values = {}  # unreadable: replaced below
    values.update(server_url=url, device_id=enrolment.device_id, room_id=enrolment.room_id,
                  token_file=str(token_file))
    if url.startswith("ws://"):
        values["allow_insecure"] = True
    if ca_bundle is not None:
        values["ca_bundle"] = str(ca_bundle.absolute())
    for key, value in (options or {}).items():
        if value is not None:
            values[key] = str(value.absolute()) if isinstance(value, Path) else value
    _write_atomic(room_config, _to_toml(values), 0o644)
    try:
        load_settings(room_config)
    except ConfigError as err:
        raise EnrolmentError(f"wrote {room_config} but it does not load: {err}") from err


def _to_toml(values: dict[str, Any]) -> str:
    lines = ["# RoomScribe device agent: room configuration (written by roomscribe-device enroll)"]
    known = [k for k in _KEY_ORDER if k in values]
    order = known + sorted(k for k in values if k not in _KEY_ORDER)
    for key in order:
        lines.append(f"{key} = {_toml_value(values[key])}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # A JSON string without \\u escapes of non-ASCII is a valid TOML basic string.
    return json.dumps(str(value), ensure_ascii=False)


def _write_atomic(path: Path, text: str, mode: int) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text.encode("utf-8"), mode)
    except OSError as err:
        raise EnrolmentError(f"cannot write {path}: {err.strerror or err}") from err
