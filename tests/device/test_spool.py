"""The on-disk spool: write, read, ack, recover, full policy, removal."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from device.audio import AudioChunk
from device.errors import SpoolError, SpoolFullError
from device.segments import RECORD, SEGMENT_MAGIC, SegmentPolicy
from device.spool import Spool

from .fakes import pcm_for

FRAME = 3200
REC = RECORD.size + FRAME
SMALL = SegmentPolicy(max_segment_bytes=len(SEGMENT_MAGIC) + 10 * REC)  # 10 frames a segment


def chunk(seq: int) -> AudioChunk:
    return AudioChunk(pcm_for(seq), 1_000_000 + seq * 100_000)


def open_spool(tmp_path: Path, max_bytes: int = 10_000_000) -> Spool:
    return Spool.open(tmp_path / "spool", max_bytes, SMALL)


def fill(spool: Spool, frames: int, start: int = 0) -> str:
    enc = str(uuid.uuid4())
    spool.begin(enc, 1_000_000 + start, "fake:mic")
    for seq in range(frames):
        assert spool.append(enc, chunk(seq)) == seq
    return enc


def read_all(spool: Spool, enc: str, from_seq: int = 0) -> list[int]:
    reader = spool.reader(enc, from_seq)
    seqs = []
    try:
        while batch := reader.read(64 * 1024):
            for r in batch:
                assert r.pcm == pcm_for(r.seq) and r.captured_at_us == chunk(r.seq).captured_at_us
                seqs.append(r.seq)
    finally:
        reader.close()
    return seqs


def seg_files(spool: Spool, enc: str) -> list[str]:
    return sorted(p.name for p in (spool.directory / enc).glob("*.seg"))


def test_frames_are_readable_in_order_across_segments(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    enc = fill(spool, 25)
    assert seg_files(spool, enc) == ["seg-000000000000.seg", "seg-000000000010.seg",
                                     "seg-000000000020.seg"]
    assert read_all(spool, enc) == list(range(25))
    assert read_all(spool, enc, 13) == list(range(13, 25))
    reader = spool.reader(enc, 20)
    assert [r.seq for r in reader.read(1)] == [20], "at least one, about max_bytes"
    spool.append(enc, chunk(25))
    assert [r.seq for r in reader.read(1 << 20)] == list(range(21, 26)), "sees new frames"
    reader.close()
    assert spool.used_bytes == sum(
        p.stat().st_size for p in (spool.directory / enc).glob("*.seg"))
    spool.close()


def test_ack_deletes_whole_segments_and_complete_removes_the_encounter(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    enc = fill(spool, 25)
    before = spool.used_bytes
    assert spool.ack(enc, 9) == 10
    assert seg_files(spool, enc)[0] == "seg-000000000010.seg"
    assert spool.used_bytes == before - (len(SEGMENT_MAGIC) + 10 * REC)
    assert spool.ack(enc, 9) == 0 and spool.ack(enc, 5) == 0, "old acks change nothing"
    spool.ack(enc, 24)
    assert seg_files(spool, enc) == ["seg-000000000020.seg"], "the open segment stays"
    info = spool.end(enc, 9_000_000)
    assert info.ended and info.last_seq == 24
    with pytest.raises(SpoolError, match="has ended"):
        spool.append(enc, chunk(25))
    spool.remove(enc)
    assert not (spool.directory / enc).exists()
    assert spool.encounters() == [] and spool.used_bytes == 0
    spool.close()


def test_reopen_recovers_next_seq_acked_and_metadata(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    ended = fill(spool, 12, start=0)
    spool.end(ended, 5)
    live = fill(spool, 23, start=1)
    spool.set_muted(live, True)
    spool.ack(live, 14)
    used = spool.used_bytes
    spool.close()

    again = open_spool(tmp_path)
    [a, b] = again.encounters()  # oldest first
    assert (a.encounter_id, a.ended, a.last_seq, a.ended_at_us) == (ended, True, 11, 5)
    assert (b.encounter_id, b.ended, b.next_seq, b.acked, b.muted) == (live, False, 23, 14, True)
    assert b.source == "fake:mic"
    assert again.used_bytes == used
    assert again.append(live, chunk(23)) == 23, "sequence numbers continue"
    assert read_all(again, live, 15) == list(range(15, 24))
    again.close()


def test_recovery_truncates_a_torn_write(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    enc = fill(spool, 15)
    spool.close()
    last = tmp_path / "spool" / enc / "seg-000000000010.seg"
    with open(last, "ab") as fh:  # a frame half written when the power went
        fh.write(RECORD.pack(15, 0, FRAME, 0) + b"\x07" * 100)
    again = open_spool(tmp_path)
    info = again.get(enc)
    assert info is not None and info.next_seq == 15
    assert last.stat().st_size == len(SEGMENT_MAGIC) + 5 * REC
    assert again.append(enc, chunk(15)) == 15
    assert read_all(again, enc) == list(range(16))
    again.close()


def test_acked_without_close_is_a_lower_bound_from_the_segments(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    enc = fill(spool, 25)
    spool.ack(enc, 21)  # deletes seg 0 and 10, records the ack
    (tmp_path / "spool" / enc / "acked").unlink()  # as if that write never made it
    os.close(spool._lock_fd or -1)  # crash: no close(), the lock goes with the process
    spool._lock_fd = None
    again = open_spool(tmp_path)
    info = again.get(enc)
    assert info is not None and (info.acked, info.next_seq) == (19, 25)
    again.close()


def test_full_spool_refuses_new_audio_and_keeps_the_old(tmp_path: Path) -> None:
    limit = 4 * len(SEGMENT_MAGIC) + 35 * REC  # room for 35 frames in 4 segments
    spool = open_spool(tmp_path, max_bytes=limit)
    enc = str(uuid.uuid4())
    spool.begin(enc, 0)
    seq = 0
    refused = 0
    for i in range(60):
        try:
            assert spool.append(enc, chunk(i)) == seq
            seq += 1
        except SpoolFullError:
            refused += 1
    assert seq == 35 and refused == 25
    assert spool.used_bytes <= limit
    assert read_all(spool, enc) == list(range(35)), "nothing captured was discarded"
    spool.ack(enc, 9)  # the server has the first segment: room again
    assert spool.append(enc, chunk(60)) == 35, "refused frames consumed no seq"
    spool.close()


def test_server_ahead_of_the_spool_never_reuses_a_seq(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    spool = open_spool(tmp_path)
    enc = fill(spool, 5)
    spool.ack(enc, 7)  # a power cut lost frames 5..7 here; the server has them
    assert "server acked seq 7" in caplog.text
    assert spool.append(enc, chunk(8)) == 8
    spool.close()
    again = open_spool(tmp_path)
    info = again.get(enc)
    assert info is not None and info.next_seq == 9
    again.close()


def test_one_agent_per_spool(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    with pytest.raises(SpoolError, match="in use by another"):
        open_spool(tmp_path)
    spool.close()
    open_spool(tmp_path).close()


def test_half_created_encounters_and_strangers_are_handled(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    (root / f".tmp-{uuid.uuid4()}").mkdir(parents=True)
    (root / "lost+found").mkdir()
    orphan = str(uuid.uuid4())  # segments but no metadata: rebuilt, not thrown away
    (root / orphan).mkdir()
    (root / orphan / "seg-000000000000.seg").write_bytes(
        SEGMENT_MAGIC + RECORD.pack(0, 0, 2, 0) + b"xx")  # bad crc: record dropped
    spool = open_spool(tmp_path)
    assert not any(p.name.startswith(".tmp-") for p in root.iterdir())
    assert (root / "lost+found").exists()
    [info] = spool.encounters()
    assert info.encounter_id == orphan and info.next_seq == 0
    assert json.loads((root / orphan / "encounter.json").read_text())["encounter_id"] == orphan
    spool.close()


def test_encounter_ids_must_be_uuids(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    with pytest.raises(ValueError):
        spool.begin("../../etc", 0)
    enc = fill(spool, 0)
    with pytest.raises(SpoolError, match="already exists"):
        spool.begin(enc, 0)
    spool.close()


def test_an_empty_encounter_ends_at_minus_one(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    enc = fill(spool, 0)
    assert spool.end(enc, 1).last_seq == -1
    spool.close()


def test_withdrawn_audio_is_deleted_and_only_placeholders_are_read(tmp_path: Path) -> None:
    from device.spoolreader import PLACEHOLDER_PCM

    spool = open_spool(tmp_path)
    enc = fill(spool, 25)
    spool.ack(enc, 11)  # the server has 0..11 (segment 0 deleted; 10..11 still on disk)
    reader = spool.reader(enc, 12)
    assert [r.seq for r in reader.read(1)] == [12]  # a reader open on the audio ...
    assert spool.discard_audio(enc) == 13  # 12..24 never reached the server
    assert seg_files(spool, enc) == [] and spool.used_bytes == 0
    with pytest.raises(SpoolError, match="withdrawn"):
        spool.append(enc, chunk(25))
    # ... reads no more audio: each remaining seq is a silent one-sample placeholder
    rest = reader.read(1 << 20)
    assert [r.seq for r in rest] == list(range(13, 25))
    assert {r.pcm for r in rest} == {PLACEHOLDER_PCM}
    reader.close()
    fresh = spool.reader(enc, 12)
    assert [(r.seq, r.pcm) for r in fresh.read(1 << 20)] == [
        (s, PLACEHOLDER_PCM) for s in range(12, 25)]
    fresh.close()
    info = spool.end(enc, 9_000_000)
    assert (info.last_seq, info.discarded_through) == (24, 24)
    spool.ack(enc, 24)
    spool.remove(enc)
    assert spool.encounters() == []
    spool.close()


def test_a_withdrawal_survives_a_restart(tmp_path: Path) -> None:
    from device.spoolreader import PLACEHOLDER_PCM

    spool = open_spool(tmp_path)
    enc = fill(spool, 15)
    spool.set_consent(enc, {"state": "withdrawn", "method": "", "obtained_by": "Dr Lee",
                            "at_us": 1})
    spool.discard_audio(enc)
    spool.end(enc, 5)
    # a segment that a crash left behind after the deletion was decided
    (tmp_path / "spool" / enc / "seg-000000000000.seg").write_bytes(
        SEGMENT_MAGIC + RECORD.pack(0, 0, 2, 0) + b"xx")
    os.close(spool._lock_fd or -1)
    spool._lock_fd = None
    again = open_spool(tmp_path)
    info = again.get(enc)
    assert info is not None
    assert (info.next_seq, info.last_seq, info.discarded_through) == (15, 14, 14)
    assert info.consent is not None and info.consent["state"] == "withdrawn"
    assert seg_files(again, enc) == [] and again.used_bytes == 0
    reader = again.reader(enc, 0)
    assert {r.pcm for r in reader.read(1 << 20)} == {PLACEHOLDER_PCM}
    reader.close()
    again.close()
