"""A fake speech engine that hears its input, so a transcript resumed mid-visit can be
compared with an uninterrupted one; and the resume itself, in one process.

:class:`ToneEngine` reads "speech" made by :func:`tone_visit`: each utterance is a run
of one constant sample value (its word), utterances are separated by silence. Unlike
``tests.asr.fakes.FakeEngine`` (scripted by the amount of audio fed) its events depend
only on the audio, wherever the recognizer starts: as a real engine's do between
utterances. The multi-process test (test_worker_failover.py) runs workers with it:

    python -m tests.cluster.test_worker_tones worker --stages transcription
"""

from __future__ import annotations

import asyncio
import sys
import wave
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from nlp.schema import Transcript, Word
from server.asr.engine import SAMPLE_RATE, Final, Partial, RecognitionEvent
from server.asr.stage import StageLimits, TranscriptionStage
from server.db import Database
from server.ingest.handoff import AudioChunk, EncounterInfo
from server.ingest.store import AudioStore, DeviceIdentity
from server.pipeline.events import PipelineEvent
from server.transcripts.resume import resume_point
from server.transcripts.store import TranscriptStore
from server.transcripts.tables import TranscriptionStatus
from tests.support import enrol_device

#: Silence that ends an utterance (samples).
END_SILENCE = int(0.3 * SAMPLE_RATE)
WAIT = 20.0


class ToneRecognizer:
    def __init__(self) -> None:
        self.pos = 0  # samples fed
        self.start: int | None = None  # first sample of the open utterance
        self.value = 0
        self.last = 0  # last sample of the open utterance
        self.silence = 0

    def _final(self) -> Final:
        assert self.start is not None
        start_s, end_s = self.start / SAMPLE_RATE, (self.last + 1) / SAMPLE_RATE
        word = f"tone{self.value}"
        self.start = None
        return Final(start_s, end_s, word, (Word(word, start_s, end_s, 1.0),))

    def accept(self, pcm: bytes) -> list[RecognitionEvent]:
        events: list[RecognitionEvent] = []
        for x in np.frombuffer(pcm, "<i2").tolist():
            if x:
                if self.start is None:
                    self.start, self.value = self.pos, x
                    events.append(Partial(self.pos / SAMPLE_RATE, f"tone{x}"))
                self.last, self.silence = self.pos, 0
            elif self.start is not None:
                self.silence += 1
                if self.silence >= END_SILENCE:
                    events.append(self._final())
            self.pos += 1
        return events

    def finish(self) -> list[RecognitionEvent]:
        return [self._final()] if self.start is not None else []


class ToneEngine:
    name = "fake:tones"
    language = "en"

    def recognizer(self) -> ToneRecognizer:
        return ToneRecognizer()


def tone_visit(utterances: int, *, speech_s: float = 0.6, pause_s: float = 0.5,
               lead_s: float = 0.3) -> bytes:
    """16 kHz s16le PCM: ``utterances`` tones (values 1000, 1037, ...) with pauses."""
    parts = [np.zeros(int(lead_s * SAMPLE_RATE), "<i2")]
    for k in range(utterances):
        parts.append(np.full(int((speech_s + 0.01 * (k % 5)) * SAMPLE_RATE), 1000 + 37 * k,
                             "<i2"))
        parts.append(np.zeros(int(pause_s * SAMPLE_RATE), "<i2"))
    return np.concatenate(parts).tobytes()


def write_wav(pcm: bytes, path: Path) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm)
    return path


def expected_segments(pcm: bytes) -> list[tuple[str, float, float]]:
    """What an uninterrupted run hears: (text, start_s, end_s) per final."""
    rec = ToneRecognizer()
    finals = [e for e in [*rec.accept(pcm), *rec.finish()] if isinstance(e, Final)]
    return [(f.text, round(f.start_s, 3), round(f.end_s, 3)) for f in finals]


# ------------------------------------------------------------------------ the tests


class Quiet:
    def publish(self, encounter_id: str, type_: str, data: dict[str, object]) -> None:
        pass


