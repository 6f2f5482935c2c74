"""Agent releases: wheels IT has signed, the version offered to each clinic's devices,
and what each device last said about its update.

    AgentRelease        a published wheel (kept in the database, so every node serves
                        it), its sha256 and IT's Ed25519 signature of its bytes
    AgentOffer          scope ("*" = every clinic, else a clinic id) → release version
    AgentUpdateStatus   per device: the version it runs, its update state and why

The server never holds IT's private key and is not trusted by the devices: each one
checks the signature against the public key installed at provisioning
(docs/agent-updates.md). ``keygen`` / ``sign`` are here so IT needs no other tool.
Every change (release added, offer set or withdrawn) is audited.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from device.update import MAX_WHEEL_BYTES
from device.update_verify import wheel_metadata
from server.models import Base, Clinic, Device, Room, utcnow
from server.review import audit
from server.review.models import UTCDateTime
from server.security import hash_secret, secrets_equal

__all__ = [
    "ALL_CLINICS",
    "AgentDrift",
    "AgentOffer",
    "AgentRelease",
    "AgentUpdateStatus",
    "ReleaseError",
    "add_release",
    "device_for_token",
    "drift_of",
    "keygen",
    "offer_for",
    "offered_versions",
    "offers",
    "parse_signature",
    "record_device_update",
    "release_summary",
    "set_offer",
    "sign",
    "update_statuses",
    "wheel_url",
]

ALL_CLINICS = "*"
DISTRIBUTION = "roomscribe"
_TS = UTCDateTime()
_WHEEL_NAME = re.compile(r"^([A-Za-z0-9_.]+)-([A-Za-z0-9_.+!]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


class AgentRelease(Base):
    __tablename__ = "agent_releases"
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    #: base64 of the 64-byte Ed25519 signature of the wheel's bytes
    signature: Mapped[str] = mapped_column(String(128))
    wheel: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    published_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    published_by: Mapped[str] = mapped_column(String(200), default="")


class AgentOffer(Base):
    __tablename__ = "agent_offers"
    #: "*" (every clinic) or a clinic id; a clinic's own offer wins over "*"
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(ForeignKey("agent_releases.version"))
    set_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    set_by: Mapped[str] = mapped_column(String(200), default="")


class AgentUpdateStatus(Base):
    """What the device said when it last asked for its offer."""

    __tablename__ = "agent_update_status"
    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), default="")
    #: device/update.py UpdateState: idle, waiting-for-window, refused, rolled-back, ...
    state: Mapped[str] = mapped_column(String(32), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class ReleaseError(Exception):
    """A release or offer refused; ``status`` is the HTTP status the API answers."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class KeyPair:
    private_pem: bytes
    public_pem: bytes


def keygen() -> KeyPair:
    """A new Ed25519 release key pair (PKCS#8 / SubjectPublicKeyInfo PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    return KeyPair(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
        key.public_key().public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo))


def sign(data: bytes, private_pem: bytes) -> bytes:
    """The Ed25519 signature (64 bytes) of ``data``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError) as err:
        raise ReleaseError(f"not an unencrypted PEM private key: {err}") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise ReleaseError("the release key must be an Ed25519 key")
    return key.sign(data)


def parse_signature(raw: bytes | str) -> bytes:
    """A signature file's content: 64 raw bytes, or their base64 text."""
    if isinstance(raw, bytes) and len(raw) == 64:
        return raw
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    try:
        sig = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as err:
        raise ReleaseError("the signature is neither 64 raw bytes nor base64") from err
    if len(sig) != 64:
        raise ReleaseError(f"an Ed25519 signature is 64 bytes, this one is {len(sig)}")
    return sig


def _verify(data: bytes, signature: bytes, public_pem: bytes) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(public_pem)
    except ValueError as err:
        raise ReleaseError("the public key is not PEM") from err
    if not isinstance(key, Ed25519PublicKey):
        raise ReleaseError("the public key is not an Ed25519 key")
    try:
        key.verify(signature, data)
    except InvalidSignature:
        raise ReleaseError("the signature does not match this wheel and public key") from None


def add_release(s: Session, filename: str, data: bytes, signature: bytes, *, actor: str,
                public_pem: bytes | None = None) -> AgentRelease:
    """Store a signed wheel (audited). Its version is the wheel's own METADATA; with
    ``public_pem`` the signature is checked here too (the devices always check it)."""
    m = _WHEEL_NAME.match(filename)
    if m is None or "/" in filename:
        raise ReleaseError(f"{filename!r} is not a wheel file name")
    if not 0 < len(data) <= MAX_WHEEL_BYTES:
        raise ReleaseError(f"a wheel is 1 byte .. {MAX_WHEEL_BYTES} bytes, got {len(data)}")
    try:
        name, version = wheel_metadata(data)
    except ValueError as err:
        raise ReleaseError(f"{filename}: {err}") from err
    if name.lower().replace("_", "-") != DISTRIBUTION:
        raise ReleaseError(f"{filename} is {name}, not the {DISTRIBUTION} agent")
    if m.group(2) != version.replace("-", "_"):
        raise ReleaseError(f"{filename} names version {m.group(2)}, its METADATA {version}")
    if len(signature) != 64:
        raise ReleaseError("an Ed25519 signature is 64 bytes")
    if public_pem is not None:
        _verify(data, signature, public_pem)
    if s.get(AgentRelease, version) is not None:
        raise ReleaseError(f"release {version} is already published", 409)
    release = AgentRelease(version=version, filename=filename,
                           sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                           signature=base64.b64encode(signature).decode(), wheel=data,
                           published_at=utcnow(), published_by=actor[:200])
    s.add(release)
    audit.record(s, None, audit.AuditAction.AGENT_RELEASE, actor=actor,
                 detail=f"agent release {version} published ({filename}, sha256 "
                        f"{release.sha256})")
    s.flush()
    return release


