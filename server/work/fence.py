"""The fence on a stage's writes: only the holder of a job's lease writes its results.

A worker paused past its lease (a long GC pause, a frozen VM) may wake up after
another worker took the visit over; :class:`FencedTranscripts` refuses its writes
(``LeaseLost``) before they reach the database, so the transcript has one writer.
The check is this process's own view of its lease (renewed by the runner's
heartbeat), so it costs no query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nlp.schema import TranscriptSegment
from server.asr.stage import TranscriptSink
from server.transcripts.store import Progress
from server.work.errors import LeaseLost

__all__ = ["FencedTranscripts"]


class FencedTranscripts:
    """A :class:`~server.asr.stage.TranscriptSink` that writes only while ``holds(eid)``."""

    def __init__(self, inner: TranscriptSink, holds: Callable[[str], bool]) -> None:
        self.inner = inner
        self.holds = holds

    def _check(self, encounter_id: str) -> None:
        if not self.holds(encounter_id):
            raise LeaseLost(f"encounter {encounter_id}: this worker no longer holds its "
                            "transcription; nothing written")

    def begin(self, encounter_id: str, engine: str, language: str) -> bool:
        self._check(encounter_id)
        return self.inner.begin(encounter_id, engine, language)

    def add_segment(self, encounter_id: str, segment: TranscriptSegment,
                    progress: Progress) -> None:
        self._check(encounter_id)
        self.inner.add_segment(encounter_id, segment, progress)

    def save_progress(self, encounter_id: str, progress: Progress) -> None:
        self._check(encounter_id)
        self.inner.save_progress(encounter_id, progress)

    def complete(self, encounter_id: str, speakers: Sequence[str], progress: Progress,
                 end_to_transcript_ms: int) -> None:
        self._check(encounter_id)
        self.inner.complete(encounter_id, speakers, progress, end_to_transcript_ms)

    def fail(self, encounter_id: str, error: str, progress: Progress) -> None:
        self._check(encounter_id)
        self.inner.fail(encounter_id, error, progress)
