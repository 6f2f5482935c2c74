"""The agent's settings: one TOML file per room, overridden by CLI flags.

:class:`AgentSettings` is built once, at the entry point, by
:func:`load_settings`; core classes receive it and never read the environment,
argv or the config file themselves. A bad file fails fast with a
:class:`~device.errors.ConfigError` naming the file and the key.

Example ``room.toml``::

    server_url = "wss://scribe.clinic.example/ws/device"
    # or several nodes, tried in turn when one fails (resuming from the last ack):
    # server_urls = ["wss://scribe-a.clinic.example/ws/device",
    #                "wss://scribe-b.clinic.example/ws/device"]
    device_id = "7f3c..."                          # given at enrolment
    room_id = "exam-3"
    token_file = "/etc/roomscribe/device.token"   # 0600, the device's secret
    ca_bundle = "/etc/roomscribe/clinic-ca.pem"   # optional; default system CAs
    allow_insecure = false     # permit ws:// -- only for loopback hosts
    input_device = ""          # PyAudio device index or name substring
    spool_dir = "/var/lib/roomscribe/spool"
    spool_max_mb = 512
    frame_ms = 100             # 20..1000, a multiple of 10
    control_socket = "/run/roomscribe/control.sock"
    ping_interval_s = 10
    pong_timeout_s = 10
    log_interval_s = 60
    # agent updates (docs/agent-updates.md); off without a release public key
    update_public_key = "/etc/roomscribe/release-key.pem"
    update_window = "22:00-05:00"     # local time; never during a visit
    update_dir = "/var/lib/roomscribe/agent"

Relative paths in the file are taken relative to the file's directory;
relative paths given on the command line, relative to the working directory.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from protocol import SUPPORTED_FORMAT

from .errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_CONTROL_SOCKET",
    "LIVE_KEYS",
    "AgentSettings",
    "changed_live",
    "control_socket_of",
    "is_loopback_host",
    "load_settings",
]

DEFAULT_CONFIG = Path("/etc/roomscribe/room.toml")
DEFAULT_CONTROL_SOCKET = Path("/run/roomscribe/control.sock")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSettings:
    """Everything the agent needs to know about its room and its server."""

    server_url: str
    """``wss://host[:port]/ws/device`` (``ws://`` only to a loopback host); the first of
    :attr:`server_urls`."""
    device_id: str
    """The device's id, given at enrolment."""
    token_file: Path
    """File holding the device's secret token (mode 0600)."""
    token: str = field(repr=False)
    """The token itself, read from :attr:`token_file` at load time."""
    room_id: str = ""
    ca_bundle: Path | None = None
    """PEM bundle of CAs to trust for ``wss://``; ``None`` = the system's."""
    allow_insecure: bool = False
    input_device: str = ""
    """PyAudio device index or (case-insensitive) name substring; "" = default."""
    spool_dir: Path = Path("/var/lib/roomscribe/spool")
    spool_max_mb: int = 512
    frame_ms: int = 100
    control_socket: Path = DEFAULT_CONTROL_SOCKET
    ping_interval_s: float = 10.0
    pong_timeout_s: float = 10.0
    log_interval_s: float = 60.0
    ack_timeout_s: float = 30.0
    """Unacked audio in flight with no ack progress this long: reconnect."""
    open_timeout_s: float = 10.0
    """Limit on TCP + TLS + websocket handshake + hello/ready."""
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    max_inflight_kb: int = 1024
    """Most unacked audio (KiB) on the wire at once."""
    server_urls: tuple[str, ...] = ()
    """Every server node to try, in order, :attr:`server_url` first; when a connection
    fails the agent moves to the next one (``()``: just :attr:`server_url`)."""
    # agent updates (docs/agent-updates.md): off unless a release public key is installed
    update_public_key: Path | None = None
    """IT's Ed25519 release public key (PEM); ``None``: the agent never updates itself."""
    update_window: str = "22:00-05:00"
    """Local hours when an update may be installed (never during a visit)."""
    update_dir: Path = Path("/var/lib/roomscribe/agent")
    """Installed releases, the ``current`` link and ``update.json``."""
    update_check_s: float = 3600.0
    update_health_timeout_s: float = 300.0
    """A new release that has not reported in to the server this long is rolled back."""

    @property
    def servers(self) -> tuple[str, ...]:
        """The URLs the uplink rotates through (at least one)."""
        return self.server_urls or (self.server_url,)

    @property
    def frame_bytes(self) -> int:
        """PCM bytes in one full frame."""
        return SUPPORTED_FORMAT.bytes_per_second * self.frame_ms // 1000

    @property
    def spool_max_bytes(self) -> int:
        return self.spool_max_mb * 1024 * 1024


