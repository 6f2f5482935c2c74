"""Agent releases: IT publishes and offers them (IT API key, audited); devices fetch them
(their own token). docs/agent-updates.md tells the whole story.

    POST /api/v1/agent-releases            multipart: wheel (file), signature (base64)
    GET  /api/v1/agent-releases            releases and offers
    PUT  /api/v1/agent-releases/offer      {"version": "0.2.0" | null, "clinic_id": ""}
    GET  /api/v1/agent/offer               device: its offer (204: none); it tells the
                                           server its version, update state and why
    GET  /api/v1/agent/releases/{v}/wheel  device: the wheel, only the one offered to it
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, UploadFile, status
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import select

from device.update import MAX_WHEEL_BYTES
from server.deps import AdminKey, SessionDep
from server.fleet import releases
from server.fleet.releases import AgentRelease, ReleaseError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["agent-releases"])
_bearer = HTTPBearer(auto_error=False)


class ReleasePublic(BaseModel):
    version: str
    filename: str
    sha256: str
    size: int
    published_at: datetime
    published_by: str


class ReleaseList(BaseModel):
    releases: list[ReleasePublic]
    #: "*" (every clinic) or a clinic id → the version offered
    offers: dict[str, str]


class OfferChange(BaseModel):
    version: str | None = Field(None, min_length=1, max_length=64)
    clinic_id: str = Field("", max_length=64)


class AgentOfferPublic(BaseModel):
    version: str
    filename: str
    sha256: str
    size: int
    signature: str
    url: str


def _fail(err: ReleaseError) -> HTTPException:
    return HTTPException(err.status, str(err))


@router.post("/agent-releases", response_model=ReleasePublic, status_code=201)
async def publish_release(session: SessionDep, key: AdminKey,
                          wheel: Annotated[UploadFile, File()],
                          signature: Annotated[str, Form(max_length=200)]) -> Any:
    """Publish a signed agent wheel (audited). It is offered to no device until
    ``PUT /agent-releases/offer``."""
    data = await wheel.read(MAX_WHEEL_BYTES + 1)
    try:
        return releases.release_summary(releases.add_release(
            session, wheel.filename or "", data, releases.parse_signature(signature),
            actor=f"api-key:{key.name}"))
    except ReleaseError as err:
        raise _fail(err) from None


@router.get("/agent-releases", response_model=ReleaseList)
def list_releases(session: SessionDep, _key: AdminKey) -> Any:
    rows = session.scalars(select(AgentRelease).order_by(AgentRelease.published_at.desc()))
    return {"releases": [releases.release_summary(r) for r in rows],
            "offers": releases.offers(session)}


@router.put("/agent-releases/offer", response_model=ReleaseList)
def change_offer(body: OfferChange, session: SessionDep, key: AdminKey) -> Any:
    """Offer a release to every clinic (``clinic_id`` "") or one; ``version`` null
    withdraws that offer. Devices take it in their maintenance window (audited)."""
    try:
        releases.set_offer(session, body.version, clinic_id=body.clinic_id,
                           actor=f"api-key:{key.name}")
    except ReleaseError as err:
        raise _fail(err) from None
    return list_releases(session, key)


def _device(session: SessionDep,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
            ) -> tuple[str, str]:
    found = releases.device_for_token(session, credentials.credentials if credentials else "")
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "send the device's token as a "
                            "bearer token", headers={"WWW-Authenticate": "Bearer"})
    device, clinic_id = found
    return device.id, clinic_id


DeviceAuth = Annotated[tuple[str, str], Depends(_device)]


@router.get("/agent/offer", response_model=AgentOfferPublic,
            responses={204: {"description": "Nothing offered to this device"}})
def device_offer(session: SessionDep, device: DeviceAuth,
                 version: Annotated[str, Query(max_length=64)] = "",
                 state: Annotated[str, Query(max_length=32)] = "",
                 reason: Annotated[str, Query(max_length=500)] = "") -> Any:
    """The release offered to this device's clinic; records what the device said."""
    device_id, clinic_id = device
    if version or state:
        releases.record_device_update(session, device_id, version, state, reason)
    release = releases.offer_for(session, clinic_id)
    if release is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return AgentOfferPublic(version=release.version, filename=release.filename,
                            sha256=release.sha256, size=release.size,
                            signature=release.signature, url=releases.wheel_url(release))


@router.get("/agent/releases/{version}/wheel", response_class=Response, responses={
    200: {"content": {"application/octet-stream": {}}, "description": "The wheel"}})
def device_wheel(version: str, session: SessionDep, device: DeviceAuth) -> Response:
    """The offered wheel. Another release: 404 (a device takes only what it is offered)."""
    _device_id, clinic_id = device
    release = releases.offer_for(session, clinic_id)
    if release is None or release.version != version:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"release {version} is not offered "
                            "to this device")
    return Response(release.wheel, media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{release.filename}"',
        "X-Signature": release.signature,
        "Digest": "sha-256=" + base64.b64encode(bytes.fromhex(release.sha256)).decode()})
