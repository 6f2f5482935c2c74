"""The review API's request and response models: Create / Update / Public apart,
so no response can carry a column it should not (password hashes, token hashes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from server.review.document import DECISIONS

__all__ = [
    "AuditPublic",
    "InstructionChangeIn",
    "ItemPublic",
    "LoginRequest",
    "LoginResponse",
    "MePublic",
    "MembershipCreate",
    "NoteEdit",
    "OrderChangeIn",
    "PoolCreate",
    "PoolMemberCreate",
    "PoolPublic",
    "PoolTurnaroundPublic",
    "QueueEntryPublic",
    "ReturnRequest",
    "RoomPhysicianCreate",
    "RoomStatusPublic",
    "RoutingRuleCreate",
    "RoutingRulePublic",
    "TokenCreate",
    "TokenCreated",
    "UserCreate",
    "UserPublic",
    "VersionPublic",
]

_ROLE = r"^(physician|partner|admin)$"


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class MePublic(BaseModel):
    id: int
    username: str
    display_name: str
    roles: dict[str, str]  # clinic id → role


class LoginResponse(BaseModel):
    user: MePublic
    csrf_token: str


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class TokenCreated(BaseModel):
    name: str
    token: str  # shown once; only its hash is stored


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=8, max_length=1024)
    clinic_id: str
    role: str = Field(pattern=_ROLE)
    display_name: str = Field("", max_length=200)


class MembershipPublic(BaseModel):
    clinic_id: str
    role: str


class UserPublic(BaseModel):
    id: int
    username: str
    display_name: str
    disabled: bool
    memberships: list[MembershipPublic]


class MembershipCreate(BaseModel):
    username: str
    clinic_id: str
    role: str = Field(pattern=_ROLE)


class PoolCreate(BaseModel):
    clinic_id: str
    name: str = Field(min_length=1, max_length=200)
    id: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    suite: str = Field("", max_length=100)
    specialty: str = Field("", max_length=100)
    turnaround_h: float = Field(24.0, gt=0, le=720)
    target_pct: float = Field(90.0, gt=0, le=100)
    lease_min: float = Field(30.0, ge=1, le=1440)


class PoolPublic(BaseModel):
    id: str
    clinic_id: str
    name: str
    suite: str
    specialty: str
    turnaround_h: float
    target_pct: float
    lease_min: float
    members: list[str] = []


class PoolMemberCreate(BaseModel):
    username: str


class RoutingRuleCreate(BaseModel):
    pool_id: str
    priority: int = Field(100, ge=0, le=1_000_000)
    room_id: str = ""
    room_prefix: str = Field("", max_length=64)
    template: str = Field("", max_length=32)


class RoutingRulePublic(RoutingRuleCreate):
    id: int
    clinic_id: str


class RoomPhysicianCreate(BaseModel):
    room_id: str
    username: str


class QueueEntryPublic(BaseModel):
    item_id: str
    encounter_id: str
    clinic_id: str
    room_id: str
    room_name: str
    pool_id: str | None
    pool_name: str
    state: str
    version: int
    claimed_by: str | None
    physician: str | None
    received_at: datetime
    due_at: datetime
    lease_expires_at: datetime | None
    overdue: bool
    return_comment: str
    mine: bool
    patient_name: str = ""  # "" while nobody knows whose visit it was
    patient_dob: str = ""
    patient_mrn: str = ""
    appointment_at: datetime | None = None
    visit_reason: str = ""  # as booked in the schedule
    visit_seconds: float | None = None
    chief_complaint: str = ""  # the note's first sentence of it, else the visit reason


class PoolTurnaroundPublic(BaseModel):
    pool_id: str
    name: str
    clinic_id: str
    turnaround_h: float
    target_pct: float
    signed: int
    signed_in_time: int
    pct_in_time: float | None
    meets_target: bool | None
    open: int
    open_overdue: int
    over_target: dict[str, int]


class ItemPublic(BaseModel):
    id: str
    encounter_id: str
    clinic_id: str
    room_id: str
    pool_id: str | None
    physician_id: int | None
    state: str
    version: int
    claimed_by: int | None
    lease_expires_at: datetime | None
    received_at: datetime
    due_at: datetime
    sent_at: datetime | None
    signed_at: datetime | None
    return_comment: str
    edit_distance: int | None
    draft_words: int | None
    allowed_actions: list[str]
    document: dict[str, Any]
    #: name, dob, mrn, clinic_id, appointment_at, source, visit_reason (None: not known)
    patient: dict[str, Any] | None = None


class OrderChangeIn(BaseModel):
    id: str | None = None  # None: a new order (kind and name required)
    decision: str = Field("pending", pattern="^(" + "|".join(DECISIONS) + ")$")
    fields: dict[str, str] = {}
    remove: bool = False  # take out an order a reviewer added (an AI-drafted one: reject it)


class InstructionChangeIn(BaseModel):
    """A patient instruction to change (``id``), remove (``id`` and ``remove``), or add
    (no ``id``; ``fields`` then need ``kind`` and ``text``)."""

    id: str | None = Field(None, max_length=32)
    fields: dict[str, str] = {}
    remove: bool = False


class NoteEdit(BaseModel):
    """One save. ``base_version`` is the version the edit started from (or send If-Match)."""

    base_version: int = Field(ge=1)
    sections: dict[str, str] = {}
    orders: list[OrderChangeIn] = []
    instructions: list[InstructionChangeIn] = Field([], max_length=200)
    reason: str = Field("", max_length=2000)  # why a signed note is amended (needed then)


class ReturnRequest(BaseModel):
    comment: str = Field(min_length=1, max_length=4000)


class VersionPublic(BaseModel):
    number: int
    kind: str
    author_name: str
    created_at: datetime
    document: dict[str, Any] | None = None


class AuditPublic(BaseModel):
    id: int
    at: datetime
    user_id: int | None
    actor: str
    clinic_id: str
    action: str
    item_id: str
    encounter_id: str
    detail: str


class RoomStatusPublic(BaseModel):
    room_id: str
    room_name: str
    clinic_id: str
    device_id: str | None
    device_name: str
    state: str  # listening | idle | offline | muted | not-enrolled | revoked | no-device
    last_seen_at: datetime | None


class NoteSettingsPublic(BaseModel):
    clinic_id: str
    template: str  # soap | aci | the name of a TOML template in the templates folder
    style: str  # concise | detailed | verbatim
    templates: list[str]  # what can be chosen
    styles: list[str]


class NoteSettingsUpdate(BaseModel):
    template: str | None = Field(None, min_length=1, max_length=64)
    style: str | None = Field(None, min_length=1, max_length=16)


class AppointmentPublic(BaseModel):
    """One appointment of the schedule, for a reviewer choosing a visit's patient."""

    id: int
    room_id: str
    starts_at: datetime  # UTC
    local_start: str  # "YYYY-MM-DD HH:MM" in the clinic's time zone
    duration_min: int
    name: str
    dob: str
    mrn: str
    reason: str
    linked: bool  # the item's patient now comes from this appointment


