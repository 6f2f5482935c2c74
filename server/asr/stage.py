"""The transcription stage: one encounter's stored audio → live events → stored transcript.

Implements :class:`server.ingest.handoff.EncounterStage`. Per encounter:

    transcription-start   begin (or restart from the first frame) in the database; or,
                          with ``resume_from``, continue an interrupted transcript: its
                          stored segments are kept, the engine starts at the end of the
                          last one (the audio before it is read, not decoded), new
                          segments continue its ids and times
    audio → engine        chunks are batched (up to ``max_batch_s``) and fed to the
                          recognizer in the ASR worker pool, off the event loop
    partial / final       published to live viewers; finals labelled (speaker hook)
                          and stored one by one; after each, the transcript so far
                          goes to the watcher (the drafting stage prepares the note)
    voices (optional)     with a ``voices`` embedder, each final's audio is embedded in
                          the ASR worker pool (split in two where the voice changes
                          inside it) and clustered per encounter (server/asr/diarization);
                          the speaker hook labels the words alone and its labels vote
                          per cluster: each segment takes its voice's role (one voice
                          heard: the hook's labels as they are)
    lagging               the room's backlog crossed ``behind_threshold_s`` (logged,
                          counted, persisted; nothing is dropped)
    transcript-complete   at the end of the audio: flush, final speaker labels,
                          status complete, then ``next_stage(encounter, transcript)``
    error                 the engine failed: status failed, error published, re-raised

Live events go to ``events`` (viewers; :class:`~server.pipeline.events.LiveEvent`),
pipeline events (``transcription-start`` / ``-end`` / ``error``) to ``on_event``.
Segment times are seconds of stored audio from the encounter's first frame
(the sum of the frames' lengths before it), i.e. positions in its ``/audio.wav``;
a capture gap in the device's audio is not inserted as silence.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import inspect
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar, cast

import numpy as np

from nlp.schema import Transcript, TranscriptSegment
from server.asr.diarization import (
    ClusterParams,
    SpeakerClusters,
    VoiceEmbedder,
    find_change,
    name_roles,
    split_segment,
)
from server.asr.engine import BYTES_PER_SECOND, Final, Partial, RecognitionEvent, SpeechEngine
from server.asr.errors import TranscriptionFailed
from server.asr.monitor import RoomProgress, TranscriptionMonitor
from server.asr.roles import SpeakerLabeler, unknown_speakers, words_only
from server.ingest.handoff import AudioChunk, EncounterInfo
from server.pipeline.events import LiveEvent, OnEvent, PipelineEvent, Stage, log_event
from server.transcripts.store import Progress

__all__ = [
    "EventSink",
    "NextStage",
    "ResumeFrom",
    "ResumePoint",
    "StageLimits",
    "TranscriptSink",
    "TranscriptWatcher",
    "TranscriptionStage",
    "log_transcript",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

NextStage = Callable[[EncounterInfo, Transcript], Awaitable[None]]
#: Called on the event loop after each stored final with the transcript so far
#: (it must return at once: schedule work, don't do it).
TranscriptWatcher = Callable[[EncounterInfo, Transcript], None]


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """An interrupted transcript: its stored segments (ids 0..n-1) and where the engine
    starts again (seconds from the first frame: the end of the last segment)."""

    segments: tuple[TranscriptSegment, ...]
    offset_s: float


#: Blocking: the stored state to continue from, or None to begin afresh.
ResumeFrom = Callable[[str], "ResumePoint | None"]


class EventSink(Protocol):
    def publish(self, encounter_id: str, type_: str, data: dict[str, Any]) -> None: ...


class TranscriptSink(Protocol):
    """Where the stage keeps transcripts (blocking calls; :class:`TranscriptStore` in the
    server, an in-memory one for ``roomscribe transcribe``)."""

    def begin(self, encounter_id: str, engine: str, language: str) -> bool: ...

    def add_segment(self, encounter_id: str, segment: TranscriptSegment,
                    progress: Progress) -> None: ...

    def save_progress(self, encounter_id: str, progress: Progress) -> None: ...

    def complete(self, encounter_id: str, speakers: Sequence[str], progress: Progress,
                 end_to_transcript_ms: int) -> None: ...

    def fail(self, encounter_id: str, error: str, progress: Progress) -> None: ...


async def log_transcript(encounter: EncounterInfo, transcript: Transcript) -> None:
    """The default next stage: log that the transcript is ready."""
    log.info("encounter %s: transcript complete, %d segments (%s); no NLP stage configured",
             encounter.encounter_id, len(transcript.segments), transcript.engine)


@dataclass(frozen=True, slots=True)
class StageLimits:
    behind_threshold_s: float = 5.0
    max_batch_s: float = 2.0  # most audio handed to the engine in one call
    queue_s: float = 600.0  # audio read ahead of the engine before storage reads pause
    progress_every_s: float = 10.0  # persist progress after this much decoded audio
    audio_kept_s: float = 120.0  # decoded audio kept for the voices of finals still to come


class _AudioQueue:
    """Chunks read from storage, bounded in seconds of audio; ``None`` marks the end."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self.size = 0
        self.items: deque[AudioChunk | None] = deque()
        self.changed = asyncio.Condition()

    async def put(self, chunk: AudioChunk | None) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: chunk is None or self.size < self.limit)
            self.items.append(chunk)
            self.size += len(chunk.pcm) if chunk else 0
            self.changed.notify_all()

    async def take(self, max_bytes: int) -> tuple[bytes, bool]:
        """At least one item: (the PCM of up to ``max_bytes`` of chunks, end reached)."""
        async with self.changed:
            await self.changed.wait_for(lambda: bool(self.items))
            parts: list[bytes] = []
            taken, ended = 0, False
            while self.items:
                item = self.items[0]
                if item is None:
                    self.items.popleft()
                    ended = True
                    break
                if parts and taken + len(item.pcm) > max_bytes:
                    break
                self.items.popleft()
                parts.append(item.pcm)
                taken += len(item.pcm)
            self.size -= taken
            self.changed.notify_all()
            return b"".join(parts), ended


