"""The updater: carries out what the pure :class:`~device.update.UpdateMachine` decides.

Runs as one task of the agent (``update_public_key`` set in room.toml). Every
``update_check_s`` it asks the server for its offer (telling it this agent's version and
update state); every ``TICK_S`` it lets the machine look at the clock and the room. The
network, the verification and pip run in threads; nothing here blocks the capture.

Restart: the agent stops gracefully and exits with :data:`RESTART_EXIT_CODE`; systemd
(``Restart=always``) starts it again, now from ``current``. The new agent checks itself
(:func:`~device.update.after_restart`): once it has reported in to the server the update
is ``applied``; if it has not within ``update_health_timeout_s`` it points ``current``
back and restarts (``rolled-back``). An agent that cannot even start is rolled back by
``device/update_guard.py`` (systemd ``ExecStartPre``).
"""

from __future__ import annotations

import asyncio
import logging
import time as _time
from collections.abc import Callable
from datetime import datetime, time
from pathlib import Path
from typing import Any

from .settings import AgentSettings
from .update import (
    Effect,
    MaintenanceWindow,
    Offer,
    Transition,
    UpdateMachine,
    UpdateRecord,
    UpdateState,
    after_restart,
)
from .update_fetch import FetchError, HttpReleaseClient, ReleaseClient
from .update_install import Installer, InstallError, PipInstaller, ReleaseDir
from .update_verify import check_wheel, load_public_key

__all__ = ["RESTART_EXIT_CODE", "TICK_S", "Updater"]

log = logging.getLogger(__name__)

#: EX_TEMPFAIL: "restart me" (systemd's Restart=always starts the agent again).
RESTART_EXIT_CODE = 75
TICK_S = 30.0
HEALTH_POLL_S = 1.0


def _local_time() -> time:
    return datetime.now().astimezone().time()


