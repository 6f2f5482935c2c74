"""The agent: audio source → spool → uplink, driven by the room's commands.

Commands arrive from three places and all go through :meth:`Agent.command`:
the CLI (``--start``), the server (``command`` events from the web UI) and the
local control socket. The room's state lives in the pure :class:`Room`; this
class only carries out the effects it returns.

Restart mid-visit: if the spool holds an encounter that has not ended, the
visit is still going on, so the agent resumes it (same encounter id, next
sequence number, listening -- or muted if it was muted). A WAV source resumes
at the frame matching the next sequence number, so a killed-and-restarted
agent still delivers the file byte-identical. (Frames refused by a full spool
consume no sequence number; after such a gap a *file* source would resume
that many frames early. A microphone has no such notion.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from protocol import ConfigChange, ConfigResult, Diagnostics, DiagnosticsRequest, Status

from . import __version__
from .audio import AudioChunk, AudioSource, StreamPosition
from .backoff import Throttle
from .control import ControlServer
from .errors import CaptureError, ConfigError, SpoolError, SpoolFullError
from .remote import RecentLog, diagnostic_bundle
from .room import Effect, Room, RoomState, Transition
from .settings import AgentSettings, changed_live
from .spool import Spool
from .stats import Counters, InputLevel, cpu_temp_c, disk_usage, health_fields, oldest_unacked_s
from .update_run import RESTART_EXIT_CODE, Updater
from .uplink import Uplink

__all__ = ["Agent"]

log = logging.getLogger(__name__)

SYNC_INTERVAL_S = 1.0
"""fsync the spool this often: the most audio a power cut can take."""
CAPTURE_RETRY_S = 2.0
FULL_WARNING_INTERVAL_S = 10.0


def _wall_clock_us() -> int:
    return time.time_ns() // 1000


class Agent:
    """One exam room's device agent."""

    def __init__(
        self,
        settings: AgentSettings,
        spool: Spool,
        source: AudioSource,
        *,
        auto_start: bool = False,
        exit_when_done: bool = False,
        control: bool = True,
        clock_us: Callable[[], int] = _wall_clock_us,
        capture_retry_s: float = CAPTURE_RETRY_S,
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.source = source
        self.auto_start = auto_start
        self.exit_when_done = exit_when_done
        self.counters = Counters()
        #: the input level over the last minute (a silent microphone is an alert on the server)
        self.input_level = InputLevel()
        self._started = time.monotonic()
        self.room = Room()
        self.capture_error: str | None = None
        self._clock_us = clock_us
        self._capture_retry_s = capture_retry_s
        self._stop = asyncio.Event()
        self._capture_task: asyncio.Task[None] | None = None
        self._full_warning = Throttle(FULL_WARNING_INTERVAL_S)
        self._control = ControlServer(settings.control_socket, self.command) if control else None
        self.uplink = Uplink(
            settings, spool, self.counters, status=self.status_event,
            on_command=self._server_command, on_removed=lambda _enc: self._check_done(),
            on_withdrawn=self._server_withdrawal, on_request=self._server_request,
        )
        #: recent log lines for a diagnostic bundle (attached to the "device" logger in run)
        self.recent_log = RecentLog()
        self._exit_code = 0
        #: agent updates (device/update_run.py); None: no release key in room.toml
        self.updater = Updater.from_settings(
            settings, running=__version__, blocker=self._update_blocker,
            reported_in=lambda: self.uplink.connected, restart=self._restart_for_update)

    # ------------------------------------------------------------- lifecycle

    def request_stop(self) -> None:
        """Graceful stop (SIGTERM/SIGINT): the open visit stays open for the next run."""
        self._stop.set()

    async def run(self) -> int:
        """Run until :meth:`request_stop` (or, with ``exit_when_done``, until done)."""
        if self.source.finite:
            self.source.prepare()  # a bad file is an error of the command line
        tasks: list[asyncio.Task[Any]] = []
        logging.getLogger("device").addHandler(self.recent_log)
        try:
            if self._control is not None:
                await self._control.start()
            self._recover()  # first: a visit in progress resumes capture right away
            if self.auto_start and self.room.state is RoomState.IDLE and not self._file_spooled():
                self.command("start")
            if self.room.state is RoomState.IDLE and not self.source.finite:
                self._check_microphone()
            tasks = [
                asyncio.create_task(self.uplink.run(), name="uplink"),
                asyncio.create_task(self._sync_loop(), name="spool-sync"),
                asyncio.create_task(self._log_loop(), name="counters-log"),
            ]
            if self.updater is not None:
                tasks.append(asyncio.create_task(self.updater.run(), name="updater"))
            self._check_done()
            stop = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            for task in done:
                if task is not stop and (exc := task.exception()) is not None:
                    raise exc
            return self._exit_code
        finally:
            await self._stop_capture()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._control is not None:
                await self._control.close()
            with contextlib.suppress(OSError):
                self.spool.sync()
            log.info("agent stopped: %s", self.counters.summary())
            logging.getLogger("device").removeHandler(self.recent_log)

    def _update_blocker(self) -> str:
        """Why an update must wait ("" = the room is idle and the server has every frame)."""
        if self.room.state is not RoomState.IDLE:
            return "a visit is being recorded"
        if self.spool.encounters():
            return "audio not yet acknowledged by the server"
        return ""

    def _restart_for_update(self) -> None:
        """Stop gracefully; exit with the code systemd restarts us on (docs/agent-updates.md)."""
        self._exit_code = RESTART_EXIT_CODE
        self._stop.set()

    def _check_microphone(self) -> None:
        """Tell IT at start-up, not at the first visit, that the microphone is missing."""
        try:
            self.source.prepare()
        except CaptureError as err:
            self.capture_error = str(err)
            log.error("capture: %s (checked again when a visit starts)", err)

    def _recover(self) -> None:
        live = [e for e in self.spool.encounters() if not e.ended]
        for stale in live[:-1]:
            log.warning("spool: ending encounter %s left open by an earlier run",
                        stale.encounter_id)
            self.spool.end(stale.encounter_id, self._clock_us())
        if not live:
            return
        last = live[-1]
        if not self._continues(last.source):
            log.warning("spool: encounter %s was captured from %s, not %s; ending it",
                        last.encounter_id, last.source, self.source.describe())
            self.spool.end(last.encounter_id, self._clock_us())
            return
        log.info("resuming encounter %s at seq %d (%s)", last.encounter_id, last.next_seq,
                 "muted" if last.muted else "listening")
        self._apply(self.room.resume(last.encounter_id, muted=last.muted))

    def _continues(self, recorded: str) -> bool:
        """Whether an open visit recorded from ``recorded`` can go on with our source:
        the same file for a file source; any microphone for a microphone."""
        mine = self.source.describe()
        if not recorded:
            return True
        if self.source.finite:
            return recorded == mine
        return recorded.split(":", 1)[0] == mine.split(":", 1)[0]

    def _file_spooled(self) -> bool:
        """A file source whose encounter is already in the spool must not start again."""
        me = self.source.describe()
        return self.source.finite and any(e.source == me for e in self.spool.encounters())

    def _check_done(self) -> None:
        if (self.exit_when_done and self.room.state is RoomState.IDLE
                and not self.spool.encounters()):
            log.info("everything captured and delivered; exiting")
            self._stop.set()

    # -------------------------------------------------------------- commands

    def command(self, cmd: str, **params: str) -> dict[str, Any]:
        """Carry out ``start|stop|mute|unmute|status|consent``; answer like the control
        socket."""
        if cmd == "consent":
            return self.consent(params.get("consent", ""), params.get("by", ""),
                                params.get("encounter", ""))
        if cmd == "start":
            result = self._apply(self.room.start(str(uuid.uuid4())))
        elif cmd == "stop":
            result = self._apply(self.room.stop())
        elif cmd == "mute":
            result = self._apply(self.room.mute())
        elif cmd == "unmute":
            result = self._apply(self.room.unmute())
        elif cmd == "status":
            return self.status()
        else:
            return {"ok": False, "error": f"unknown command {cmd!r}", **self._brief()}
        reply: dict[str, Any] = {"ok": result.ok, **self._brief()}
        if result.message:
            reply["error" if not result.ok else "note"] = result.message
        if self.capture_error and self.room.state is RoomState.LISTENING:
            reply["capture_error"] = self.capture_error
        return reply

    def consent(self, what: str, by: str = "", encounter: str = "") -> dict[str, Any]:
        """Record the patient's consent for the visit in progress: ``verbal`` or
        ``written`` (``by``: who obtained it), or ``withdraw``: capture stops at once, the
        visit's audio still in the spool is deleted unsent, and the server deletes what it
        has of this visit (it is told before anything more of it)."""
        enc = self.room.encounter_id
        if encounter and encounter != enc:
            return self._consent_earlier(encounter, what, by)
        if enc is None:
            return {"ok": False, "error": "no visit in progress; record consent for an "
                    "earlier visit in the web UI", **self._brief()}
        if what not in ("verbal", "written", "withdraw"):
            return {"ok": False, "error": "consent is verbal, written or withdraw",
                    **self._brief()}
        if what == "withdraw":
            record = {"state": "withdrawn", "method": "", "obtained_by": by[:200],
                      "at_us": self._clock_us()}
        else:
            record = {"state": "given", "method": what, "obtained_by": by[:200],
                      "at_us": self._clock_us()}
        try:
            self.spool.set_consent(enc, record)
        except SpoolError as err:
            return {"ok": False, "error": f"cannot record consent: {err}", **self._brief()}
        log.info("encounter %s: consent %s%s", enc, record["state"],
                 f" ({what})" if what != "withdraw" else "")
        if what == "withdraw":
            # the audio the server does not have yet is deleted here, never uploaded
            try:
                dropped = self.spool.discard_audio(enc)
            except SpoolError as err:
                log.error("encounter %s: cannot delete withdrawn audio: %s", enc, err)
                dropped = -1
            self.uplink.audio_discarded(enc)
            stopped = self._apply(self.room.stop())  # capture stops; the visit ends
            log.info("encounter %s: consent withdrawn; %d unsent frames deleted", enc, dropped)
            return {"ok": stopped.ok and dropped >= 0, "consent": "withdrawn",
                    **self._brief(), "encounter_id": enc, "frames_deleted": dropped}
        self.uplink.wake()
        return {"ok": True, "consent": "given", **self._brief()}

    def _consent_earlier(self, enc: str, what: str, by: str) -> dict[str, Any]:
        """Consent for a visit that has ended but is still in the spool (not yet
        delivered): recorded and sent like the live one's; a withdrawal deletes its unsent
        audio."""
        if self.spool.get(enc) is None:
            return {"ok": False, "error": f"visit {enc} is not in this device's spool (the "
                    "server has all of it): use the web UI", **self._brief()}
        if what not in ("verbal", "written", "withdraw"):
            return {"ok": False, "error": "consent is verbal, written or withdraw",
                    **self._brief()}
        withdraw = what == "withdraw"
        record = {"state": "withdrawn" if withdraw else "given",
                  "method": "" if withdraw else what, "obtained_by": by[:200],
                  "at_us": self._clock_us()}
        try:
            self.spool.set_consent(enc, record)
            dropped = self.spool.discard_audio(enc) if withdraw else 0
        except SpoolError as err:
            return {"ok": False, "error": f"cannot record consent: {err}", **self._brief()}
        if withdraw:
            self.uplink.audio_discarded(enc)
        log.info("encounter %s (ended): consent %s; %d unsent frames deleted", enc,
                 record["state"], dropped)
        self.uplink.wake()
        return {"ok": True, "consent": record["state"], **self._brief(), "encounter_id": enc,
                **({"frames_deleted": dropped} if withdraw else {})}

    def _server_withdrawal(self, encounter_id: str, by: str) -> None:
        """``consent-withdrawn`` from the server (web UI / API): as ``ctl consent withdraw``
        for that visit, unless the spool already knows (the server says it again on each
        reconnect) or no longer holds it (the server has all of it)."""
        info = self.spool.get(encounter_id)
        if info is None:
            return
        if (info.consent or {}).get("state") == "withdrawn" \
                and info.discarded_through >= info.next_seq - 1:
            return
        reply = self.consent("withdraw", by or "server", encounter_id)
        log.info("server withdrew consent for %s -> %s", encounter_id, reply)

    def _server_request(self, body: DiagnosticsRequest | ConfigChange,
                        ) -> Diagnostics | ConfigResult:
        """IT's requests through the server (device/remote.py): a diagnostic bundle, or a
        live settings change (all of it applied, or none of it and why)."""
        if isinstance(body, DiagnosticsRequest):
            return diagnostic_bundle(body.request, agent_version=__version__,
                                     settings=self.settings, status=self.status(),
                                     log_lines=self.recent_log.lines())
        try:
            new = changed_live(self.settings, body.changes)
        except ConfigError as err:
            log.warning("server config change refused: %s", err)
            return ConfigResult(body.request, False, {}, str(err)[:500])
        self.settings = self.uplink.settings = new
        applied = {key: getattr(new, key) for key in body.changes}
        log.info("server config change applied: %s (until the agent restarts)", applied)
        return ConfigResult(body.request, True, applied)

    def _server_command(self, action: str) -> None:
        reply = self.command(action)
        log.info("server command %s -> %s", action, reply)

    def _brief(self) -> dict[str, Any]:
        return {"state": self.room.state.value, "encounter_id": self.room.encounter_id}

    def status(self) -> dict[str, Any]:
        return {
            "ok": True, **self._brief(),
            "connected": self.uplink.connected,
            "last_error": self.uplink.last_error,
            "capture_error": self.capture_error,
            "spool_bytes": self.spool.used_bytes,
            "spool_encounters": len(self.spool.encounters()),
            "counters": self.counters.as_dict(),
        }

    def status_event(self) -> Status:
        now = time.monotonic()
        health = health_fields(
            agent_version=__version__, uptime_s=now - self._started, now_us=self._clock_us(),
            spool_max_bytes=self.settings.spool_max_bytes,
            oldest_unacked=oldest_unacked_s(self.spool.encounters(), self.settings.frame_ms,
                                            self._clock_us()),
            level=self.input_level.level(now), disk=disk_usage(self.settings.spool_dir),
            cpu_temp=cpu_temp_c())
        return Status(state=self.room.state.value, encounter_id=self.room.encounter_id,
                      spool_bytes=self.spool.used_bytes, counters=self.counters.as_dict(),
                      health=health)

    def _apply(self, t: Transition) -> Transition:
        for effect in t.effects:
            if effect is Effect.BEGIN_ENCOUNTER:
                assert t.encounter_id is not None
                try:
                    self.spool.begin(t.encounter_id, self._clock_us(), self.source.describe())
                except SpoolError as err:
                    log.error("cannot start a visit: %s", err)
                    aborted = self.room.abort_start()
                    return Transition(False, aborted.state, None, (), str(err))
                log.info("encounter %s started", t.encounter_id)
            elif effect is Effect.START_CAPTURE:
                assert t.encounter_id is not None
                self._capture_task = asyncio.create_task(
                    self._capture(t.encounter_id, self._capture_task), name="capture")
            elif effect is Effect.STOP_CAPTURE:
                if self._capture_task is not None:
                    self._capture_task.cancel()
            elif effect in (Effect.MARK_MUTED, Effect.MARK_UNMUTED):
                assert t.encounter_id is not None
                self.spool.set_muted(t.encounter_id, effect is Effect.MARK_MUTED)
                log.info("encounter %s %s", t.encounter_id,
                         "muted" if effect is Effect.MARK_MUTED else "unmuted")
            elif effect is Effect.END_ENCOUNTER:
                assert t.encounter_id is not None
                info = self.spool.end(t.encounter_id, self._clock_us())
                log.info("encounter %s ended after %d frames", t.encounter_id, info.next_seq)
        if t.effects:
            self.uplink.status_changed()
            self.uplink.wake()
            self._check_done()
        return t

    # --------------------------------------------------------------- capture

    async def _capture(self, encounter_id: str, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:  # let the last capture release the device first
            await asyncio.wait([previous])
        while True:
            info = self.spool.get(encounter_id)
            if info is None or info.ended:
                return
            position = StreamPosition(info.next_seq, info.started_at_us)
            try:
                async with contextlib.aclosing(self.source.stream(position)) as stream:
                    async for chunk in stream:
                        if self.capture_error is not None:
                            log.info("capture: working again")
                            self.capture_error = None
                            self.uplink.status_changed()
                        self._on_chunk(encounter_id, chunk)
            except CaptureError as err:
                self.counters.capture_errors += 1
                self.capture_error = str(err)
                self.uplink.status_changed()
                log.error("capture: %s; retrying in %g s", err, self._capture_retry_s)
                await asyncio.sleep(self._capture_retry_s)
                continue
            if self.source.finite:
                log.info("%s: end of file", self.source.describe())
                self._capture_task = None
                self._apply(self.room.stop())
                return
            await asyncio.sleep(self._capture_retry_s)  # a live source ended by itself: reopen

    def _on_chunk(self, encounter_id: str, chunk: AudioChunk) -> None:
        self.input_level.add(chunk.pcm, time.monotonic())
        self.counters.frames_captured += 1
        try:
            self.spool.append(encounter_id, chunk)
        except SpoolError as err:
            self.counters.frames_dropped += 1
            if self._full_warning.allow(time.monotonic()):
                more = self._full_warning.take_suppressed()
                log.warning(
                    "SPOOL %s: NEW AUDIO IS BEING DROPPED (%s); audio already captured is "
                    "kept until the server has it; %d frames dropped so far%s",
                    "FULL" if isinstance(err, SpoolFullError) else "UNWRITABLE", err,
                    self.counters.frames_dropped,
                    f", {more} since the last warning" if more else "",
                )
            return
        self.counters.frames_spooled += 1
        self.uplink.wake()

    async def _stop_capture(self) -> None:
        task, self._capture_task = self._capture_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # ---------------------------------------------------------- housekeeping

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(SYNC_INTERVAL_S)
            try:
                self.spool.sync()
            except OSError as err:
                log.error("spool: fsync failed: %s", err)

    async def _log_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.log_interval_s)
            log.info("counters: state=%s connected=%s spool_bytes=%d %s",
                     self.room.state.value, self.uplink.connected, self.spool.used_bytes,
                     self.counters.summary())
            self.uplink.status_changed()
            self.uplink.wake()  # an idle device still reports its health
