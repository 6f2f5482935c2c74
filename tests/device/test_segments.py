"""The spool's pure pieces: record codec, torn-write scan, rotation, retention, admission."""

from __future__ import annotations

import zlib

from device.segments import (
    RECORD,
    SEGMENT_MAGIC,
    SegmentPolicy,
    admit,
    deletable_segments,
    encode_record,
    parse_segment_name,
    scan_segment,
    segment_name,
)

from .fakes import pcm_for


def segment(first: int, count: int) -> bytes:
    return SEGMENT_MAGIC + b"".join(
        encode_record(seq, seq * 100, pcm_for(seq, 320)) for seq in range(first, first + count))


def test_record_layout() -> None:
    record = encode_record(5, -7, b"\x01\x02\x03\x04")
    assert RECORD.unpack_from(record) == (5, -7, 4, zlib.crc32(b"\x01\x02\x03\x04"))
    assert record[RECORD.size:] == b"\x01\x02\x03\x04"


def test_scan_of_an_intact_segment() -> None:
    data = segment(10, 4)
    result = scan_segment(data, 10)
    assert (result.valid_bytes, result.next_seq, result.records) == (len(data), 14, 4)
    assert result.first_captured_at_us == 1000 and not result.torn(len(data))


def test_scan_stops_at_a_torn_trailing_record() -> None:
    data = segment(0, 3)
    whole = len(data)
    torn = data + encode_record(3, 0, pcm_for(3, 320))[:-7]
    result = scan_segment(torn, 0)
    assert (result.valid_bytes, result.next_seq) == (whole, 3) and result.torn(len(torn))
    half_header = data + b"\x00" * (RECORD.size - 1)
    assert scan_segment(half_header, 0).valid_bytes == whole


def test_scan_stops_at_garbage_and_bad_checksums() -> None:
    data = bytearray(segment(0, 3))
    data[-1] ^= 0xFF  # last record's PCM damaged
    assert scan_segment(bytes(data), 0).next_seq == 2
    zeros = segment(0, 2) + b"\x00" * 4096  # a power cut can leave zeros past the end
    assert scan_segment(zeros, 0).next_seq == 2
    wrong_seq = segment(0, 2) + encode_record(7, 0, b"\x01\x02")
    assert scan_segment(wrong_seq, 0).next_seq == 2


def test_scan_without_magic_keeps_nothing() -> None:
    assert scan_segment(b"RSSE", 4).valid_bytes == 0
    assert scan_segment(b"", 4).next_seq == 4


def test_segment_names() -> None:
    assert segment_name(42) == "seg-000000000042.seg"
    assert parse_segment_name(segment_name(42)) == 42
    assert parse_segment_name("encounter.json") is None
    assert parse_segment_name("seg-abc.seg") is None


def test_rotation_policy() -> None:
    policy = SegmentPolicy(max_segment_bytes=1000)
    assert policy.should_rotate(None, 100), "nothing open yet"
    assert not policy.should_rotate(len(SEGMENT_MAGIC), 5000), "a segment takes one record"
    assert not policy.should_rotate(800, 200)
    assert policy.should_rotate(801, 200)


def test_retention_keeps_unacked_and_the_open_segment() -> None:
    firsts = [0, 100, 200, 300]
    assert deletable_segments(firsts, -1) == []
    assert deletable_segments(firsts, 98) == []
    assert deletable_segments(firsts, 99) == [0]
    assert deletable_segments(firsts, 250) == [0, 100]
    assert deletable_segments(firsts, 10_000) == [0, 100, 200], "the last one stays"
    assert deletable_segments([0], 10_000) == []


def test_admission_refuses_new_audio_when_full() -> None:
    assert admit(900, 100, 1000)
    assert not admit(901, 100, 1000)