class Updater:
    """One agent's updates. ``blocker()``: why the room must not be disturbed now ("" =
    idle, spool empty); ``reported_in()``: connected to the server; ``restart()``: stop
    the agent gracefully and exit with :data:`RESTART_EXIT_CODE`."""

    def __init__(self, settings: AgentSettings, *, running: str, public_key: Any,
                 blocker: Callable[[], str], reported_in: Callable[[], bool],
                 restart: Callable[[], None], client: ReleaseClient | None = None,
                 installer: Installer | None = None,
                 local_time: Callable[[], time] = _local_time,
                 monotonic: Callable[[], float] = _time.monotonic,
                 tick_s: float = TICK_S, health_poll_s: float = HEALTH_POLL_S) -> None:
        self.settings = settings
        self.running = running
        self.public_key = public_key
        self.machine = UpdateMachine(running, MaintenanceWindow.parse(settings.update_window))
        self.releases = ReleaseDir(settings.update_dir)
        self.client: ReleaseClient = client or HttpReleaseClient(
            settings.server_url, settings.token, ca_bundle=settings.ca_bundle)
        self.installer: Installer = installer or PipInstaller()
        self._blocker = blocker
        self._reported_in = reported_in
        self._restart = restart
        self._local_time = local_time
        self._monotonic = monotonic
        self._started = monotonic()
        self.tick_s = tick_s
        self.health_poll_s = health_poll_s
        #: set once the agent has been asked to restart (nothing more happens after)
        self.restarting = False

    @classmethod
    def from_settings(cls, settings: AgentSettings, **kwargs: Any) -> Updater | None:
        """None when updates are off (no ``update_public_key``); ConfigError for a key
        that cannot be used (the agent refuses to start, as for any bad setting)."""
        if settings.update_public_key is None:
            return None
        return cls(settings, public_key=load_public_key(settings.update_public_key), **kwargs)

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        """Never returns and never raises: a failing updater must not stop the capture
        (an unexpected error is logged and the next round tries again)."""
        try:
            self.releases.prepare()
            await self.health_check()
        except Exception:
            log.exception("update: cannot check the last update; updates are off until "
                          "the agent restarts")
            self.restarting = True
        next_check = self._monotonic()
        while not self.restarting:
            try:
                if self._monotonic() >= next_check:
                    next_check = self._monotonic() + self.settings.update_check_s
                    await self.check_offer()
                await self.step()
            except Exception as err:
                log.exception("update: unexpected error (tried again at the next check)")
                self.machine.reset(f"unexpected error: {err!r}"[:300])
            await asyncio.sleep(self.tick_s)
        await asyncio.Event().wait()  # the agent is stopping, or updates are off

    async def health_check(self) -> None:
        """After a switch: wait for this agent to report in, then call it applied, or roll
        back. Also restores what an earlier rollback taught the machine."""
        record = self.releases.read_record()
        if record is not None and record.state is UpdateState.ROLLED_BACK:
            self.machine.remember_failure(record.to_version, record.reason)
            self.machine.state, self.machine.reason = record.state, record.reason
        while True:
            t = after_restart(record, self.running, reported_in=self._reported_in(),
                              waited_s=self._monotonic() - self._started,
                              timeout_s=self.settings.update_health_timeout_s)
            if t is None or t.state is UpdateState.RESTARTING:
                if t is None:
                    return
                await asyncio.sleep(self.health_poll_s)
                continue
            assert record is not None
            if Effect.MARK_APPLIED in t.effects:
                self.releases.write_record(UpdateRecord(
                    UpdateState.APPLIED, record.from_version, record.to_version,
                    record.previous, record.boots, t.reason))
                self.releases.prune(keep=[record.previous])
                log.info("update applied: %s", t.reason)
            else:
                self._roll_back(record, t.reason)
            self.machine.state, self.machine.reason = t.state, t.reason
            return

    def _roll_back(self, record: UpdateRecord, reason: str) -> None:
        log.error("update to %s failed: %s; rolling back to %s", record.to_version, reason,
                  record.previous or "the base install")
        self.releases.switch(record.previous)
        self.releases.write_record(UpdateRecord(
            UpdateState.ROLLED_BACK, record.from_version, record.to_version, record.previous,
            record.boots, reason))
        self.machine.remember_failure(record.to_version, reason)
        self.restarting = True
        self._restart()

    async def check_offer(self) -> None:
        """Ask the server what it offers (a failure is logged; tried again later)."""
        try:
            offer = await asyncio.to_thread(self.client.offer, self.running,
                                            self.machine.state.value, self.machine.reason)
        except FetchError as err:
            log.warning("update: cannot get the offer: %s", err)
            return
        before = self.machine.state
        t = self.machine.offered(offer)
        if t.state is not before and offer is not None:
            log.info("update: %s offered (%s)", offer.version, t.state.value)
        await self._apply(t)

    async def step(self) -> None:
        """Let the machine look at the clock and the room."""
        if self.restarting:
            return
        await self._apply(self.machine.tick(self._local_time(), self._blocker()))

    # --------------------------------------------------------------- effects

    async def _apply(self, t: Transition) -> None:
        if t.state in (UpdateState.REFUSED, UpdateState.ROLLED_BACK) and t.reason:
            log.error("update %s: %s", t.state.value, t.reason)
        for effect in t.effects:
            offer = self.machine.offer
            assert offer is not None
            if effect is Effect.DOWNLOAD:
                await self._apply(self.machine.downloaded(await self._download(offer)))
            elif effect is Effect.VERIFY:
                await self._apply(self.machine.verified(await asyncio.to_thread(
                    self._verify, offer)))
            elif effect is Effect.INSTALL:
                await self._apply(self.machine.installed(await self._install(offer)))
                if self.machine.state is UpdateState.READY:
                    await self.step()  # restart now if the room is still free
            elif effect is Effect.DISCARD:
                self.releases.discard(offer.version)
            elif effect is Effect.SWITCH_AND_RESTART:
                self._switch(offer)

    def _wheel_path(self, offer: Offer) -> Path:
        return self.releases.downloads / offer.filename

    async def _download(self, offer: Offer) -> str:
        path = self._wheel_path(offer)
        for old in self.releases.downloads.iterdir():
            old.unlink(missing_ok=True)
        try:
            await asyncio.to_thread(self.client.download, offer, path)
        except (FetchError, OSError) as err:
            path.unlink(missing_ok=True)
            return str(err)
        return ""

    def _verify(self, offer: Offer) -> str:
        path = self._wheel_path(offer)
        try:
            problem = check_wheel(offer, path.read_bytes(), self.public_key)
        except OSError as err:
            problem = f"cannot read the download: {err}"
        if problem:
            path.unlink(missing_ok=True)
        return problem

    async def _install(self, offer: Offer) -> str:
        try:
            await asyncio.to_thread(self.releases.install, self.installer,
                                    self._wheel_path(offer), offer.version)
        except (InstallError, OSError) as err:
            return str(err)
        finally:
            self._wheel_path(offer).unlink(missing_ok=True)
        return ""

    def _switch(self, offer: Offer) -> None:
        previous = self.releases.current_name()
        record = UpdateRecord(UpdateState.RESTARTING, self.running, offer.version, previous)
        try:
            self.releases.write_record(record)
            self.releases.switch(offer.version)
        except (InstallError, OSError) as err:
            reason = f"cannot switch: {err}"
            log.error("update: %s to %s; staying on %s", reason, offer.version, self.running)
            try:
                self.releases.switch(previous)
                self.releases.write_record(UpdateRecord(
                    UpdateState.ROLLED_BACK, self.running, offer.version, previous, 0, reason))
            except (InstallError, OSError) as again:
                log.error("update: cannot restore %s: %s", previous or "the base", again)
            self.machine.remember_failure(offer.version, reason)
            self.machine.state, self.machine.reason = UpdateState.ROLLED_BACK, reason
            return
        log.warning("update: switched to %s (from %s); restarting", offer.version,
                    self.running)
        self.restarting = True
        self._restart()
