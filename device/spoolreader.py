"""Reading one spooled encounter's frames back, in order, for the uplink.

Frames of a withdrawn encounter (``discarded_through``) were deleted from disk; each
comes back as :data:`PLACEHOLDER_PCM`, one sample of silence, so its sequence number
can still be delivered without any of the audio."""

from __future__ import annotations

import bisect
import os
from pathlib import Path
from typing import IO, Protocol

from .errors import SpoolError
from .segments import RECORD, SEGMENT_MAGIC, Record, segment_name

__all__ = ["PLACEHOLDER_PCM", "SegmentLog", "SpoolReader"]

#: What is sent for a frame deleted unsent (consent withdrawn): one 16-bit sample of 0.
PLACEHOLDER_PCM = b"\x00\x00"


class SegmentLog(Protocol):
    """What a reader needs to know of an encounter in the spool (kept up to date by it)."""

    @property
    def dir(self) -> Path: ...

    @property
    def segments(self) -> list[int]:
        """First seq of each segment file, ascending."""
        ...

    @property
    def next_seq(self) -> int:
        """One past the last frame written."""
        ...

    @property
    def discarded_through(self) -> int:
        """Frames up to this seq were deleted unsent (consent withdrawn); -1: none."""
        ...


class SpoolReader:
    """Reads one encounter's frames in order from ``from_seq``.

    Only frames already appended are read, so it never blocks or sees half a
    record. Deleting a segment under an open reader is harmless (POSIX keeps
    the open file); frames before the first remaining segment were acked and
    are skipped.
    """

    def __init__(self, log: SegmentLog, from_seq: int) -> None:
        self._log = log
        self.next_seq = max(from_seq, log.segments[0]) \
            if log.segments and log.discarded_through < 0 else from_seq
        self._fh: IO[bytes] | None = None
        self._seg: int | None = None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            self._seg = None

    def read(self, max_bytes: int) -> list[Record]:
        """Frames from ``next_seq`` on: at least one if any, about ``max_bytes`` in all."""
        out: list[Record] = []
        total = 0
        while self.next_seq < self._log.next_seq and (not out or total < max_bytes):
            record = self._next_record()
            if record is None:
                break
            out.append(record)
            total += len(record.pcm)
        return out

    def _open_at(self, seq: int) -> IO[bytes] | None:
        segments = self._log.segments
        i = bisect.bisect_right(segments, seq) - 1
        if i < 0:
            return None
        if segments[i] != self._seg or self._fh is None:
            self.close()
            fh = open(self._log.dir / segment_name(segments[i]), "rb")  # noqa: SIM115
            fh.seek(len(SEGMENT_MAGIC))
            for _ in range(seq - segments[i]):  # skip to ``seq`` inside the segment
                header = fh.read(RECORD.size)
                if len(header) < RECORD.size:
                    fh.close()
                    return None
                fh.seek(RECORD.unpack(header)[2], os.SEEK_CUR)
            self._fh, self._seg = fh, segments[i]
        return self._fh

    def _next_record(self) -> Record | None:
        seq = self.next_seq
        if seq <= self._log.discarded_through:
            self.close()  # the file may still be open: never read from it again
            self.next_seq += 1
            return Record(seq, 0, PLACEHOLDER_PCM)
        fh = self._open_at(seq)
        if fh is None:
            return None
        header = fh.read(RECORD.size)
        if len(header) < RECORD.size:
            return None
        rseq, captured_at_us, length, _crc = RECORD.unpack(header)
        pcm = fh.read(length)
        if rseq != seq or len(pcm) != length:
            raise SpoolError(f"spool segment for seq {seq} is inconsistent (found {rseq})")
        self.next_seq += 1
        return Record(rseq, captured_at_us, pcm)
