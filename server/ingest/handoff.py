"""Hands each encounter's stored audio to the next stage (transcription plugs in here).

The next stage sees an :class:`EncounterStage`: ``run(encounter, audio)`` where
``audio`` is an async iterator of the encounter's audio chunks *as stored*, in
sequence order, ending when the encounter's audio is complete. It reads from
the database, so a stage started after a server restart replays the visit from
its first frame and then follows the live stream: nothing is missed.

A :class:`Gate` (``server.privacy.consent.ConsentGate``) may hold a visit back: the
stage starts only once the gate says the patient's consent allows it, and never when it
says no (consent withdrawn, or held audio deleted). :meth:`Handoff.discard` stops a
visit's stage (consent withdrawn mid-visit).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from server.ingest.store import AckState, AudioStore
from server.models import EncounterStatus

__all__ = ["AudioChunk", "EncounterInfo", "EncounterStage", "Gate", "Handoff", "LoggingStage"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EncounterInfo:
    encounter_id: str
    device_id: str
    room_id: str
    started_at_us: int


@dataclass(frozen=True, slots=True)
class AudioChunk:
    seq: int
    captured_at_us: int
    pcm: bytes


class EncounterStage(Protocol):
    """The stage after ingest. Runs once per encounter, off the device connection."""

    async def run(self, encounter: EncounterInfo, audio: AsyncIterator[AudioChunk]) -> None: ...


class Gate(Protocol):
    """Decides whether a visit's audio may go to the next stage (the patient's consent)."""

    async def wait(self, encounter_id: str) -> bool:
        """True once it may; False if it never will."""
        ...

    def changed(self, encounter_id: str) -> None:
        """Something that decides it changed: look again now."""
        ...


class LoggingStage:
    """The stage used when no transcription is configured: it consumes the stream and logs."""

    async def run(self, encounter: EncounterInfo, audio: AsyncIterator[AudioChunk]) -> None:
        total = 0
        async for chunk in audio:
            total += len(chunk.pcm)
        log.info("encounter %s: audio complete, %.1f s (no transcription stage configured)",
                 encounter.encounter_id, total / 32_000)


class _Feed:
    """One encounter's stored audio as a stream. The ingest side tells it what is stored
    (:meth:`Handoff.audio_stored`, after each commit), so it reads the database only when
    there is something new; the database is asked directly only when nothing was told
    yet (a stage started after a restart) or what was told and what was found disagree."""

    def __init__(self, handoff: Handoff, encounter_id: str) -> None:
        self.handoff = handoff
        self.encounter_id = encounter_id
        self.wake = asyncio.Event()
        self.stored: AckState | None = None  # the newest stored frame and whether it's all

    def told(self, stored: AckState) -> None:
        self._learn(stored)
        self.wake.set()

    def _learn(self, stored: AckState) -> None:
        """Keep the newest of what we knew and ``stored`` (news can pass a slower read)."""
        known = self.stored
        if known is None or stored.seq > known.seq or (stored.complete and not known.complete):
            self.stored = stored

    async def stream(self) -> AsyncIterator[AudioChunk]:
        store = self.handoff.store
        next_seq = 0
        while True:
            self.wake.clear()
            known = self.stored
            if known is not None and next_seq > known.seq:  # read all that was told
                if known.complete:
                    return
                await self.wake.wait()
                continue
            rows = await self.handoff.run_db(store.read_frames, self.encounter_id, next_seq)
            for row in rows:
                yield AudioChunk(row.seq, row.captured_at_us, row.pcm)
                next_seq = row.seq + 1
            if rows:
                continue
            # nothing told yet (a restart), or told more than found: ask the database
            enc = await self.handoff.run_db(store.encounter, self.encounter_id)
            if enc is None:
                return
            complete = enc.status == EncounterStatus.AUDIO_COMPLETE
            if complete and next_seq >= enc.next_seq:
                return
            self._learn(AckState(self.encounter_id, enc.next_seq - 1, complete))
            if known is None and next_seq < enc.next_seq:
                continue
            await self.wake.wait()


class Handoff:
    """Starts one stage task per encounter and wakes it when audio is stored."""

    def __init__(self, store: AudioStore, stage: EncounterStage, executor: Executor,
                 gate: Gate | None = None) -> None:
        self.store = store
        self.stage = stage
        self.executor = executor
        self.gate = gate
        self._feeds: dict[str, _Feed] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_encounter: dict[str, asyncio.Task[None]] = {}

    async def run_db(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def encounter_opened(self, info: EncounterInfo) -> None:
        if info.encounter_id in self._feeds:
            return
        feed = _Feed(self, info.encounter_id)
        self._feeds[info.encounter_id] = feed
        task = asyncio.create_task(self._run(info, feed), name=f"stage-{info.encounter_id}")
        self._tasks.add(task)
        self._by_encounter[info.encounter_id] = task
        task.add_done_callback(self._tasks.discard)

    def consent_changed(self, encounter_id: str) -> None:
        """Consent was recorded or withdrawn: a held visit's gate looks again now."""
        if self.gate is not None:
            self.gate.changed(encounter_id)

    async def discard(self, encounter_id: str) -> bool:
        """Stop the visit's stage, if one runs or waits (consent withdrawn); True if one
        did. The caller deletes what it stored afterwards."""
        task = self._by_encounter.get(encounter_id)
        if task is None or task.done():
            return False
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return True

    def audio_stored(self, stored: AckState) -> None:
        """Called after a commit: the encounter's audio is stored through ``stored.seq``
        (and complete, if ``stored.complete``)."""
        feed = self._feeds.get(stored.encounter_id)
        if feed is not None:
            feed.told(stored)

    async def _run(self, info: EncounterInfo, feed: _Feed) -> None:
        try:
            if self.gate is not None and not await self.gate.wait(info.encounter_id):
                return  # no consent: nothing is made of this audio
            await self.stage.run(info, feed.stream())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("stage failed for encounter %s", info.encounter_id)
        finally:
            self._feeds.pop(info.encounter_id, None)
            if self._by_encounter.get(info.encounter_id) is asyncio.current_task():
                del self._by_encounter[info.encounter_id]

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
