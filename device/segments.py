"""Pure pieces of the spool: the on-disk record format and the spool's policies.

Nothing here touches the disk or a clock, so rotation, retention, admission
and torn-write recovery are unit-tested on plain bytes and integers.

Segment file ``seg-<first_seq:012d>.seg``::

    offset size  field
    0      8     magic  b"RSSEG1\\n\\0"
    8      ...   records, back to back

Record (big-endian, like the wire header)::

    0      8     seq             uint64, consecutive within a segment
    8      8     captured_at_us  int64, wall-clock µs at the frame's start
    16     4     length          uint32, PCM bytes that follow (1..MAX_AUDIO_PAYLOAD)
    20     4     crc32           zlib.crc32 of the PCM
    24     ...   pcm
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from protocol import MAX_AUDIO_PAYLOAD

__all__ = [
    "RECORD",
    "SEGMENT_MAGIC",
    "Record",
    "ScanResult",
    "SegmentPolicy",
    "admit",
    "deletable_segments",
    "encode_record",
    "parse_segment_name",
    "scan_segment",
    "segment_name",
]

SEGMENT_MAGIC = b"RSSEG1\n\0"
RECORD = struct.Struct("!QqII")


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    captured_at_us: int
    pcm: bytes


def encode_record(seq: int, captured_at_us: int, pcm: bytes) -> bytes:
    return RECORD.pack(seq, captured_at_us, len(pcm), zlib.crc32(pcm)) + pcm


def segment_name(first_seq: int) -> str:
    return f"seg-{first_seq:012d}.seg"


def parse_segment_name(name: str) -> int | None:
    """First sequence number of a segment file name, or None if it is not one."""
    if not (name.startswith("seg-") and name.endswith(".seg")):
        return None
    digits = name[4:-4]
    return int(digits) if digits.isdigit() else None


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What a segment's bytes hold, up to the first damaged or torn record."""

    valid_bytes: int
    """Length of the intact prefix (header + whole, checksummed records)."""
    next_seq: int
    """Sequence number after the last intact record (``first_seq`` if none)."""
    records: int
    first_captured_at_us: int | None

    def torn(self, size: int) -> bool:
        return self.valid_bytes < size


def scan_segment(data: bytes, first_seq: int) -> ScanResult:
    """Validate a segment's bytes: magic, consecutive seqs, sane lengths, checksums.

    A power cut can leave a torn trailing record (or garbage past the last
    fsync); everything from the first record that fails a check is not part of
    the segment and the caller truncates it.
    """
    if data[: len(SEGMENT_MAGIC)] != SEGMENT_MAGIC:
        return ScanResult(0, first_seq, 0, None)
    offset = len(SEGMENT_MAGIC)
    seq = first_seq
    count = 0
    first_ts: int | None = None
    view = memoryview(data)
    while offset + RECORD.size <= len(data):
        rseq, ts, length, crc = RECORD.unpack_from(data, offset)
        end = offset + RECORD.size + length
        if rseq != seq or not 0 < length <= MAX_AUDIO_PAYLOAD or end > len(data):
            break
        if zlib.crc32(view[offset + RECORD.size : end]) != crc:
            break
        if first_ts is None:
            first_ts = ts
        offset = end
        seq += 1
        count += 1
    return ScanResult(offset, seq, count, first_ts)


@dataclass(frozen=True, slots=True)
class SegmentPolicy:
    """When the spool starts a new segment file.

    Segments are the unit of deletion once acked, so they are kept short
    (about 10 s of audio by default) and an acked long encounter frees its
    space as it goes.
    """

    max_segment_bytes: int = 10 * 32_000 + 100 * RECORD.size

    def should_rotate(self, segment_bytes: int | None, record_bytes: int) -> bool:
        """``segment_bytes`` is the open segment's size, ``None`` if none is open."""
        if segment_bytes is None:
            return True
        has_records = segment_bytes > len(SEGMENT_MAGIC)
        return has_records and segment_bytes + record_bytes > self.max_segment_bytes


def deletable_segments(first_seqs: Sequence[int], acked: int) -> list[int]:
    """Segments (by first seq, ascending) every record of which is acked.

    Segment *i* holds ``first_seqs[i] .. first_seqs[i+1] - 1``. The last
    segment is never deletable: it is the one being appended to, and its name
    is what tells a restarted agent the encounter's next sequence number.
    """
    return [
        first_seqs[i] for i in range(len(first_seqs) - 1) if first_seqs[i + 1] - 1 <= acked
    ]


def admit(used_bytes: int, incoming_bytes: int, max_bytes: int) -> bool:
    """Whether a new record fits. When the spool is full *new* audio is refused;
    audio already captured is never discarded before the server acked it."""
    return used_bytes + incoming_bytes <= max_bytes
