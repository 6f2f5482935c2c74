"""A span of an encounter's stored audio as WAV, for evidence playback.

Times are seconds of stored audio from the encounter's first frame (the same
clock as transcript segments). Only the frames that overlap the span are read:
their byte offsets come from the frames' lengths, summed in sequence order.
"""

from __future__ import annotations

import io
import math
import wave

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from protocol import SUPPORTED_FORMAT
from server.models import AudioFrameRow
from server.review.errors import InvalidInput

__all__ = ["MAX_SPAN_S", "audio_span"]

MAX_SPAN_S = 15 * 60.0
_BPS = SUPPORTED_FORMAT.bytes_per_second
_SAMPLE = SUPPORTED_FORMAT.width * SUPPORTED_FORMAT.channels


def _wav(pcm: bytes) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(SUPPORTED_FORMAT.channels)
        wav.setsampwidth(SUPPORTED_FORMAT.width)
        wav.setframerate(SUPPORTED_FORMAT.rate)
        wav.writeframes(pcm)
    return buf.getvalue()


def audio_span(s: Session, encounter_id: str, start_s: float, end_s: float | None) -> bytes:
    """WAV bytes of [start_s, end_s) (end None: to the end), clipped to what is stored."""
    if not math.isfinite(start_s) or (end_s is not None and not math.isfinite(end_s)):
        raise InvalidInput("start and end must be finite numbers of seconds")
    if start_s < 0 or (end_s is not None and end_s <= start_s):
        raise InvalidInput("need 0 <= start < end (seconds)")
    if end_s is not None and end_s - start_s > MAX_SPAN_S:
        raise InvalidInput(f"a span is at most {MAX_SPAN_S:.0f} s")
    lo = int(start_s * _BPS) // _SAMPLE * _SAMPLE
    hi = None if end_s is None else int(end_s * _BPS) // _SAMPLE * _SAMPLE
    if hi is None:
        hi = lo + int(MAX_SPAN_S * _BPS)
    lengths = s.execute(select(AudioFrameRow.seq, func.length(AudioFrameRow.pcm))
                        .where(AudioFrameRow.encounter_id == encounter_id)
                        .order_by(AudioFrameRow.seq)).all()
    wanted: list[int] = []
    first_offset = None
    offset = 0
    for seq, length in lengths:
        if offset + length > lo and offset < hi:
            wanted.append(seq)
            if first_offset is None:
                first_offset = offset
        offset += length
        if offset >= hi:
            break
    if not wanted or first_offset is None:
        return _wav(b"")
    rows = s.execute(select(AudioFrameRow.pcm)
                     .where(AudioFrameRow.encounter_id == encounter_id,
                            AudioFrameRow.seq >= wanted[0], AudioFrameRow.seq <= wanted[-1])
                     .order_by(AudioFrameRow.seq))
    pcm = b"".join(r for (r,) in rows)
    return _wav(pcm[lo - first_offset: hi - first_offset])