async def chunks(pcm: bytes, gate: asyncio.Event | None = None, stop_after_s: float = 0.0,
                 ) -> AsyncIterator[AudioChunk]:
    step = SAMPLE_RATE * 2 // 10  # 100 ms frames, as the device sends them
    for seq, i in enumerate(range(0, len(pcm), step)):
        if gate is not None and i >= stop_after_s * SAMPLE_RATE * 2:
            await gate.wait()  # the worker "dies" here: never fed more
        yield AudioChunk(seq, seq * 100_000, pcm[i:i + step])


def test_the_tone_engine_hears_the_same_wherever_it_starts() -> None:
    pcm = tone_visit(6)
    whole = expected_segments(pcm)
    assert [t for t, _, _ in whole] == [f"tone{1000 + 37 * k}" for k in range(6)]
    cut = round(whole[2][2] * SAMPLE_RATE) * 2  # the end of the third utterance
    rest = expected_segments(pcm[cut:])
    shifted = [(t, round(a + cut / 2 / SAMPLE_RATE, 3), round(b + cut / 2 / SAMPLE_RATE, 3))
               for t, a, b in rest]
    assert whole[3:] == shifted


async def test_a_taken_over_transcript_continues_with_no_segment_twice(db: Database) -> None:
    dev = enrol_device(db)
    AudioStore(db).open_encounter(DeviceIdentity(dev.device_id, dev.room_id), "enc-tones", 0)
    info = EncounterInfo("enc-tones", dev.device_id, dev.room_id, 0)
    pcm = tone_visit(8)
    handed: list[Transcript] = []
    events: list[PipelineEvent] = []

    async def keep(_: EncounterInfo, transcript: Transcript) -> None:
        handed.append(transcript)

    def stage(pool: ThreadPoolExecutor) -> TranscriptionStage:
        return TranscriptionStage(ToneEngine(), pool, TranscriptStore(db), Quiet(),
                                  next_stage=keep, limits=StageLimits(behind_threshold_s=1000),
                                  resume_from=partial(resume_point, db),
                                  on_event=events.append)

    with ThreadPoolExecutor(2) as pool:
        # the first worker hears half the visit, then stops without a word (kill -9)
        never = asyncio.Event()
        first = asyncio.create_task(stage(pool).run(info, chunks(pcm, never, 4.0)))
        store = TranscriptStore(db)
        for _ in range(200):
            stored = store.load("enc-tones")
            if stored is not None and len(stored.segments) >= 3:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        before = store.load("enc-tones")
        assert before is not None and before.status == TranscriptionStatus.RUNNING
        kept = len(before.segments)
        assert 3 <= kept < 8
        # the next worker takes the visit over: it replays the stored frames
        await asyncio.wait_for(stage(pool).run(info, chunks(pcm)), WAIT)

    after = store.load("enc-tones")
    assert after is not None and after.status == TranscriptionStatus.COMPLETE
    got = [(s.text, round(s.start_s, 3), round(s.end_s, 3)) for s in after.segments]
    assert got == expected_segments(pcm)  # same as one uninterrupted run, none twice
    assert [s.id for s in after.segments] == list(range(8))
    assert after.segments[:kept] == before.segments  # what was stored stays as it was
    assert len(handed) == 1 and len(handed[0].segments) == 8
    assert [(e.type.value, e.data.get("resumed_at_s")) for e in events] == [
        ("transcription-start", None), ("transcription-start", before.segments[-1].end_s),
        ("transcription-end", None)]


def main(argv: list[str]) -> int:
    """``worker --stages ...``: ``roomscribe worker`` with the tone engine."""
    import argparse
    import logging

    from server.pipeline.events import parse_stages
    from server.settings import Settings
    from server.work.worker import run_worker

    p = argparse.ArgumentParser(prog="tone-worker")
    p.add_argument("command", choices=["worker"])
    p.add_argument("--stages", default="transcription")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_worker(Settings(), parse_stages(args.stages), engine=ToneEngine())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
