"""The rooms page's device buttons, for an admin of the device's clinic (session cookie +
``X-CSRF-Token``, as every page button; or a user's bearer token):

    POST /admin/rooms/devices/{device_id}/enrolment-code   {code, expires_at} (shown once)
    POST /admin/rooms/devices/{device_id}/revoke           {device_id, state: "revoked"}
    POST /admin/rooms/devices/{device_id}/command          {"action": start|stop|mute|unmute}
    POST /admin/rooms/devices/{device_id}/diagnostics      the bundle, as a JSON download
    POST /admin/rooms/devices/{device_id}/config           {"changes": {key: value}}

The work and its audit row (the admin's user id and name) are server/fleet/actions.py's,
as for the IT API. JSON errors: 401 not logged in, 403 not an admin (or no CSRF token),
404 no such device in the admin's clinics, 409 not connected, 504 no answer, 422 refused
(``detail`` carries the agent's reason).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import Response
from pydantic import BaseModel

from protocol import CommandAction
from server.deps import ServicesDep, SessionDep
from server.fleet import actions
from server.review import auth
from server.review.deps import optional_user
from server.review.lifecycle import Role

__all__ = ["router"]

router = APIRouter(prefix="/admin/rooms/devices", include_in_schema=False)


class CommandBody(BaseModel):
    action: CommandAction


def admin_of_device(device_id: str, session: SessionDep,
                    who: Annotated[auth.Principal | None, Depends(optional_user)]
                    ) -> actions.Actor:
    """The admin asking, if they administer the device's clinic (CSRF is checked by
    ``optional_user`` for a cookie session)."""
    if who is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "log in as an admin")
    clinics = who.clinics(Role.ADMIN)
    if not clinics:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the rooms page's actions are for admins")
    if actions.clinic_of_device(session, device_id) not in clinics:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id!r} in your clinics")
    return actions.Actor(who.username, who.user_id)


AdminActor = Annotated[actions.Actor, Depends(admin_of_device)]


def _http(err: actions.DeviceActionError) -> HTTPException:
    return HTTPException(err.status, err.message)


@router.post("/{device_id}/enrolment-code", status_code=201)
def enrolment_code(device_id: str, session: SessionDep, services: ServicesDep,
                   actor: AdminActor) -> dict[str, str]:
    ttl = timedelta(hours=services.settings.enrolment_code_ttl_h)
    try:
        issued = actions.issue_code(session, device_id, ttl, actor)
    except actions.DeviceActionError as err:
        raise _http(err) from err
    return {"device_id": device_id, "code": issued.code,
            "expires_at": issued.expires_at.isoformat()}


@router.post("/{device_id}/revoke")
def revoke(device_id: str, session: SessionDep, actor: AdminActor) -> dict[str, str]:
    try:
        actions.revoke(session, device_id, actor)
    except actions.DeviceActionError as err:
        raise _http(err) from err
    return {"device_id": device_id, "state": "revoked"}


@router.post("/{device_id}/command", status_code=202)
async def command(device_id: str, body: CommandBody, services: ServicesDep,
                  actor: AdminActor) -> dict[str, str]:
    try:
        await actions.command(services, device_id, body.action, actor)
    except actions.DeviceActionError as err:
        raise _http(err) from err
    return {"device_id": device_id, "action": body.action.value}


@router.post("/{device_id}/diagnostics")
async def diagnostics(device_id: str, services: ServicesDep, actor: AdminActor) -> Response:
    try:
        bundle = await actions.diagnostics(services, device_id, actor)
    except actions.DeviceActionError as err:
        raise _http(err) from err
    return Response(bundle.as_json(), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{bundle.filename}"'})


@router.post("/{device_id}/config")
async def config(device_id: str, body: actions.DeviceConfigChange, services: ServicesDep,
                 actor: AdminActor) -> dict[str, Any]:
    try:
        applied = await actions.change_config(services, device_id, body, actor)
    except actions.DeviceActionError as err:
        raise _http(err) from err
    return {"device_id": device_id, "applied": applied, "persisted": False}
