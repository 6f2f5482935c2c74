"""Transcript routes: the stored transcript, live per-room metrics, the live-view websocket.

    GET /api/v1/encounters/{id}/transcript   segments + status + progress (clinician)
    GET /api/v1/transcription/rooms          rooms being transcribed, backlog, lag (IT key)
    WS  /ws/encounters/{id}/live             live events (clinician), see README

Viewers are the encounter's clinicians (``server/transcripts/auth.py``); each
read is audited, and so is each refusal. Encounter ids are canonical lowercase
UUIDs (422 / close 4404 otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.websockets import WebSocketState

from protocol import is_canonical_uuid
from server.deps import AdminKey, ServicesDep, SessionDep
from server.review.deps import AuditRefusals, record_refusal
from server.review.errors import ReviewError
from server.review.viewers import EncounterGrant
from server.routes.encounters import EncounterIdPath
from server.transcripts.auth import authorize_viewer

__all__ = ["router"]

router = APIRouter(tags=["transcripts"])

#: Close codes of the live socket.
CLOSE_UNAUTHORIZED = 4401  # not logged in, a bad / used / expired ticket
CLOSE_FORBIDDEN = 4403  # the IT API key or an admin: no patient data
CLOSE_NOT_FOUND = 4404  # no such encounter (or not yours; or not a canonical UUID)
CLOSE_TOO_SLOW = 1013  # the viewer did not keep up; reconnect to resume


def require_viewer(encounter_id: EncounterIdPath, request: Request, session: SessionDep,
                   services: ServicesDep) -> EncounterGrant:
    grant = authorize_viewer(session, request, encounter_id, services, "transcript")
    session.commit()  # the audit row is in before the transcript goes out
    return grant


Viewer = Annotated[EncounterGrant, Depends(require_viewer)]


class WordPublic(BaseModel):
    text: str
    start_s: float
    end_s: float
    confidence: float


class SegmentPublic(BaseModel):
    id: int
    start_s: float
    end_s: float
    text: str
    speaker: str
    words: list[WordPublic]


class TranscriptionPublic(BaseModel):
    status: str  # none | running | complete | failed
    engine: str
    language: str
    audio_s: float
    backlog_s: float
    max_backlog_s: float
    behind: bool
    behind_events: int
    rtf: float | None
    end_to_transcript_ms: int | None
    error: str


class TranscriptPublic(BaseModel):
    encounter_id: str
    transcription: TranscriptionPublic
    segments: list[SegmentPublic]


@router.get("/api/v1/encounters/{encounter_id}/transcript", response_model=TranscriptPublic,
            dependencies=[AuditRefusals])
def get_transcript(encounter_id: EncounterIdPath, services: ServicesDep,
                   _: Viewer) -> TranscriptPublic:
    stored = services.transcripts.load(encounter_id)
    live = services.transcription.monitor.get(encounter_id) if services.transcription else None
    if stored is None:
        state = TranscriptionPublic(status="none", engine="", language="", audio_s=0,
                                    backlog_s=0, max_backlog_s=0, behind=False,
                                    behind_events=0, rtf=None, end_to_transcript_ms=None,
                                    error="")
        return TranscriptPublic(encounter_id=encounter_id, transcription=state, segments=[])
    p = stored.progress
    state = TranscriptionPublic(
        status=stored.status, engine=stored.engine, language=stored.language,
        audio_s=live.decoded_s if live else p.audio_s,
        backlog_s=live.backlog_s if live else p.backlog_s,
        max_backlog_s=live.max_backlog_s if live else p.max_backlog_s,
        behind=live.behind if live else False,
        behind_events=live.behind_events if live else p.behind_events,
        rtf=live.rtf if live else (round(p.engine_s / p.audio_s, 4) if p.audio_s else None),
        end_to_transcript_ms=stored.end_to_transcript_ms, error=stored.error)
    segments = [SegmentPublic.model_validate(s.to_dict()) for s in stored.segments]
    return TranscriptPublic(encounter_id=encounter_id, transcription=state, segments=segments)


@router.get("/api/v1/transcription/rooms")
def transcription_rooms(services: ServicesDep, _: AdminKey) -> dict[str, Any]:
    """Every encounter being transcribed now, with its backlog (the back-pressure metric)."""
    if services.transcription is None:
        return {"engine": None, "active": 0, "behind": 0, "behind_events_total": 0, "rooms": []}
    return {"engine": services.transcription.engine.name,
            **services.transcription.monitor.snapshot()}


def _event(type_: str, data: dict[str, Any]) -> str:
    return json.dumps({"type": type_, "data": data}, separators=(",", ":"))


@router.websocket("/ws/encounters/{encounter_id}/live")
async def live_transcript(ws: WebSocket, encounter_id: str) -> None:
    services = ws.app.state.services
    await ws.accept()
    if not is_canonical_uuid(encounter_id):
        await ws.close(CLOSE_NOT_FOUND, "encounter ids are canonical lowercase UUIDs")
        return

    def check() -> tuple[int, str]:
        try:
            with services.db.session() as session:
                authorize_viewer(session, ws, encounter_id, services, "live transcript",
                                 live=True)
            return 0, ""
        except ReviewError as err:
            record_refusal(services, ws, err.status, encounter_id=encounter_id)
            return err.status, err.message

    try:
        status, message = await services.run_db(check)
    except SQLAlchemyError:
        await ws.close(1011, "database unavailable")
        return
    if status:
        code = {401: CLOSE_UNAUTHORIZED, 403: CLOSE_FORBIDDEN}.get(status, CLOSE_NOT_FOUND)
        await ws.close(code, message[:120])
        return
    with services.live.subscribe(encounter_id) as viewer:
        # Subscribed first, then the stored finals: nothing falls between the two.
        stored = await services.run_db(services.transcripts.load, encounter_id)
        sent_ids: set[int] = set()
        status = stored.status if stored else "none"
        await ws.send_text(_event("transcript-state", {
            "encounter_id": encounter_id, "status": status,
            "engine": stored.engine if stored else ""}))
        for seg in stored.segments if stored else ():
            sent_ids.add(seg.id)
            await ws.send_text(_event("final", seg.to_dict()))
        if status in ("complete", "failed"):
            await ws.close(1000, f"transcript {status}")
            return
        receiver = asyncio.create_task(_drain(ws))
        try:
            while True:
                getter = asyncio.ensure_future(viewer.queue.get())
                await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():  # the viewer went away
                    getter.cancel()
                    return
                event = getter.result()
                if event is None:  # cut off: it did not keep up
                    await ws.close(CLOSE_TOO_SLOW, "viewer too slow; reconnect to resume")
                    return
                if event["type"] == "final" and event["data"]["id"] in sent_ids:
                    continue
                await ws.send_text(json.dumps(event, separators=(",", ":")))
                if event["type"] in ("transcript-complete", "error"):
                    await ws.close(1000, "transcript done")
                    return
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiver
            if ws.client_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await ws.close(1000)


async def _drain(ws: WebSocket) -> None:
    """Read (and ignore) what the viewer sends, so a disconnect is noticed."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await ws.receive_text()