# key -> (accepted TOML types, required)
_KEYS: dict[str, tuple[tuple[type, ...], bool]] = {
    "server_url": ((str,), False),
    "server_urls": ((list,), False),
    "device_id": ((str,), True),
    "token_file": ((str,), True),
    "room_id": ((str,), False),
    "ca_bundle": ((str,), False),
    "allow_insecure": ((bool,), False),
    "input_device": ((str, int), False),
    "spool_dir": ((str,), False),
    "spool_max_mb": ((int,), False),
    "frame_ms": ((int,), False),
    "control_socket": ((str,), False),
    "ping_interval_s": ((int, float), False),
    "pong_timeout_s": ((int, float), False),
    "log_interval_s": ((int, float), False),
    "ack_timeout_s": ((int, float), False),
    "open_timeout_s": ((int, float), False),
    "backoff_base_s": ((int, float), False),
    "backoff_cap_s": ((int, float), False),
    "max_inflight_kb": ((int,), False),
    "update_public_key": ((str,), False),
    "update_window": ((str,), False),
    "update_dir": ((str,), False),
    "update_check_s": ((int, float), False),
    "update_health_timeout_s": ((int, float), False),
}
_PATH_KEYS = frozenset({"token_file", "ca_bundle", "spool_dir", "control_socket",
                        "update_public_key", "update_dir"})
_TYPE_NAMES = {str: "a string", bool: "true or false", int: "an integer", float: "a number",
               list: "a list of strings"}


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_settings(path: Path | None, overrides: Mapping[str, Any] | None = None) -> AgentSettings:
    """Read ``path`` (a room TOML file), apply ``overrides`` (from CLI flags), validate.

    ``overrides`` uses the TOML key names; a value of ``None`` means "not given".
    Raises :class:`ConfigError` with a message naming the file (or flag) and key.
    """
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    if path is not None:
        origin = str(path)
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError as err:
            raise ConfigError(f"{path}: config file not found") from err
        except OSError as err:
            raise ConfigError(f"{path}: cannot read config file: {err.strerror}") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: not valid TOML: {err}") from err
        base = Path(path).resolve().parent
        for key, value in raw.items():
            _check_key(origin, key, value)
            values[key] = _resolve(key, value, base)
            origins[key] = origin
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        origin = "--" + key.replace("_", "-")
        _check_key(origin, key, value)
        values[key] = _resolve(key, value, Path.cwd())
        origins[key] = origin

    where = str(path) if path is not None else "configuration"
    for key, (_types, required) in _KEYS.items():
        if required and key not in values:
            raise ConfigError(f"{where}: missing required key {key!r}")
    if "server_url" not in values and not values.get("server_urls"):
        raise ConfigError(f"{where}: missing required key 'server_url' (or 'server_urls')")

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{origins.get(key, where)}: {key}: {problem}")

    _validate(values, fail)
    _merge_server_urls(values)
    token = _read_token(values["token_file"], lambda problem: fail("token_file", problem))
    try:
        return AgentSettings(token=token, **values)
    except TypeError as err:  # pragma: no cover - _KEYS and the dataclass disagree
        raise ConfigError(f"{where}: {err}") from err


#: Settings the server may change while the agent runs (``config-change``): each is read
#: where it is used (the counters log at once; liveness checks, the connect timeout and the
#: send window from the next connection). The rest (server, identity, spool, capture
#: device, frame size, back-off) are fixed for the process: they change in the room's TOML
#: file and a restart.
LIVE_KEYS = frozenset({"log_interval_s", "ping_interval_s", "pong_timeout_s", "ack_timeout_s",
                       "open_timeout_s", "max_inflight_kb"})


def changed_live(settings: AgentSettings, changes: Mapping[str, Any]) -> AgentSettings:
    """``settings`` with ``changes`` (TOML key names) applied, validated as the TOML file
    is; :class:`ConfigError` (nothing applied) for an unknown key, a key not in
    :data:`LIVE_KEYS`, a wrong type or a value out of range."""
    if not changes:
        raise ConfigError("config-change: nothing to change")
    for key, value in changes.items():
        _check_key("config-change", key, value)
        if key not in LIVE_KEYS:
            raise ConfigError(f"config-change: {key} cannot change while the agent runs "
                              f"(live: {', '.join(sorted(LIVE_KEYS))}); edit the room's TOML "
                              "file and restart the agent")
    values: dict[str, Any] = {"device_id": settings.device_id,
                              **{k: getattr(settings, k) for k in LIVE_KEYS}, **changes}

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"config-change: {key}: {problem}")

    _validate(values, fail)
    return replace(settings, **changes)


def control_socket_of(path: Path) -> Path:
    """Just the control socket of a room config (for ``ctl``, which needs no token)."""
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file: {err.strerror}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    value = raw.get("control_socket", str(DEFAULT_CONTROL_SOCKET))
    _check_key(str(path), "control_socket", value)
    resolved: Path = _resolve("control_socket", value, Path(path).resolve().parent)
    return resolved


