"""Encounter records and their stored audio (admin API key for now; the review
queue issue puts physicians and partners in front of these)."""

from __future__ import annotations

import io
import wave

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel
from sqlalchemy import func, select

from protocol import SUPPORTED_FORMAT
from server.deps import AdminKey, SessionDep
from server.models import AudioFrameRow, AudioGap, Encounter

router = APIRouter(prefix="/api/v1/encounters", tags=["encounters"])


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
                    limit: int = 100) -> list[EncounterPublic]:
    stmt = select(Encounter).order_by(Encounter.created_at.desc()).limit(min(limit, 1000))
    if room_id:
        stmt = stmt.where(Encounter.room_id == room_id)
    return [_public(e) for e in session.scalars(stmt)]


def _get(session: SessionDep, encounter_id: str) -> Encounter:
    enc = session.get(Encounter, encounter_id)
    if enc is None:
        raise HTTPException(404, f"no encounter {encounter_id}")
    return enc


@router.get("/{encounter_id}", response_model=EncounterPublic)
def get_encounter(encounter_id: str, session: SessionDep, _: AdminKey) -> EncounterPublic:
    enc = _get(session, encounter_id)
    gaps = list(session.scalars(select(AudioGap).where(AudioGap.encounter_id == encounter_id)
                                .order_by(AudioGap.id)))
    return _public(enc, gaps)


@router.get("/{encounter_id}/audio.wav")
def encounter_audio(encounter_id: str, session: SessionDep, _: AdminKey) -> Response:
    """The stored audio as a WAV file, frames in sequence order."""
    _get(session, encounter_id)
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
                    headers={"X-RoomScribe-Frames": str(count)})
