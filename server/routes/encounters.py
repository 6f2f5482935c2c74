"""Encounter records and their stored audio.

- ``GET /api/v1/encounters`` and ``/{id}``: the ingest bookkeeping (device,
  room, frames, gaps; no patient data) for the IT API key.
- ``GET /api/v1/encounters/{id}/audio.wav``: the visit's audio, for its
  clinicians only (``server/review/viewers.py``): a bearer user token, the
  session cookie, or a ``?ticket=`` of purpose ``encounter-audio``. The IT key
  gets 403. Each read is audited (``play_audio``), and so is each refusal.

Encounter ids are canonical lowercase UUIDs; anything else is 422.
"""

from __future__ import annotations

import io
import wave
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel
from sqlalchemy import func, select

from protocol import SUPPORTED_FORMAT, is_canonical_uuid
from server.deps import AdminKey, ServicesDep, SessionDep
from server.models import AudioFrameRow, AudioGap, Encounter
from server.review.audit import AuditAction, record
from server.review.deps import AuditRefusals
from server.review.tickets import TicketPurpose
from server.review.viewers import encounter_reader

__all__ = ["EncounterIdPath", "router"]

router = APIRouter(prefix="/api/v1/encounters", tags=["encounters"])


def _canonical(value: str) -> str:
    if not is_canonical_uuid(value):
        raise ValueError("encounter ids are canonical lowercase UUIDs "
                         "(8-4-4-4-12 hex digits, as the device made them)")
    return value


#: An encounter id in a path: a canonical lowercase UUID, else 422.
EncounterIdPath = Annotated[str, Path(), AfterValidator(_canonical)]


class GapPublic(BaseModel):
    kind: str
    after_seq: int
    received_seq: int | None
    missing_ms: int


class EncounterPublic(BaseModel):
    id: str
    device_id: str
    room_id: str
    status: str
    started_at_us: int
    ended_at_us: int | None
    frames_stored: int
    last_seq: int | None
    audio_seconds: float
    gaps: list[GapPublic] = []


def _public(enc: Encounter, gaps: list[AudioGap] | None = None) -> EncounterPublic:
    return EncounterPublic(
        id=enc.id, device_id=enc.device_id, room_id=enc.room_id, status=enc.status,
        started_at_us=enc.started_at_us, ended_at_us=enc.ended_at_us, frames_stored=enc.next_seq,
        last_seq=enc.last_seq, audio_seconds=round(enc.audio_seconds, 3),
        gaps=[GapPublic(kind=g.kind, after_seq=g.after_seq, received_seq=g.received_seq,
                        missing_ms=g.missing_ms) for g in gaps or []],
    )


@router.get("", response_model=list[EncounterPublic])
def list_encounters(session: SessionDep, _: AdminKey, room_id: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[EncounterPublic]:
    stmt = select(Encounter).order_by(Encounter.created_at.desc()).limit(limit)
    if room_id:
        stmt = stmt.where(Encounter.room_id == room_id)
    return [_public(e) for e in session.scalars(stmt)]


def _get(session: SessionDep, encounter_id: str) -> Encounter:
    enc = session.get(Encounter, encounter_id)
    if enc is None:
        raise HTTPException(404, f"no encounter {encounter_id}")
    return enc


@router.get("/{encounter_id}", response_model=EncounterPublic)
def get_encounter(encounter_id: EncounterIdPath, session: SessionDep,
                  _: AdminKey) -> EncounterPublic:
    enc = _get(session, encounter_id)
    gaps = list(session.scalars(select(AudioGap).where(AudioGap.encounter_id == encounter_id)
                                .order_by(AudioGap.id)))
    return _public(enc, gaps)


@router.get("/{encounter_id}/audio.wav", dependencies=[AuditRefusals],
            responses={200: {"content": {"audio/wav": {}}}})
def encounter_audio(encounter_id: EncounterIdPath, request: Request, session: SessionDep,
                    services: ServicesDep) -> Response:
    """The stored audio as a WAV file, frames in sequence order (clinicians only)."""
    grant = encounter_reader(session, request, encounter_id, tickets=services.tickets,
                             purpose=TicketPurpose.ENCOUNTER_AUDIO)
    record(session, grant.who, AuditAction.PLAY_AUDIO, grant.item, "whole visit",
           clinic_id=grant.clinic_id, encounter_id=encounter_id)
    session.commit()  # the audit row is in before the audio goes out
    count = session.scalar(select(func.count()).select_from(AudioFrameRow)
                           .where(AudioFrameRow.encounter_id == encounter_id))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(SUPPORTED_FORMAT.channels)
        wav.setsampwidth(SUPPORTED_FORMAT.width)
        wav.setframerate(SUPPORTED_FORMAT.rate)
        rows = session.execute(select(AudioFrameRow.pcm)
                               .where(AudioFrameRow.encounter_id == encounter_id)
                               .order_by(AudioFrameRow.seq)
                               .execution_options(yield_per=500))
        for (pcm,) in rows:
            wav.writeframesraw(pcm)
    return Response(buf.getvalue(), media_type="audio/wav",
                    headers={"X-RoomScribe-Frames": str(count), "Cache-Control": "no-store"})
