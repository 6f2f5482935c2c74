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
refused the change, with its reason. Start / stop / mute stay in server/routes/registry.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import Response
from pydantic import BaseModel, Field, StringConstraints

from protocol import ConfigChange, DiagnosticsRequest, Event
from server.deps import AdminKey, ServicesDep
from server.models import Device, Room
from server.review import audit
from server.services import Services

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["registry"])

Key = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Scalar = bool | int | float | Annotated[str, StringConstraints(max_length=500)]


class DeviceConfigChange(BaseModel):
    #: TOML key names of the room's agent config, e.g. {"log_interval_s": 30}.
    changes: dict[Key, Scalar] = Field(min_length=1, max_length=16)


class DeviceConfigResult(BaseModel):
    device_id: str
    applied: dict[str, Any]
    #: Applied until the agent restarts; the room's TOML file is not changed.
    persisted: bool = False


async def _note(services: Services, device_id: str, actor: str, detail: str) -> None:
    def write() -> None:
        with services.db.session() as s:
            device = s.get(Device, device_id)
            room = s.get(Room, device.room_id) if device else None
            audit.record(s, None, audit.AuditAction.DEVICE_COMMAND, actor=actor,
                         clinic_id=room.clinic_id if room else "",
                         detail=f"{detail[:900]} -> device {device_id}")

    await services.run_db(write)


async def _ask(services: Services, device_id: str, make: Callable[[str], Event], actor: str,
               what: str) -> dict[str, Any]:
    try:
        answer = await services.devices.ask(
            device_id, make, timeout_s=services.settings.device_answer_timeout_s)
    except TimeoutError:
        await _note(services, device_id, actor, f"{what}: no answer")
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT,
                            f"device {device_id} did not answer (an agent older than this "
                            "request ignores it)") from None
    if answer is None:
        await _note(services, device_id, actor, f"{what}: not connected")
        raise HTTPException(status.HTTP_409_CONFLICT, f"device {device_id} is not connected")
    return answer


@router.post("/devices/{device_id}/diagnostics", response_class=Response, responses={
    200: {"content": {"application/json": {}},
          "description": "The device's diagnostic bundle, as a file"}})
async def device_diagnostics(device_id: str, services: ServicesDep, key: AdminKey) -> Response:
    """Ask the device for its diagnostic bundle; download it (audited)."""
    actor = f"api-key:{key.name}"
    answer = await _ask(services, device_id,
                        lambda request: DiagnosticsRequest(request).to_event(), actor,
                        "diagnostics")
    raw = answer.get("bundle")
    bundle: dict[str, Any] = raw if isinstance(raw, dict) else {}
    await _note(services, device_id, actor,
                f"diagnostics: received ({len(bundle.get('log', []))} log lines)")
    at = datetime.now(UTC)
    body = {"device_id": device_id, "received_at": at.isoformat(), **bundle}
    name = f"roomscribe-diagnostics-{device_id}-{at:%Y%m%dT%H%M%SZ}.json"
    return Response(json.dumps(body, indent=2), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.post("/devices/{device_id}/config", response_model=DeviceConfigResult)
async def device_config(device_id: str, body: DeviceConfigChange, services: ServicesDep,
                        key: AdminKey) -> DeviceConfigResult:
    """Change the device's live settings: all applied, or none (422 with the agent's
    reason). Audited either way."""
    actor = f"api-key:{key.name}"
    changes = json.dumps(body.changes, sort_keys=True)
    answer = await _ask(services, device_id, lambda request: ConfigChange(
        request, dict(body.changes)).to_event(), actor, f"config {changes}")
    if answer.get("ok") is not True:
        reason = str(answer.get("error") or "refused")
        await _note(services, device_id, actor, f"config {changes}: refused: {reason}")
        raise HTTPException(422, f"the device refused the change: {reason}")
    raw = answer.get("applied")
    applied: dict[str, Any] = raw if isinstance(raw, dict) else {}
    await _note(services, device_id, actor, f"config {changes}: applied")
    return DeviceConfigResult(device_id=device_id, applied=applied)
