"""Admin API for clinics, rooms and devices, and the device enrolment endpoint."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from protocol import CommandAction
from server import registry
from server.deps import AdminKey, ServicesDep, SessionDep
from server.fleet import actions
from server.models import ApiKey, Clinic, Device, Room
from server.review import audit

router = APIRouter(prefix="/api/v1", tags=["registry"])


class ClinicCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class ClinicPublic(BaseModel):
    id: str
    name: str


class RoomCreate(BaseModel):
    clinic_id: str
    name: str = Field(min_length=1, max_length=200)
    id: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")


class RoomPublic(BaseModel):
    id: str
    clinic_id: str
    name: str


class DeviceCreate(BaseModel):
    room_id: str
    name: str = ""


class DevicePublic(BaseModel):
    """A device as admins see it: never its token or code hashes."""

    id: str
    room_id: str
    name: str
    enrolled_at: datetime | None
    revoked_at: datetime | None
    agent_version: str
    last_seen_at: datetime | None
    connected: bool
    state: str  # listening | idle | muted | offline | not-enrolled


class EnrolmentCode(BaseModel):
    device_id: str
    code: str
    expires_at: datetime


class EnrolRequest(BaseModel):
    code: str = Field(min_length=4, max_length=64)
    agent_version: str = Field("", max_length=64)


class EnrolResponse(BaseModel):
    device_id: str
    room_id: str
    token: str
    ws_path: str = "/ws/device"


class CommandRequest(BaseModel):
    action: CommandAction


class ApiKeyPublic(BaseModel):
    """An IT API key as IT sees it: never the key or its hash."""

    id: int
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


def _api_key_public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(id=key.id, name=key.name, role=key.role, created_at=key.created_at,
                        revoked_at=key.revoked_at)


def _http(err: registry.RegistryError) -> HTTPException:
    code = status.HTTP_404_NOT_FOUND if isinstance(err, registry.NotFound) else 409
    return HTTPException(code, str(err))


def _device_public(device: Device, services: ServicesDep) -> DevicePublic:
    connected = services.devices.is_connected(device.id)
    if device.token_hash is None:
        state = "revoked" if device.revoked_at else "not-enrolled"
    elif not connected:
        state = "offline"
    else:
        state = device.reported_state or "idle"
    return DevicePublic(id=device.id, room_id=device.room_id, name=device.name,
                        enrolled_at=device.enrolled_at, revoked_at=device.revoked_at,
                        agent_version=device.agent_version, last_seen_at=device.last_seen_at,
                        connected=connected, state=state)


@router.post("/clinics", status_code=201, response_model=ClinicPublic)
def create_clinic(body: ClinicCreate, session: SessionDep, _: AdminKey) -> Clinic:
    try:
        return registry.create_clinic(session, body.name)
    except registry.RegistryError as err:
        raise _http(err) from err


@router.get("/clinics", response_model=list[ClinicPublic])
def list_clinics(session: SessionDep, _: AdminKey) -> list[Clinic]:
    return list(session.scalars(select(Clinic).order_by(Clinic.name)))


@router.post("/rooms", status_code=201, response_model=RoomPublic)
def create_room(body: RoomCreate, session: SessionDep, _: AdminKey) -> Room:
    try:
        return registry.create_room(session, body.clinic_id, body.name, body.id)
    except registry.RegistryError as err:
        raise _http(err) from err


@router.get("/rooms", response_model=list[RoomPublic])
def list_rooms(session: SessionDep, _: AdminKey) -> list[Room]:
    return list(session.scalars(select(Room).order_by(Room.id)))


@router.post("/devices", status_code=201, response_model=DevicePublic)
def create_device(body: DeviceCreate, session: SessionDep, services: ServicesDep,
                  _: AdminKey) -> DevicePublic:
    try:
        return _device_public(registry.create_device(session, body.room_id, body.name), services)
    except registry.RegistryError as err:
        raise _http(err) from err


@router.get("/devices", response_model=list[DevicePublic])
def list_devices(session: SessionDep, services: ServicesDep, _: AdminKey) -> list[DevicePublic]:
    devices = session.scalars(select(Device).order_by(Device.id))
    return [_device_public(d, services) for d in devices]


@router.post("/devices/{device_id}/enrolment-code", status_code=201, response_model=EnrolmentCode)
def new_enrolment_code(device_id: str, session: SessionDep, services: ServicesDep,
                       key: AdminKey) -> EnrolmentCode:
    """A new one-time code (audited, the code never); an earlier unused one stops working."""
    ttl = timedelta(hours=services.settings.enrolment_code_ttl_h)
    try:
        issued = actions.issue_code(session, device_id, ttl, actions.Actor(f"api-key:{key.name}"))
    except actions.DeviceActionError as err:
        raise HTTPException(err.status, err.message) from err
    return EnrolmentCode(device_id=device_id, code=issued.code, expires_at=issued.expires_at)


@router.post("/devices/{device_id}/revoke", response_model=DevicePublic)
def revoke_device(device_id: str, session: SessionDep, services: ServicesDep,
                  key: AdminKey) -> DevicePublic:
    """Lock the device out (audited): it needs a new code to come back."""
    try:
        device = actions.revoke(session, device_id, actions.Actor(f"api-key:{key.name}"))
    except actions.DeviceActionError as err:
        raise HTTPException(err.status, err.message) from err
    return _device_public(device, services)


@router.post("/devices/{device_id}/command", status_code=202)
async def command_device(device_id: str, body: CommandRequest, services: ServicesDep,
                         key: AdminKey) -> dict[str, str]:
    """Start / stop / mute / unmute a room's device (audited, sent or not)."""
    try:
        await actions.command(services, device_id, body.action,
                              actions.Actor(f"api-key:{key.name}"))
    except actions.DeviceActionError as err:
        raise HTTPException(err.status, err.message) from err
    return {"device_id": device_id, "action": body.action}


@router.get("/api-keys", response_model=list[ApiKeyPublic])
def list_api_keys(session: SessionDep, _: AdminKey) -> list[ApiKeyPublic]:
    """Every IT API key (names and dates, never the keys), oldest first."""
    return [_api_key_public(k) for k in registry.list_api_keys(session)]


@router.post("/api-keys/{key_id}/revoke", response_model=ApiKeyPublic)
def revoke_api_key(key_id: int, session: SessionDep, key: AdminKey) -> ApiKeyPublic:
    """The key stops working at once (audited). A key may revoke itself."""
    try:
        revoked = registry.revoke_api_key(session, key_id)
    except registry.RegistryError as err:
        raise _http(err) from err
    audit.record(session, None, audit.AuditAction.API_KEY_REVOKE, actor=f"api-key:{key.name}",
                 detail=f"api key {revoked.id} ({revoked.name}): active -> revoked")
    return _api_key_public(revoked)


@router.post("/devices/enroll", response_model=EnrolResponse)
def enroll(body: EnrolRequest, session: SessionDep) -> EnrolResponse:
    """Called by ``roomscribe-device enroll`` with the one-time code an admin issued."""
    try:
        enrolment = registry.enroll_device(session, body.code, body.agent_version)
    except registry.EnrolmentError as err:
        session.commit()  # keep the expiry bookkeeping
        raise HTTPException(err.status, str(err)) from err
    return EnrolResponse(device_id=enrolment.device_id, room_id=enrolment.room_id,
                         token=enrolment.token)
