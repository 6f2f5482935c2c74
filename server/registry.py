"""Clinics, rooms, devices and API keys: what an IT admin manages.

Blocking functions over a session; the admin API and the ``roomscribe admin``
CLI both call them. Secrets (enrolment codes, device tokens, API keys) are
returned once in plain text and stored only as hashes.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import ApiKey, Clinic, Device, Room, utcnow
from server.security import hash_secret, new_enrolment_code, new_token, normalise_code

__all__ = [
    "Enrolment",
    "EnrolmentError",
    "NotFound",
    "RegistryError",
    "create_api_key",
    "create_clinic",
    "create_device",
    "create_room",
    "enroll_device",
    "issue_enrolment_code",
    "list_api_keys",
    "revoke_api_key",
    "revoke_device",
    "slugify",
    "verify_api_key",
]


class RegistryError(Exception):
    """Base for admin-facing errors; the message is shown to the admin."""


class NotFound(RegistryError):
    pass


class Conflict(RegistryError):
    pass


class EnrolmentError(RegistryError):
    """Unknown, used or expired enrolment code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Enrolment:
    device_id: str
    room_id: str
    token: str


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:60] or secrets.token_hex(4)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def create_clinic(s: Session, name: str) -> Clinic:
    if s.scalars(select(Clinic).where(Clinic.name == name)).first():
        raise Conflict(f"a clinic named {name!r} exists")
    cid = slugify(name)
    taken = s.get(Clinic, cid)
    if taken is not None:  # another name with the same slug ("North Clinic!")
        raise Conflict(f"clinic id {cid!r} is taken by {taken.name!r}: "
                       "choose a name that differs in letters or digits")
    clinic = Clinic(id=cid, name=name)
    s.add(clinic)
    s.flush()
    return clinic


def create_room(s: Session, clinic_id: str, name: str, room_id: str | None = None) -> Room:
    if s.get(Clinic, clinic_id) is None:
        raise NotFound(f"no clinic {clinic_id!r}")
    rid = room_id or slugify(name)
    if s.get(Room, rid) is not None:
        raise Conflict(f"room {rid!r} exists")
    room = Room(id=rid, clinic_id=clinic_id, name=name)
    s.add(room)
    s.flush()
    return room


def create_device(s: Session, room_id: str, name: str = "") -> Device:
    if s.get(Room, room_id) is None:
        raise NotFound(f"no room {room_id!r}")
    device = Device(id=f"dev-{secrets.token_hex(6)}", room_id=room_id, name=name)
    s.add(device)
    s.flush()
    return device


def issue_enrolment_code(s: Session, device_id: str, ttl: timedelta) -> str:
    """A new one-time code for the device; any earlier unused code stops working."""
    device = s.get(Device, device_id)
    if device is None:
        raise NotFound(f"no device {device_id!r}")
    code = new_enrolment_code()
    device.enrolment_code_hash = hash_secret(normalise_code(code))
    device.enrolment_expires_at = utcnow() + ttl
    return code


def enroll_device(s: Session, code: str, agent_version: str = "") -> Enrolment:
    """Trade a one-time code for the device's token. Re-enrolling replaces the old token."""
    device = s.scalars(
        select(Device).where(Device.enrolment_code_hash == hash_secret(normalise_code(code)))
    ).first()
    if device is None:
        raise EnrolmentError("unknown or already used enrolment code", 404)
    expires = device.enrolment_expires_at
    if expires is None or _aware(expires) < utcnow():
        device.enrolment_code_hash = None
        raise EnrolmentError("enrolment code expired; ask IT for a new one", 410)
    token = new_token()
    device.token_hash = hash_secret(token)
    device.enrolment_code_hash = None
    device.enrolment_expires_at = None
    device.enrolled_at = utcnow()
    device.revoked_at = None
    device.agent_version = agent_version[:64]
    return Enrolment(device.id, device.room_id, token)


def revoke_device(s: Session, device_id: str) -> Device:
    device = s.get(Device, device_id)
    if device is None:
        raise NotFound(f"no device {device_id!r}")
    device.revoked_at = utcnow()
    device.token_hash = None
    device.enrolment_code_hash = None
    return device


def create_api_key(s: Session, name: str, role: str = "admin") -> str:
    key = new_token("rsk")
    s.add(ApiKey(name=name, key_hash=hash_secret(key), role=role))
    s.flush()
    return key


def list_api_keys(s: Session) -> list[ApiKey]:
    """Every API key, oldest first (the rows hold hashes only; callers show none)."""
    return list(s.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_api_key(s: Session, key: int | str) -> ApiKey:
    """Revoke a key by id or by name (a name must be unique among open keys). It stops
    working at once; revoking a revoked key changes nothing."""
    if isinstance(key, int):
        row = s.get(ApiKey, key)
        if row is None:
            raise NotFound(f"no API key {key}")
    else:
        rows = list(s.scalars(select(ApiKey).where(ApiKey.name == key,
                                                   ApiKey.revoked_at.is_(None))))
        if not rows:
            raise NotFound(f"no open API key named {key!r}")
        if len(rows) > 1:
            raise Conflict(f"{len(rows)} open API keys are named {key!r}; revoke by id "
                           f"({', '.join(str(r.id) for r in rows)})")
        row = rows[0]
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    s.flush()
    return row


def verify_api_key(s: Session, key: str) -> ApiKey | None:
    api_key = s.scalars(select(ApiKey).where(ApiKey.key_hash == hash_secret(key))).first()
    if api_key is None or api_key.revoked_at is not None:
        return None
    return api_key
