"""AudioStore on the real database: idempotent, ordered, gaps recorded."""

from __future__ import annotations

import uuid

import pytest

from protocol import AudioFrame
from server.db import Database
from server.ingest.store import AudioStore, DeviceIdentity, EncounterConflict
from server.models import AudioGap, EncounterStatus, GapKind
from tests.support import enrol_device

FRAME_US = 100_000  # 100 ms of 16 kHz mono s16le = 3200 bytes


def frame(enc: str, seq: int, t0: int = 1_700_000_000_000_000, gap_us: int = 0) -> AudioFrame:
    pcm = bytes([seq % 251]) * 3200
    return AudioFrame(enc, seq, t0 + seq * FRAME_US + gap_us, pcm)


@pytest.fixture
def store(db: Database) -> AudioStore:
    return AudioStore(db)


@pytest.fixture
def device(db: Database) -> DeviceIdentity:
    e = enrol_device(db)
    return DeviceIdentity(e.device_id, e.room_id)


def test_authenticate_accepts_only_the_current_token(store: AudioStore, db: Database) -> None:
    e = enrol_device(db, room_id="exam-9")
    assert store.authenticate(e.device_id, e.token, "1.0") == DeviceIdentity(e.device_id, "exam-9")
    assert store.authenticate(e.device_id, e.token + "x", "1.0") is None
    assert store.authenticate("dev-unknown", e.token, "1.0") is None


def test_frames_stored_in_order_and_resends_not_duplicated(store: AudioStore,
                                                           device: DeviceIdentity) -> None:
    enc = str(uuid.uuid4())
    assert store.open_encounter(device, enc, 0).seq == -1
    result = store.store_frames(device, [frame(enc, i) for i in range(5)])
    assert result.stored == 5 and result.acks[enc].seq == 4
    again = store.store_frames(device, [frame(enc, i) for i in range(3, 7)])
    assert (again.stored, again.duplicates, again.acks[enc].seq) == (2, 2, 6)
    rows = store.read_frames(enc, 0)
    assert [r.seq for r in rows] == list(range(7))
    assert b"".join(r.pcm for r in rows) == b"".join(frame(enc, i).pcm for i in range(7))
    # Reopening after a reconnect reports where to resume.
    assert store.open_encounter(device, enc, 0).seq == 6


def test_out_of_order_frame_is_refused_and_recorded(store: AudioStore, device: DeviceIdentity,
                                                    db: Database) -> None:
    enc = str(uuid.uuid4())
    store.open_encounter(device, enc, 0)
    store.store_frames(device, [frame(enc, 0), frame(enc, 1)])
    result = store.store_frames(device, [frame(enc, 5), frame(enc, 6)])
    assert result.stored == 0
    assert result.out_of_order == [(enc, 2)]
    assert result.acks[enc].seq == 1
    with db.session() as s:
        gaps = s.query(AudioGap).filter_by(encounter_id=enc).all()
    assert [(g.kind, g.after_seq, g.received_seq) for g in gaps] == [(GapKind.SEQUENCE, 1, 5)]


def test_capture_hole_is_recorded_as_gap(store: AudioStore, device: DeviceIdentity,
                                         db: Database) -> None:
    enc = str(uuid.uuid4())
    store.open_encounter(device, enc, 0)
    store.store_frames(device, [frame(enc, 0), frame(enc, 1), frame(enc, 2, gap_us=3_000_000)])
    with db.session() as s:
        gaps = s.query(AudioGap).filter_by(encounter_id=enc).all()
    assert [(g.kind, g.after_seq, g.missing_ms) for g in gaps] == [(GapKind.CAPTURE, 1, 3000)]


def test_end_completes_only_when_every_frame_is_in(store: AudioStore,
                                                   device: DeviceIdentity) -> None:
    enc = str(uuid.uuid4())
    store.open_encounter(device, enc, 0)
    store.store_frames(device, [frame(enc, 0), frame(enc, 1)])
    ack = store.end_encounter(device, enc, 3, 0)
    assert (ack.seq, ack.complete) == (1, False)
    encounter = store.encounter(enc)
    assert encounter is not None
    assert encounter.status == EncounterStatus.AWAITING_AUDIO
    result = store.store_frames(device, [frame(enc, 2), frame(enc, 3), frame(enc, 4)])
    assert result.acks[enc].complete and result.acks[enc].seq == 3
    assert result.beyond_end == [(enc, 4)]
    encounter = store.encounter(enc)
    assert encounter is not None and encounter.status == EncounterStatus.AUDIO_COMPLETE
    assert encounter.audio_seconds == pytest.approx(0.4)


def test_encounter_of_another_device_is_refused(store: AudioStore, device: DeviceIdentity,
                                                db: Database) -> None:
    other = enrol_device(db, room_id="exam-2")
    other_id = DeviceIdentity(other.device_id, other.room_id)
    enc = str(uuid.uuid4())
    store.open_encounter(device, enc, 0)
    with pytest.raises(EncounterConflict):
        store.open_encounter(other_id, enc, 0)
    result = store.store_frames(other_id, [frame(enc, 0)])
    assert result.stored == 0 and result.unknown == [(enc, 0)]
    with pytest.raises(EncounterConflict):
        store.end_encounter(other_id, enc, 0, 0)