def set_offer(s: Session, version: str | None, *, clinic_id: str = "", actor: str) -> None:
    """Offer ``version`` to one clinic's devices ("" = every clinic); None withdraws the
    offer of that scope. Audited as "old → new"."""
    scope = clinic_id or ALL_CLINICS
    if clinic_id and s.get(Clinic, clinic_id) is None:
        raise ReleaseError(f"no clinic {clinic_id!r}", 404)
    if version is not None and s.get(AgentRelease, version) is None:
        raise ReleaseError(f"no release {version!r}; publish it first", 404)
    row = s.get(AgentOffer, scope)
    old = row.version if row is not None else "none"
    if version is None:
        if row is not None:
            s.delete(row)
    elif row is None:
        s.add(AgentOffer(scope=scope, version=version, set_at=utcnow(), set_by=actor[:200]))
    else:
        row.version, row.set_at, row.set_by = version, utcnow(), actor[:200]
    where = "every clinic" if scope == ALL_CLINICS else f"clinic {clinic_id}"
    audit.record(s, None, audit.AuditAction.AGENT_RELEASE, actor=actor,
                 clinic_id=clinic_id, detail=f"agent offer for {where}: {old} → "
                                             f"{version or 'none'}")
    s.flush()


def offers(s: Session) -> dict[str, str]:
    """scope → offered version."""
    return {o.scope: o.version for o in s.scalars(select(AgentOffer))}


def offered_versions(s: Session, clinics: list[str]) -> dict[str, str]:
    """clinic → the version its devices are offered ("" = none)."""
    current = offers(s)
    return {c: current.get(c, current.get(ALL_CLINICS, "")) for c in clinics}


def offer_for(s: Session, clinic_id: str) -> AgentRelease | None:
    version = offered_versions(s, [clinic_id])[clinic_id]
    return s.get(AgentRelease, version) if version else None


def wheel_url(release: AgentRelease) -> str:
    return f"/api/v1/agent/releases/{release.version}/wheel"


def device_for_token(s: Session, token: str) -> tuple[Device, str] | None:
    """The enrolled, unrevoked device whose token this is, and its clinic."""
    if not token:
        return None
    wanted = hash_secret(token)
    device = s.scalars(select(Device).where(Device.token_hash == wanted)).first()
    if device is None or device.revoked_at is not None or device.token_hash is None \
            or not secrets_equal(device.token_hash, wanted):
        return None
    room = s.get(Room, device.room_id)
    return device, room.clinic_id if room is not None else ""


def record_device_update(s: Session, device_id: str, version: str, state: str,
                         reason: str) -> None:
    row = s.get(AgentUpdateStatus, device_id)
    if row is None:
        row = AgentUpdateStatus(device_id=device_id)
        s.add(row)
    row.version, row.state, row.reason, row.at = version[:64], state[:32], reason[:500], utcnow()


def update_statuses(s: Session, device_ids: list[str]) -> dict[str, AgentUpdateStatus]:
    return {r.device_id: r for r in s.scalars(select(AgentUpdateStatus).where(
        AgentUpdateStatus.device_id.in_(device_ids)))}


def release_summary(r: AgentRelease) -> dict[str, Any]:
    return {"version": r.version, "filename": r.filename, "sha256": r.sha256, "size": r.size,
            "published_at": r.published_at, "published_by": r.published_by}


@dataclass(frozen=True, slots=True)
class AgentDrift:
    """A device's agent version against the one its clinic is offered (the rooms page)."""

    running: str
    offered: str  # "" = nothing offered
    state: str = ""  # the device's update state, as it last said ("" = never asked)
    reason: str = ""

    @property
    def behind(self) -> bool:
        return bool(self.offered) and self.running != self.offered

    @property
    def text(self) -> str:
        if not self.offered:
            return "no release offered"
        if not self.behind:
            return f"up to date ({self.offered})"
        said = f": {self.state}" if self.state else ""
        return f"{self.running or '?'} → {self.offered}{said}"


def drift_of(s: Session, clinics: Collection[str], device_ids: list[str],
             ) -> Callable[[str, str | None, str], AgentDrift | None]:
    """``(clinic, device id, running version) -> AgentDrift`` for the rooms page (None for
    a row without a device), with two queries for all rows."""
    offered = offered_versions(s, list(clinics))
    statuses = update_statuses(s, device_ids) if device_ids else {}

    def drift(clinic_id: str, device_id: str | None, running: str) -> AgentDrift | None:
        if device_id is None:
            return None
        st = statuses.get(device_id)
        return AgentDrift(running, offered.get(clinic_id, ""), st.state if st else "",
                          st.reason if st else "")

    return drift
