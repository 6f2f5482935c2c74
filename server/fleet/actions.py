"""Remote actions on a room's device, each audited with who asked: one place for the IT
API (server/routes/registry.py, server/routes/device_actions.py) and the rooms page
(server/web/rooms_actions.py).

    issue_code     a new one-time enrolment code (shown once; only its hash is kept)
    revoke         the device is locked out (its token and any unused code stop working)
    command        start | stop | mute | unmute, sent to the device wherever it is connected
    diagnostics    the device's diagnostic bundle (no audio, no token), as a named download
    change_config  live settings the agent validates and applies whole, or refuses with a
                   reason (nothing applied)

Errors (:class:`DeviceActionError`, each with the HTTP status the callers answer):

    DeviceActionError
    ├── NoDevice        404  no such device
    ├── NotConnected    409  the device is not connected to any node
    ├── NoAnswer        504  connected, did not answer in time (an older agent ignores it)
    └── Refused         422  the agent refused the config change; ``reason`` says why
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.orm import Session

from protocol import CommandAction, ConfigChange, DiagnosticsRequest, Event
from server import registry
from server.models import Device, Room
from server.review import audit
from server.services import Services

__all__ = [
    "Actor",
    "DeviceActionError",
    "DeviceConfigChange",
    "DiagnosticBundle",
    "IssuedCode",
    "NoAnswer",
    "NoDevice",
    "NotConnected",
    "Refused",
    "change_config",
    "clinic_of_device",
    "command",
    "diagnostics",
    "issue_code",
    "revoke",
]

Key = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Scalar = bool | int | float | Annotated[str, StringConstraints(max_length=500)]


class DeviceConfigChange(BaseModel):
    #: TOML key names of the room's agent config, e.g. {"log_interval_s": 30}.
    changes: dict[Key, Scalar] = Field(min_length=1, max_length=16)


class DeviceActionError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoDevice(DeviceActionError, registry.NotFound):
    status = 404


class NotConnected(DeviceActionError):
    status = 409


class NoAnswer(DeviceActionError):
    status = 504


class Refused(DeviceActionError):
    status = 422

    def __init__(self, reason: str) -> None:
        super().__init__(f"the device refused the change: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked, as the audit log names them: an admin (``user_id`` set) or an IT key."""

    name: str
    user_id: int | None = None


@dataclass(frozen=True, slots=True)
class IssuedCode:
    device_id: str
    code: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class DiagnosticBundle:
    filename: str
    body: dict[str, Any]

    def as_json(self) -> str:
        return json.dumps(self.body, indent=2)


def clinic_of_device(s: Session, device_id: str) -> str | None:
    """The clinic of the device's room (None: no such device)."""
    device = s.get(Device, device_id)
    room = s.get(Room, device.room_id) if device is not None else None
    return room.clinic_id if room is not None else None


def _record(s: Session, action: audit.AuditAction, device_id: str, actor: Actor,
            detail: str) -> None:
    event = audit.record(s, None, action, actor=actor.name,
                         clinic_id=clinic_of_device(s, device_id) or "",
                         detail=f"{detail[:900]} -> device {device_id}")
    event.user_id = actor.user_id


async def _note(services: Services, device_id: str, actor: Actor, detail: str) -> None:
    def write() -> None:
        with services.db.session() as s:
            _record(s, audit.AuditAction.DEVICE_COMMAND, device_id, actor, detail)

    await services.run_db(write)


def issue_code(s: Session, device_id: str, ttl: timedelta, actor: Actor) -> IssuedCode:
    """A new one-time enrolment code; any earlier unused one stops working (audited, the
    code itself never)."""
    try:
        code = registry.issue_enrolment_code(s, device_id, ttl)
    except registry.NotFound as err:
        raise NoDevice(str(err)) from err
    device = s.get(Device, device_id)
    assert device is not None and device.enrolment_expires_at is not None
    expires = device.enrolment_expires_at
    _record(s, audit.AuditAction.DEVICE_CODE, device_id, actor,
            f"enrolment code issued, valid until {expires:%Y-%m-%d %H:%M} UTC")
    return IssuedCode(device_id, code, expires)


def revoke(s: Session, device_id: str, actor: Actor) -> Device:
    """Lock the device out (audited): it needs a new code to come back."""
    device = s.get(Device, device_id)
    if device is None:
        raise NoDevice(f"no device {device_id!r}")
    was = ("revoked" if device.revoked_at else "not enrolled") if device.token_hash is None \
        else "enrolled"
    registry.revoke_device(s, device_id)
    _record(s, audit.AuditAction.DEVICE_REVOKE, device_id, actor, f"{was} -> revoked")
    return device


async def command(services: Services, device_id: str, action: CommandAction,
                  actor: Actor) -> None:
    """Send start / stop / mute / unmute (audited, sent or not; NotConnected if not)."""
    sent = await services.devices.send_command(device_id, action)
    await _note(services, device_id, actor, f"{action}: {'sent' if sent else 'not connected'}")
    if not sent:
        raise NotConnected(f"device {device_id} is not connected")


async def _ask(services: Services, device_id: str, make: Callable[[str], Event], actor: Actor,
               what: str) -> dict[str, Any]:
    try:
        answer = await services.devices.ask(
            device_id, make, timeout_s=services.settings.device_answer_timeout_s)
    except TimeoutError:
        await _note(services, device_id, actor, f"{what}: no answer")
        raise NoAnswer(f"device {device_id} did not answer (an agent older than this "
                       "request ignores it)") from None
    if answer is None:
        await _note(services, device_id, actor, f"{what}: not connected")
        raise NotConnected(f"device {device_id} is not connected")
    return answer


async def diagnostics(services: Services, device_id: str, actor: Actor) -> DiagnosticBundle:
    """Ask the device for its diagnostic bundle (audited)."""
    answer = await _ask(services, device_id,
                        lambda request: DiagnosticsRequest(request).to_event(), actor,
                        "diagnostics")
    raw = answer.get("bundle")
    bundle: dict[str, Any] = raw if isinstance(raw, dict) else {}
    await _note(services, device_id, actor,
                f"diagnostics: received ({len(bundle.get('log', []))} log lines)")
    at = datetime.now(UTC)
    return DiagnosticBundle(f"roomscribe-diagnostics-{device_id}-{at:%Y%m%dT%H%M%SZ}.json",
                            {"device_id": device_id, "received_at": at.isoformat(), **bundle})


async def change_config(services: Services, device_id: str, changes: DeviceConfigChange,
                        actor: Actor) -> dict[str, Any]:
    """Change the device's live settings: what it applied, or Refused with its reason
    (nothing applied). Audited either way."""
    text = json.dumps(changes.changes, sort_keys=True)
    answer = await _ask(services, device_id, lambda request: ConfigChange(
        request, dict(changes.changes)).to_event(), actor, f"config {text}")
    if answer.get("ok") is not True:
        reason = str(answer.get("error") or "refused")
        await _note(services, device_id, actor, f"config {text}: refused: {reason}")
        raise Refused(reason)
    raw = answer.get("applied")
    applied: dict[str, Any] = raw if isinstance(raw, dict) else {}
    await _note(services, device_id, actor, f"config {text}: applied")
    return applied