class _AudioTail:
    """The newest ``keep_bytes`` of decoded audio, sliced by seconds from the first frame."""

    def __init__(self, keep_bytes: int) -> None:
        self.keep = keep_bytes - keep_bytes % 2
        self.buf = bytearray()
        self.dropped = 0  # bytes before buf[0]

    def append(self, pcm: bytes) -> None:
        if self.keep <= 0:
            self.dropped += len(pcm)
            return
        self.buf += pcm
        excess = len(self.buf) - self.keep
        if excess > 0:
            del self.buf[:excess]
            self.dropped += excess

    def slice(self, start_s: float, end_s: float) -> bytes:
        a = max(0, round(start_s * BYTES_PER_SECOND / 2) * 2 - self.dropped)
        b = max(0, round(end_s * BYTES_PER_SECOND / 2) * 2 - self.dropped)
        return bytes(self.buf[a:b])


VoicedSegment = tuple[TranscriptSegment, "np.ndarray | None"]


def voice_parts(voices: VoiceEmbedder, pcm: bytes, segment: TranscriptSegment,
                params: ClusterParams) -> list[VoicedSegment]:
    """A final's audio → the segment (or its two halves, where the voice changes inside
    it) with its voice embedding. Blocking: runs in the ASR worker pool."""
    windows = voices.windows(pcm, segment.start_s)
    at = find_change(windows, params)
    halves = split_segment(segment, at) if at is not None else None
    if halves is None:
        return [(segment, voices.embed(pcm))]
    out: list[VoicedSegment] = []
    for half in halves:
        a = round((half.start_s - segment.start_s) * BYTES_PER_SECOND / 2) * 2
        b = round((half.end_s - segment.start_s) * BYTES_PER_SECOND / 2) * 2
        out.append((half, voices.embed(pcm[max(0, a):b])))
    return out


