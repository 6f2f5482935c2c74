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

With a :class:`JobBoard` (``server/work``: the durable queue) the hand-off is a job
instead of a task: :meth:`Handoff.encounter_opened` enqueues "transcribe encounter E",
and whichever process takes the job (this one, or a ``roomscribe worker``) calls
:meth:`Handoff.run_claimed`. The feed then also reads the database every ``poll_s``
seconds, since the frames may be stored by another process; with a bus (Redis, several
nodes) the node that stored them tells the others at once (``audio-stored`` on the
``stages`` channel), so a worker's feed usually wakes without waiting for the poll.

Emits ``ingest-start`` when a visit opens and ``ingest-end`` when its audio is complete
(:mod:`server.pipeline.events`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from server.ingest.store import AckState, AudioStore
from server.models import EncounterStatus
from server.pipeline.events import OnEvent, PipelineEvent, Stage, log_event

if TYPE_CHECKING:
    from server.bus import Bus

__all__ = ["CHANNEL", "AudioChunk", "EncounterInfo", "EncounterStage", "Gate", "Handoff",
           "JobBoard", "LoggingStage"]

#: The bus channel of stage hand-offs between nodes (``audio-stored``, ``job-posted``).
CHANNEL = "stages"

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


class JobBoard(Protocol):
    """Where hand-offs are posted (``server.work.runner.JobBoard``: the durable queue)."""

    async def submit(self, kind: Stage, encounter_id: str) -> None: ...

    async def cancel(self, encounter_id: str) -> None: ...

    async def wait_stopped(self, encounter_id: str, within_s: float) -> bool: ...


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
        self.stale = False  # a poll timed out: ask the database, whatever we were told

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
            if known is not None and next_seq > known.seq and not self.stale:
                if known.complete:  # read all that was told
                    return
                await self._wait()
                continue
            self.stale = False
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
            await self._wait()

    async def _wait(self) -> None:
        """Until the ingest side tells of new audio; with polling, at most ``poll_s``."""
        poll_s = self.handoff.poll_s
        if poll_s is None:
            await self.wake.wait()
            return
        try:
            await asyncio.wait_for(self.wake.wait(), timeout=poll_s)
        except TimeoutError:
            self.stale = True


class Handoff:
    """Starts one stage task per encounter and wakes it when audio is stored."""

    def __init__(self, store: AudioStore, stage: EncounterStage, executor: Executor,
                 gate: Gate | None = None, *, jobs: JobBoard | None = None,
                 poll_s: float | None = None, on_event: OnEvent = log_event,
                 bus: Bus | None = None, stop_wait_s: float = 20.0) -> None:
        """``jobs``: post each visit to the durable queue instead of starting its stage
        here; ``poll_s``: feeds re-read the database at least this often (audio stored
        by another process); ``on_event``: the ingest stage's pipeline events; ``bus``:
        tell other nodes' feeds what is stored here, and hear theirs; ``stop_wait_s``:
        :meth:`discard` waits this long at most for a worker elsewhere to stop."""
        self.store = store
        self.stage = stage
        self.executor = executor
        self.gate = gate
        self.jobs = jobs
        self.poll_s = poll_s
        self.on_event = on_event
        self._feeds: dict[str, _Feed] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_encounter: dict[str, asyncio.Task[None]] = {}
        self._open: set[str] = set()  # visits whose ingest-end has not been seen
        self.bus = bus
        self.stop_wait_s = stop_wait_s
        if bus is not None and jobs is not None:
            bus.subscribe(CHANNEL, self._from_bus)

    async def run_db(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def encounter_opened(self, info: EncounterInfo) -> None:
        eid = info.encounter_id
        if eid not in self._open:
            self._open.add(eid)
            self.on_event(PipelineEvent.start(Stage.INGEST, eid, room=info.room_id))
        if self.jobs is not None:
            self._spawn(self._post(eid), f"post-{eid}")
            return
        if eid in self._feeds:
            return
        feed = _Feed(self, eid)
        self._feeds[eid] = feed
        task = self._spawn(self._run(info, feed), f"stage-{eid}")
        self._by_encounter[eid] = task

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _post(self, encounter_id: str) -> None:
        assert self.jobs is not None
        try:
            await self.jobs.submit(Stage.TRANSCRIPTION, encounter_id)
        except Exception:  # the next open (a reconnect) or a restart's resume posts it
            log.exception("encounter %s: could not queue its transcription", encounter_id)

    def consent_changed(self, encounter_id: str) -> None:
        """Consent was recorded or withdrawn: a held visit's gate looks again now."""
        if self.gate is not None:
            self.gate.changed(encounter_id)

    async def discard(self, encounter_id: str) -> bool:
        """Stop the visit's stage, if one runs or waits (consent withdrawn); True if one
        did here. With the queue, its jobs are cancelled and this waits (at most
        ``stop_wait_s``) until a worker elsewhere that held one has stopped, so nothing
        of the visit is written after. The caller deletes what it stored afterwards."""
        if self.jobs is not None:  # wherever it runs: its holder's next renewal fails
            await self.jobs.cancel(encounter_id)
        task = self._by_encounter.get(encounter_id)
        ran = task is not None and not task.done()
        if task is not None and ran:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self.jobs is not None and not await self.jobs.wait_stopped(
                encounter_id, self.stop_wait_s):
            log.warning("encounter %s: a worker did not confirm it stopped within %.0f s",
                        encounter_id, self.stop_wait_s)
        return ran

    def audio_stored(self, stored: AckState) -> None:
        """Called after a commit: the encounter's audio is stored through ``stored.seq``
        (and complete, if ``stored.complete``)."""
        feed = self._feeds.get(stored.encounter_id)
        if feed is not None:
            feed.told(stored)
        if self.bus is not None and self.jobs is not None:
            self.bus.publish(CHANNEL, {"type": "audio-stored",
                                       "encounter_id": stored.encounter_id,
                                       "seq": stored.seq, "complete": stored.complete})
        if stored.complete and stored.encounter_id in self._open:
            self._open.discard(stored.encounter_id)
            self.on_event(PipelineEvent.end(Stage.INGEST, stored.encounter_id,
                                            last_seq=stored.seq))

    def _from_bus(self, message: dict[str, Any]) -> None:
        """Another node stored audio (on the loop): wake the visit's feed, if it is here."""
        if message.get("type") != "audio-stored":
            return
        eid, seq, complete = (message.get("encounter_id"), message.get("seq"),
                              message.get("complete"))
        if not isinstance(eid, str) or not isinstance(seq, int) \
                or not isinstance(complete, bool):
            log.warning("ignored a malformed audio-stored message from the bus")
            return
        feed = self._feeds.get(eid)
        if feed is not None:
            feed.told(AckState(eid, seq, complete))

    async def run_claimed(self, info: EncounterInfo) -> bool:
        """Run the stage on a visit this process took from the queue (the job's holder
        awaits it): False when its consent never allowed it. Stage errors propagate."""
        eid = info.encounter_id
        feed = _Feed(self, eid)
        self._feeds[eid] = feed
        task = asyncio.current_task()
        if task is not None:
            self._by_encounter[eid] = cast("asyncio.Task[None]", task)
        try:
            if self.gate is not None and not await self.gate.wait(eid):
                return False
            await self.stage.run(info, feed.stream())
            return True
        finally:
            if self._feeds.get(eid) is feed:
                del self._feeds[eid]
            if self._by_encounter.get(eid) is task:
                del self._by_encounter[eid]

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