class PatientUpdate(BaseModel):
    """The patient of a visit: ``appointment_id`` (one of the clinic's appointments), or
    ``name``, ``dob`` (YYYY-MM-DD) and ``mrn`` typed in."""

    appointment_id: int | None = None
    name: str = Field("", max_length=200)
    dob: str = Field("", max_length=10)
    mrn: str = Field("", max_length=64)

    @model_validator(mode="after")
    def _one_way(self) -> PatientUpdate:
        typed = bool(self.name.strip() or self.dob.strip() or self.mrn.strip())
        if (self.appointment_id is None) == (not typed):
            raise ValueError("send either appointment_id, or name, dob and mrn")
        return self


class TimezoneUpdate(BaseModel):
    timezone: str = Field(min_length=1, max_length=64)  # IANA, e.g. "America/Chicago"


class TimezonePublic(BaseModel):
    clinic_id: str
    timezone: str


class ScheduleImported(BaseModel):
    clinic_id: str
    imported: int  # new appointments
    updated: int  # known ones whose name, birth date, length or reason changed
    unchanged: int


class SignRequest(BaseModel):
    """``attest``: the physician confirms they reviewed the note; ``acknowledged``: ids of
    the sign checks they acknowledge (see ``GET …/sign-review``)."""

    attest: bool = False
    acknowledged: list[str] = Field([], max_length=200)


class SignCheckPublic(BaseModel):
    id: str  # stable: "empty-section:assessment", "controlled:o1", "no-patient", …
    severity: str  # blocker | warning
    message: str
    ref: str  # section key or order / instruction id; "" for the whole note
    acknowledgeable: bool


class DiffRunPublic(BaseModel):
    op: str  # equal | insert | delete
    text: str


class SectionReviewPublic(BaseModel):
    key: str
    title: str
    ai_text: str
    text: str
    changed: bool
    diff: list[DiffRunPublic]


class OrderReviewPublic(BaseModel):
    id: str
    name: str
    kind: str
    change: str  # added | removed | rejected | modified | accepted | pending
    fields: dict[str, list[str]]  # changed field → [as the AI drafted it, as it stands]
    added_by: str


class InstructionReviewPublic(BaseModel):
    id: str
    change: str  # added | removed | rejected | modified | unchanged
    ai_text: str
    text: str


class SignReviewPublic(BaseModel):
    """What the physician reviews before signing."""

    checks: list[SignCheckPublic]
    blocking: list[str]  # ids of blockers not acknowledged (in the preview)
    sections: list[SectionReviewPublic]
    orders: list[OrderReviewPublic]
    instructions: list[InstructionReviewPublic]
    editors: list[str]  # who changed the AI draft (authors of versions 2 and on)
    attestation_preview: str