class TranscriptionStage:
    def __init__(self, engine: SpeechEngine, pool: Executor,
                 store: TranscriptSink | None = None, events: EventSink | None = None, *,
                 db_pool: Executor | None = None,
                 next_stage: NextStage = log_transcript,
                 labeler: SpeakerLabeler = unknown_speakers,
                 watcher: TranscriptWatcher | None = None,
                 limits: StageLimits | None = None,
                 monitor: TranscriptionMonitor | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 owns_pool: bool = False,
                 voices: VoiceEmbedder | None = None,
                 clusters: ClusterParams | None = None,
                 resume_from: ResumeFrom | None = None,
                 on_event: OnEvent = log_event) -> None:
        """``store``/``events``: where transcripts and live events go (the composition
        root, server/services.py, passes them); ``owns_pool``: :meth:`close` shuts
        ``pool`` down; ``voices``: diarize by voice (None: roles from the words alone);
        ``resume_from``: continue interrupted transcripts (None: always from the first
        frame); ``on_event``: pipeline events."""
        self.engine = engine
        self.pool = pool
        self.db_pool = db_pool or pool
        self._store = store
        self._events = events
        self.owns_pool = owns_pool
        self.next_stage = next_stage
        self.labeler = labeler
        self.watcher = watcher
        self.limits = limits or StageLimits()
        self.monitor = monitor or TranscriptionMonitor()
        self.clock = clock
        self.voices = voices
        self.clusters = clusters or ClusterParams()
        self.resume_from = resume_from
        self.on_event = on_event

    @property
    def store(self) -> TranscriptSink:
        if self._store is None:
            raise RuntimeError("TranscriptionStage was built without a transcript store")
        return self._store

    @property
    def events(self) -> EventSink:
        if self._events is None:
            raise RuntimeError("TranscriptionStage was built without a live event sink")
        return self._events

    def close(self) -> None:
        if self.owns_pool and isinstance(self.pool, ThreadPoolExecutor):
            self.pool.shutdown(wait=True, cancel_futures=True)

    async def _in(self, pool: Executor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def label(self, segments: list[TranscriptSegment]) -> list[str]:
        """Speaker labels from the hook: awaited if it is a coroutine function, else run
        in the ASR worker pool."""
        if inspect.iscoroutinefunction(self.labeler):
            return cast(list[str], await self.labeler(segments))
        return cast(list[str], await self._in(self.pool, self.labeler, segments))

    async def run(self, encounter: EncounterInfo, audio: AsyncIterator[AudioChunk]) -> None:
        eid = encounter.encounter_id
        point = None
        if self.resume_from is not None:
            point = await self._in(self.db_pool, self.resume_from, eid)
        if point is None:
            started = await self._in(self.db_pool, self.store.begin, eid, self.engine.name,
                                     self.engine.language)
            if not started:
                log.info("encounter %s: already transcribed; audio not decoded again", eid)
                return
        else:
            log.info("encounter %s: continuing its transcript after segment %d, at %.2f s",
                     eid, len(point.segments) - 1, point.offset_s)
        progress = RoomProgress(eid, encounter.room_id, self.engine.name)
        self.monitor.add(progress)
        queue = _AudioQueue(int(self.limits.queue_s * BYTES_PER_SECOND))
        feed_end: list[float] = []
        run = _Run(self, encounter, progress, point)
        reader = asyncio.create_task(self._read(audio, queue, progress, feed_end,
                                                run.offset_bytes),
                                     name=f"asr-read-{eid}")
        try:
            self.events.publish(eid, LiveEvent.TRANSCRIPTION_START,
                                {"engine": self.engine.name})
            self.on_event(PipelineEvent.start(
                Stage.TRANSCRIPTION, eid, engine=self.engine.name,
                **({"resumed_at_s": round(point.offset_s, 3)} if point else {})))
            recognizer = await self._in(self.pool, self.engine.recognizer)
            ended = False
            while not ended:
                pcm, ended = await queue.take(int(self.limits.max_batch_s * BYTES_PER_SECOND))
                if pcm:
                    run.audio.append(pcm)
                    await run.feed(functools.partial(recognizer.accept, pcm), len(pcm))
            await reader  # surfaces a storage error from the feed
            await run.feed(recognizer.finish, 0)
            await run.complete(feed_end[0] if feed_end else self.clock())
        except asyncio.CancelledError:
            raise
        except Exception as err:
            message = f"{type(err).__name__}: {err}"
            self.on_event(PipelineEvent.error(Stage.TRANSCRIPTION, eid, message))
            await self._in(self.db_pool, self.store.fail, eid, message, run.progress_record())
            self.events.publish(eid, LiveEvent.ERROR, {"code": "transcription-failed",
                                                       "message": message})
            raise TranscriptionFailed(f"encounter {eid}: {message}") from err
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            self.monitor.remove(eid)

    async def _read(self, audio: AsyncIterator[AudioChunk], queue: _AudioQueue,
                    progress: RoomProgress, feed_end: list[float], skip: int = 0) -> None:
        """Storage → queue, less the first ``skip`` bytes (decoded before a resume). The
        end marker goes in however the feed ends, so the engine side never waits
        forever; a feed error then surfaces from ``await reader``."""
        try:
            async for chunk in audio:
                if skip:
                    if skip >= len(chunk.pcm):
                        skip -= len(chunk.pcm)
                        continue
                    chunk = replace(chunk, pcm=chunk.pcm[skip:])
                    skip = 0
                await queue.put(chunk)
                progress.received_s += len(chunk.pcm) / BYTES_PER_SECOND
                progress.arrivals.append((progress.received_s, self.clock()))
            feed_end.append(self.clock())
        finally:
            await queue.put(None)


class _Run:
    """The mutable state of one encounter's transcription (segments, ids, lag)."""

    def __init__(self, stage: TranscriptionStage, encounter: EncounterInfo,
                 progress: RoomProgress, resume: ResumePoint | None = None) -> None:
        self.stage = stage
        self.encounter = encounter
        self.eid = encounter.encounter_id
        self.progress = progress
        self.segments: list[TranscriptSegment] = list(resume.segments) if resume else []
        #: where the engine starts: audio before it was decoded by an earlier worker
        self.offset_bytes = round(resume.offset_s * BYTES_PER_SECOND / 2) * 2 if resume else 0
        self.offset_s = self.offset_bytes / BYTES_PER_SECOND
        progress.received_s = progress.decoded_s = self.offset_s
        self.saved_at_s = self.offset_s
        keep_s = stage.limits.audio_kept_s if stage.voices is not None else 0.0
        self.audio = _AudioTail(int(keep_s * BYTES_PER_SECOND))
        self.audio.dropped = self.offset_bytes
        self.clusters = SpeakerClusters(stage.clusters)
        for seg in self.segments:  # their voices are not stored: the words decide them
            self.clusters.add(seg.id, None, weight=seg.end_s - seg.start_s)
        self.voice_failed = False

    def progress_record(self) -> Progress:
        p = self.progress
        return Progress(p.decoded_s, p.backlog_s, p.max_backlog_s, p.behind_events,
                        p.engine_s, len(self.segments))

    async def feed(self, call: Callable[[], list[RecognitionEvent]], n_bytes: int) -> None:
        stage, p = self.stage, self.progress
        t0 = stage.clock()
        try:
            events = await stage._in(stage.pool, call)
        except Exception as err:
            raise TranscriptionFailed(f"{stage.engine.name} failed: {err}") from err
        p.engine_s += stage.clock() - t0
        p.decoded_s += n_bytes / BYTES_PER_SECOND
        for event in events:
            await self._publish(_shifted(event, self.offset_s))
        self._check_lag()
        if p.decoded_s - self.saved_at_s >= stage.limits.progress_every_s:
            self.saved_at_s = p.decoded_s
            t0 = stage.clock()
            await stage._in(stage.db_pool, stage.store.save_progress, self.eid,
                            self.progress_record())
            p.store_s += stage.clock() - t0

    def _check_lag(self) -> None:
        stage, p = self.stage, self.progress
        backlog = p.backlog_s
        p.max_backlog_s = max(p.max_backlog_s, backlog)
        threshold = stage.limits.behind_threshold_s
        if not p.behind and backlog > threshold:
            p.behind = True
            p.behind_events += 1
            stage.monitor.behind_events_total += 1
            log.warning("room %s encounter %s: transcription is %.1f s behind the audio "
                        "(engine %s); audio is stored, decoding continues",
                        self.encounter.room_id, self.eid, backlog, stage.engine.name)
            stage.events.publish(self.eid, LiveEvent.LAGGING, {"backlog_s": round(backlog, 2)})
        elif p.behind and backlog < threshold / 2:
            p.behind = False
            log.info("room %s encounter %s: transcription caught up", self.encounter.room_id,
                     self.eid)
            stage.events.publish(self.eid, LiveEvent.LAGGING, {"backlog_s": round(backlog, 2)})

    async def _publish(self, event: RecognitionEvent) -> None:
        stage = self.stage
        if isinstance(event, Partial):
            self.progress.partials += 1
            # audio_s: how much of the visit's audio the engine had heard for this guess
            # (latency = arrival − capture time of that audio; bench_rooms measures it).
            stage.events.publish(self.eid, LiveEvent.PARTIAL, {
                "segment_id": len(self.segments), "start_s": event.start_s,
                "text": event.text, "audio_s": round(self.progress.decoded_s, 3)})
            return
        assert isinstance(event, Final)
        if not event.text:  # the engine decided the utterance was not speech
            stage.events.publish(self.eid, LiveEvent.PARTIAL, {
                "segment_id": len(self.segments), "start_s": event.start_s, "text": ""})
            return
        segment = TranscriptSegment(id=len(self.segments), start_s=event.start_s,
                                    end_s=event.end_s, text=event.text, words=event.words)
        for part, embedding in await self._voiced(segment):
            await self._final(part, embedding)
        self._record_latency(event.end_s)

    async def _voiced(self, segment: TranscriptSegment) -> list[VoicedSegment]:
        """The segment (or its halves) with voice embeddings; no voices: no embedding. A
        failing embedder is logged once and the visit goes on with text-only roles."""
        stage = self.stage
        if stage.voices is None or self.voice_failed:
            return [(segment, None)]
        pcm = self.audio.slice(segment.start_s, segment.end_s)
        t0 = stage.clock()
        try:
            return await stage._in(stage.pool, voice_parts, stage.voices, pcm, segment,
                                   stage.clusters)
        except Exception:
            self.voice_failed = True
            log.exception("encounter %s: voice embedding failed; speaker roles from the "
                          "words alone for the rest of the visit", self.eid)
            return [(segment, None)]
        finally:
            self.progress.label_s += stage.clock() - t0

    async def roles(self, segments: list[TranscriptSegment]) -> list[str]:
        """The speaker hook's labels; with voices, the hook labels the words alone
        (:func:`~server.asr.roles.words_only`) and its labels are voted per voice
        cluster (``name_roles``)."""
        stage = self.stage
        if stage.voices is None:
            return await stage.label(segments)
        clusters = self.clusters.assignments([s.id for s in segments])
        labels = await stage.label(words_only(segments))
        if len(labels) != len(segments):
            return labels  # complete() reports it
        return name_roles(labels, clusters, [s.end_s - s.start_s for s in segments])

    async def _final(self, segment: TranscriptSegment, embedding: np.ndarray | None) -> None:
        stage = self.stage
        segment = replace(segment, id=len(self.segments))
        self.clusters.add(segment.id, embedding, weight=segment.end_s - segment.start_s)
        t0 = stage.clock()
        labels = await self.roles([*self.segments, segment])
        self.progress.label_s += stage.clock() - t0
        segment = replace(segment, speaker=labels[-1])
        self.segments.append(segment)
        self.progress.finals += 1
        t0 = stage.clock()
        await stage._in(stage.db_pool, stage.store.add_segment, self.eid, segment,
                        self.progress_record())
        self.progress.store_s += stage.clock() - t0
        stage.events.publish(self.eid, LiveEvent.FINAL, segment.to_dict())
        if stage.watcher is not None:
            stage.watcher(self.encounter, Transcript(self.eid, tuple(self.segments),
                                                     stage.engine.name, stage.engine.language))

    def _record_latency(self, end_s: float) -> None:
        """Milliseconds from the arrival of the audio at ``end_s`` to now (its final)."""
        arrivals = self.progress.arrivals
        i = bisect.bisect_left(arrivals, (end_s, float("-inf")))
        if i < len(arrivals):
            latency = (self.stage.clock() - arrivals[i][1]) * 1000
            self.progress.final_latency_ms.append(round(latency, 1))
        del arrivals[:max(0, i - 1)]

    async def complete(self, feed_ended_at: float) -> None:
        stage = self.stage
        self.clusters.refine()
        labels = await self.roles(list(self.segments))
        if len(labels) != len(self.segments):
            raise TranscriptionFailed(f"speaker labeler returned {len(labels)} labels for "
                                      f"{len(self.segments)} segments")
        segments = tuple(TranscriptSegment(s.id, s.start_s, s.end_s, s.text, label, s.words)
                         for s, label in zip(self.segments, labels, strict=True))
        transcript = Transcript(self.eid, segments, stage.engine.name, stage.engine.language)
        elapsed_ms = round((stage.clock() - feed_ended_at) * 1000)
        await stage._in(stage.db_pool, stage.store.complete, self.eid, labels,
                        self.progress_record(), elapsed_ms)
        elapsed_ms = round((stage.clock() - feed_ended_at) * 1000)
        stage.events.publish(self.eid, LiveEvent.TRANSCRIPT_COMPLETE, {
            "segments": len(segments), "engine": stage.engine.name,
            "audio_s": round(self.progress.decoded_s, 3),
            "end_to_transcript_ms": elapsed_ms})
        stage.on_event(PipelineEvent.end(Stage.TRANSCRIPTION, self.eid,
                                         segments=len(segments),
                                         end_to_transcript_ms=elapsed_ms))
        p = self.progress
        log.info("encounter %s: transcript stored %d ms after the end of its audio "
                 "(%d segments, %.1f s audio, rtf %s; engine %.1f s, speaker labels %.1f s, "
                 "storing %.1f s)", self.eid, elapsed_ms, len(segments), p.decoded_s, p.rtf,
                 p.engine_s, p.label_s, p.store_s)
        try:
            await stage.next_stage(self.encounter, transcript)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("encounter %s: the stage after transcription failed", self.eid)


def _shifted(event: RecognitionEvent, offset_s: float) -> RecognitionEvent:
    """An event of a recognizer that started ``offset_s`` into the visit, in the visit's
    seconds (a resumed transcript)."""
    if not offset_s:
        return event
    if isinstance(event, Partial):
        return Partial(round(event.start_s + offset_s, 3), event.text)
    return Final(round(event.start_s + offset_s, 3), round(event.end_s + offset_s, 3),
                 event.text, tuple(replace(w, start_s=round(w.start_s + offset_s, 3),
                                           end_s=round(w.end_s + offset_s, 3))
                                   for w in event.words))
