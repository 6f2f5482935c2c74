"""Durable, idempotent storage of device audio (blocking; run in a worker thread).

Every call is one database transaction. The server acks a frame only after the
transaction that stored it has committed, so an ack means "on disk".

Per encounter, frames are stored strictly in sequence: ``next_seq`` is the
first seq not yet stored. A frame below it is a resend (acked, not stored
again); a frame above it is out of order (refused, recorded as a sequence gap,
the device resends from the ack); a frame at it is stored. A capture-time hole
between consecutive frames (the device's spool was full, or the agent
restarted mid-visit) is recorded as a capture gap.

Frames of an encounter whose consent was withdrawn, or whose held audio was deleted
(server/privacy), are acked so the device's spool drains, and not stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from protocol import SUPPORTED_FORMAT, AudioFrame
from server.db import Database
from server.models import (
    AudioFrameRow,
    AudioGap,
    ConsentState,
    Device,
    Encounter,
    EncounterStatus,
    GapKind,
    utcnow,
)
from server.security import hash_secret, secrets_equal

__all__ = ["AckState", "AudioStore", "DeviceIdentity", "EncounterConflict", "StoreResult"]


class EncounterConflict(Exception):
    """An encounter id that belongs to another device, or an end that contradicts itself."""


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    device_id: str
    room_id: str


@dataclass(frozen=True, slots=True)
class AckState:
    encounter_id: str
    seq: int
    complete: bool
    #: the visit's consent was withdrawn: the device is told to delete its unsent audio
    withdrawn: bool = False


@dataclass(slots=True)
class StoreResult:
    acks: dict[str, AckState] = field(default_factory=dict)
    stored: int = 0
    #: PCM bytes of the frames stored (new audio only)
    stored_bytes: int = 0
    duplicates: int = 0
    #: (encounter_id, seq the device should resend from) per out-of-order run
    out_of_order: list[tuple[str, int]] = field(default_factory=list)
    #: (encounter_id, seq) of frames beyond an ended encounter's last_seq
    beyond_end: list[tuple[str, int]] = field(default_factory=list)
    #: (encounter_id, seq) of frames for an encounter this device never started
    unknown: list[tuple[str, int]] = field(default_factory=list)


def _ack(enc: Encounter) -> AckState:
    complete = enc.status == EncounterStatus.AUDIO_COMPLETE
    return AckState(enc.id, enc.next_seq - 1, complete,
                    enc.consent_state == ConsentState.WITHDRAWN)


def _settle_status(enc: Encounter) -> None:
    if enc.last_seq is None:
        return
    done = enc.next_seq > enc.last_seq
    enc.status = EncounterStatus.AUDIO_COMPLETE if done else EncounterStatus.AWAITING_AUDIO


class AudioStore:
    def __init__(self, db: Database, *, capture_gap_tolerance_ms: int = 250) -> None:
        self.db = db
        self.gap_tolerance_us = capture_gap_tolerance_ms * 1000

    # ----------------------------------------------------------------- devices

    def authenticate(self, device_id: str, token: str, agent_version: str) -> DeviceIdentity | None:
        """The device if ``token`` is its current token and it is not revoked."""
        with self.db.session() as s:
            device = s.get(Device, device_id)
            if device is None or device.token_hash is None or device.revoked_at is not None:
                return None
            if not secrets_equal(device.token_hash, hash_secret(token)):
                return None
            device.last_seen_at = utcnow()
            device.agent_version = agent_version[:64]
            return DeviceIdentity(device.id, device.room_id)

    def record_device_state(self, device_id: str, state: str) -> None:
        with self.db.session() as s:
            device = s.get(Device, device_id)
            if device is not None:
                device.reported_state = state[:32]
                device.last_seen_at = utcnow()

    # -------------------------------------------------------------- encounters

    def _locked(self, s: Session, encounter_id: str) -> Encounter | None:
        stmt = select(Encounter).where(Encounter.id == encounter_id)
        if not self.db.is_sqlite:
            stmt = stmt.with_for_update()
        return s.scalars(stmt).first()

    def open_encounter(self, device: DeviceIdentity, encounter_id: str,
                       started_at_us: int) -> AckState:
        """Create the encounter, or find it again after a reconnect."""
        with self.db.session() as s:
            enc = self._locked(s, encounter_id)
            if enc is None:
                enc = Encounter(id=encounter_id, device_id=device.device_id,
                                room_id=device.room_id, started_at_us=started_at_us,
                                status=EncounterStatus.RECORDING, next_seq=0, audio_bytes=0,
                                last_frame_us=0)
                s.add(enc)
                s.flush()
            elif enc.device_id != device.device_id:
                raise EncounterConflict(f"encounter {encounter_id} belongs to another device")
            return _ack(enc)

    def end_encounter(self, device: DeviceIdentity, encounter_id: str, last_seq: int,
                      ended_at_us: int) -> AckState:
        with self.db.session() as s:
            enc = self._locked(s, encounter_id)
            if enc is None or enc.device_id != device.device_id:
                raise EncounterConflict(f"encounter {encounter_id} was never started")
            if enc.last_seq is not None and enc.last_seq != last_seq:
                raise EncounterConflict(
                    f"encounter {encounter_id} already ended at seq {enc.last_seq}")
            if last_seq < enc.next_seq - 1:
                raise EncounterConflict(
                    f"encounter-end last_seq {last_seq} is below stored seq {enc.next_seq - 1}")
            enc.last_seq = last_seq
            enc.ended_at_us = ended_at_us
            _settle_status(enc)
            return _ack(enc)

    def store_frames(self, device: DeviceIdentity, frames: Sequence[AudioFrame]) -> StoreResult:
        """Store a batch of frames in one transaction; the result says what to ack."""
        result = StoreResult()
        with self.db.session() as s:
            encounters: dict[str, Encounter | None] = {}
            refused_run: set[str] = set()
            for frame in frames:
                eid = frame.encounter_id
                if eid not in encounters:
                    enc = self._locked(s, eid)
                    encounters[eid] = (
                        enc if enc is not None and enc.device_id == device.device_id else None)
                enc = encounters[eid]
                if enc is None:
                    result.unknown.append((eid, frame.seq))
                    continue
                if frame.seq < enc.next_seq:
                    result.duplicates += 1
                elif frame.seq > enc.next_seq:
                    if eid not in refused_run:
                        refused_run.add(eid)
                        result.out_of_order.append((eid, enc.next_seq))
                        s.add(AudioGap(encounter_id=eid, kind=GapKind.SEQUENCE,
                                       after_seq=enc.next_seq - 1, received_seq=frame.seq,
                                       note="frame ahead of sequence refused; device resends"))
                elif enc.last_seq is not None and frame.seq > enc.last_seq:
                    result.beyond_end.append((eid, frame.seq))
                elif enc.consent_state == ConsentState.WITHDRAWN \
                        or enc.audio_deleted_at is not None:
                    # consent withdrawn, or held audio deleted: acked (the spool drains),
                    # never stored
                    enc.next_seq = frame.seq + 1
                    result.duplicates += 1
                else:
                    self._append(s, enc, frame)
                    refused_run.discard(eid)
                    result.stored += 1
                    result.stored_bytes += len(frame.pcm)
            for eid, maybe_enc in encounters.items():
                if maybe_enc is not None:
                    _settle_status(maybe_enc)
                    result.acks[eid] = _ack(maybe_enc)
        return result

    def _append(self, s: Session, enc: Encounter, frame: AudioFrame) -> None:
        duration_us = len(frame.pcm) * 1_000_000 // SUPPORTED_FORMAT.bytes_per_second
        if enc.last_captured_at_us is not None:
            expected = enc.last_captured_at_us + enc.last_frame_us
            hole = frame.captured_at_us - expected
            if hole > self.gap_tolerance_us:
                s.add(AudioGap(encounter_id=enc.id, kind=GapKind.CAPTURE,
                               after_seq=enc.next_seq - 1, missing_ms=hole // 1000,
                               note="capture-time hole between consecutive frames"))
        s.add(AudioFrameRow(encounter_id=enc.id, seq=frame.seq,
                            captured_at_us=frame.captured_at_us, pcm=frame.pcm))
        enc.next_seq = frame.seq + 1
        enc.audio_bytes += len(frame.pcm)
        enc.last_captured_at_us = frame.captured_at_us
        enc.last_frame_us = duration_us
        enc.updated_at = utcnow()

    # ----------------------------------------------------------------- reading

    def read_frames(self, encounter_id: str, from_seq: int,
                    limit: int = 200) -> list[AudioFrameRow]:
        """Stored frames with seq >= from_seq, in order (for the next stage, export)."""
        with self.db.session() as s:
            stmt = (select(AudioFrameRow)
                    .where(AudioFrameRow.encounter_id == encounter_id,
                           AudioFrameRow.seq >= from_seq)
                    .order_by(AudioFrameRow.seq).limit(limit))
            return list(s.scalars(stmt))

    def encounter(self, encounter_id: str) -> Encounter | None:
        with self.db.session() as s:
            return s.get(Encounter, encounter_id)