def _check_key(origin: str, key: str, value: Any) -> None:
    spec = _KEYS.get(key)
    if spec is None:
        known = ", ".join(sorted(_KEYS))
        raise ConfigError(f"{origin}: unknown key {key!r} (known keys: {known})")
    types, _required = spec
    # TOML booleans are not numbers here, although Python's bool is an int.
    if (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
            or (isinstance(value, list) and not all(isinstance(v, str) for v in value))):
        wanted = " or ".join(_TYPE_NAMES[t] for t in types)
        raise ConfigError(f"{origin}: {key}: must be {wanted}, got {value!r}")


def _resolve(key: str, value: Any, base: Path) -> Any:
    if key == "server_urls":
        return tuple(value)
    if key == "input_device":
        return str(value)
    if key in _PATH_KEYS:
        if key in ("ca_bundle", "update_public_key") and value in ("", None):
            return None
        p = Path(os.path.expanduser(str(value)))
        return p if p.is_absolute() else base / p
    if key.endswith("_s"):
        return float(value)
    return value


def _merge_server_urls(v: dict[str, Any]) -> None:
    """``server_url`` first (when given), then the other ``server_urls``, once each."""
    urls = ([v["server_url"]] if "server_url" in v else []) + list(v.get("server_urls", ()))
    unique = tuple(dict.fromkeys(urls))
    v["server_url"] = unique[0]
    v["server_urls"] = unique if len(unique) > 1 else ()


def _validate_url(key: str, value: str, allow_insecure: bool,
                  fail: Callable[[str, str], ConfigError]) -> None:
    url = urlsplit(value)
    if url.scheme not in ("ws", "wss"):
        raise fail(key, f"scheme must be wss:// (ws:// on loopback), got {url.scheme!r}")
    if not url.hostname:
        raise fail(key, f"no host in {value!r}")
    try:
        url.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as err:
        raise fail(key, f"bad port: {err}") from err
    if url.scheme == "ws":
        if not is_loopback_host(url.hostname):
            raise fail(
                key,
                f"ws:// (unencrypted) is only allowed to a loopback host, not {url.hostname!r}; "
                "use wss://",
            )
        if not allow_insecure:
            raise fail(key, "ws:// (unencrypted) needs allow_insecure = true")


def _validate(v: dict[str, Any], fail: Callable[[str, str], ConfigError]) -> None:
    insecure = bool(v.get("allow_insecure", False))
    if "server_url" in v:
        _validate_url("server_url", v["server_url"], insecure, fail)
    if "server_urls" in v:
        if not v["server_urls"]:
            raise fail("server_urls", "must list at least one URL")
        for url in v["server_urls"]:
            _validate_url("server_urls", url, insecure, fail)
    if not v["device_id"].strip():
        raise fail("device_id", "must not be empty")
    ca = v.get("ca_bundle")
    if ca is not None and not os.access(ca, os.R_OK):
        raise fail("ca_bundle", f"cannot read {ca}")
    frame_ms = v.get("frame_ms", 100)
    if not 20 <= frame_ms <= 1000 or frame_ms % 10:
        raise fail("frame_ms", f"must be 20..1000 and a multiple of 10, got {frame_ms}")
    if v.get("spool_max_mb", 512) < 1:
        raise fail("spool_max_mb", "must be at least 1")
    if v.get("max_inflight_kb", 1024) < 64:
        raise fail("max_inflight_kb", "must be at least 64")
    for key in ("ping_interval_s", "pong_timeout_s", "log_interval_s", "ack_timeout_s",
                "open_timeout_s", "backoff_base_s", "backoff_cap_s"):
        if key in v and not v[key] > 0:
            raise fail(key, f"must be greater than 0, got {v[key]}")
    if v.get("backoff_cap_s", 30.0) < v.get("backoff_base_s", 0.5):
        raise fail("backoff_cap_s", "must not be smaller than backoff_base_s")
    _validate_update(v, fail)


def _validate_update(v: dict[str, Any], fail: Callable[[str, str], ConfigError]) -> None:
    from .update import MaintenanceWindow

    try:
        MaintenanceWindow.parse(v.get("update_window", "22:00-05:00"))
    except ValueError as err:
        raise fail("update_window", str(err)) from None
    key = v.get("update_public_key")
    if key is not None and not os.access(key, os.R_OK):
        raise fail("update_public_key", f"cannot read {key}")
    for name in ("update_check_s", "update_health_timeout_s"):
        if name in v and not v[name] >= 10:
            raise fail(name, f"must be at least 10, got {v[name]}")


def _read_token(path: Path, fail: Callable[[str], ConfigError]) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.read().strip()
            mode = os.fstat(fh.fileno()).st_mode
    except OSError as err:
        raise fail(f"cannot read token file {path}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise fail(f"token file {path} is not text") from err
    if not token:
        raise fail(f"token file {path} is empty; enrol this device")
    if stat.S_IMODE(mode) & 0o077:
        log.warning("token file %s is readable by other users; chmod 600 it", path)
    return token
