"""Remote actions on a room's device, for IT (the IT admin API key), each audited:

    POST /api/v1/devices/{device_id}/diagnostics   the device's diagnostic bundle (agent
                                                   version, state, config without token,
                                                   counters, recent log lines) as a JSON
                                                   download
    POST /api/v1/devices/{device_id}/config        {"changes": {key: value}}: settings the
                                                   agent may change live (device/settings.py
                                                   LIVE_KEYS); applied whole or refused

Both ask the device over its socket, on whichever node holds it (server/bus/devices.py),
and wait up to ``device_answer_timeout_s``. 409: the device is not connected; 504: it did
not answer (an agent older than these requests ignores them); 422 (config): the agent
refused the change, with its reason. Start / stop / mute stay in server/routes/registry.py;
the work and its audit are in server/fleet/actions.py (the rooms page calls it too).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel

from server.deps import AdminKey, ServicesDep
from server.fleet import actions

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["registry"])

#: {"changes": {key: value}}: TOML key names of the room's agent config.
DeviceConfigChange = actions.DeviceConfigChange


class DeviceConfigResult(BaseModel):
    device_id: str
    applied: dict[str, Any]
    #: Applied until the agent restarts; the room's TOML file is not changed.
    persisted: bool = False


@router.post("/devices/{device_id}/diagnostics", response_class=Response, responses={
    200: {"content": {"application/json": {}},
          "description": "The device's diagnostic bundle, as a file"}})
async def device_diagnostics(device_id: str, services: ServicesDep, key: AdminKey) -> Response:
    """Ask the device for its diagnostic bundle; download it (audited)."""
    try:
        bundle = await actions.diagnostics(services, device_id,
                                           actions.Actor(f"api-key:{key.name}"))
    except actions.DeviceActionError as err:
        raise HTTPException(err.status, err.message) from err
    return Response(bundle.as_json(), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{bundle.filename}"'})


@router.post("/devices/{device_id}/config", response_model=DeviceConfigResult)
async def device_config(device_id: str, body: DeviceConfigChange, services: ServicesDep,
                        key: AdminKey) -> DeviceConfigResult:
    """Change the device's live settings: all applied, or none (422 with the agent's
    reason). Audited either way."""
    try:
        applied = await actions.change_config(services, device_id, body,
                                              actions.Actor(f"api-key:{key.name}"))
    except actions.DeviceActionError as err:
        raise HTTPException(err.status, err.message) from err
    return DeviceConfigResult(device_id=device_id, applied=applied)
