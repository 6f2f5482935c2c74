"""Agent self-update: a pure state machine. No clock, no I/O, no network.

The server offers a release (:class:`Offer`: version, sha256, size, signature). The
agent takes it only inside its maintenance window and only when the room is idle with
nothing unacknowledged in the spool; it downloads the wheel, checks the sha256 and the
Ed25519 signature against the public key installed at provisioning, installs it side by
side, switches ``current`` and restarts. The restarted agent must report in to the server
within ``update_health_timeout_s`` or it is rolled back (a crash loop is rolled back by
``device/update_guard.py``, run by systemd before each start)::

    idle ──offer──▶ offered ─┬─(in window, room idle, spool empty)─▶ downloading
                     ▲       └─(outside window / visit / unacked audio)─▶ waiting ─┐
                     └──────────────── download failed ◀──────────────────────────┘
    downloading ──▶ verifying ─┬─ bad sha256 / signature / version ─▶ refused
                               └─▶ installing ─┬─ install failed ─▶ rolled-back
                                               └─▶ ready ─(idle)─▶ restarting
    restarting (after the restart) ─┬─ reported in ─▶ applied
                                    └─ no report / wrong version / crash loop ─▶ rolled-back

Each method returns a :class:`Transition` with the effects the driver
(``device/update_run.py``) must carry out, in order.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum
from typing import Any

__all__ = [
    "MAX_WHEEL_BYTES",
    "Effect",
    "MaintenanceWindow",
    "Offer",
    "Transition",
    "UpdateMachine",
    "UpdateRecord",
    "UpdateState",
    "after_restart",
    "guard_boot",
]

#: The largest wheel an agent downloads (the whole roomscribe wheel is far smaller).
MAX_WHEEL_BYTES = 64 * 1024 * 1024
#: Starts of a new release that never reported in before the guard rolls it back.
MAX_BOOTS = 3

_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+!_-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class UpdateState(StrEnum):
    IDLE = "idle"
    OFFERED = "offered"
    WAITING = "waiting-for-window"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    INSTALLING = "installing"
    READY = "ready"  # installed side by side; waiting for the room to be idle to restart
    RESTARTING = "restarting"
    APPLIED = "applied"
    ROLLED_BACK = "rolled-back"
    REFUSED = "refused"


class Effect(StrEnum):
    DOWNLOAD = "download"
    VERIFY = "verify"
    INSTALL = "install"
    SWITCH_AND_RESTART = "switch-and-restart"  # point ``current`` at the new release; exit
    DISCARD = "discard"  # remove a half-installed release (the running one stays)
    MARK_APPLIED = "mark-applied"
    ROLLBACK_AND_RESTART = "rollback-and-restart"  # ``current`` back to the previous one


@dataclass(frozen=True, slots=True)
class Offer:
    """What the server offers this device (``GET /api/v1/agent/offer``)."""

    version: str
    filename: str
    sha256: str
    size: int
    signature: bytes = field(repr=False)
    """Ed25519 signature of the wheel file's bytes (64 bytes)."""
    url: str
    """Path on the server the wheel is downloaded from (the device's token authorises it)."""

    @classmethod
    def from_json(cls, obj: Any) -> Offer:
        """Validate the server's answer; :class:`ValueError` naming what is wrong."""
        if not isinstance(obj, dict):
            raise ValueError("offer: not a JSON object")
        version, filename, sha, size, sig, url = (obj.get(k) for k in (
            "version", "filename", "sha256", "size", "signature", "url"))
        if not isinstance(version, str) or not _VERSION.match(version):
            raise ValueError(f"offer: bad version {version!r}")
        if not isinstance(filename, str) or not filename.endswith(".whl") \
                or "/" in filename or "\\" in filename or filename.startswith("."):
            raise ValueError(f"offer: bad wheel file name {filename!r}")
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise ValueError("offer: sha256 must be 64 lowercase hex digits")
        if not isinstance(size, int) or isinstance(size, bool) \
                or not 0 < size <= MAX_WHEEL_BYTES:
            raise ValueError(f"offer: bad size {size!r} (at most {MAX_WHEEL_BYTES} bytes)")
        if not isinstance(url, str) or not url.startswith("/"):
            raise ValueError(f"offer: url must be a path on the server, got {url!r}")
        if not isinstance(sig, str):
            raise ValueError("offer: signature missing")
        try:
            signature = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError) as err:
            raise ValueError("offer: signature is not base64") from err
        if len(signature) != 64:
            raise ValueError("offer: an Ed25519 signature is 64 bytes")
        return cls(version, filename, sha, size, signature, url)


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Local wall-clock hours when the agent may update, e.g. ``22:00-05:00`` (it may
    cross midnight). Start inclusive, end exclusive; equal ends mean all day."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> MaintenanceWindow:
        m = _WINDOW.match(text)
        if m is None:
            raise ValueError(f"maintenance window must look like 22:00-05:00, got {text!r}")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise ValueError(f"maintenance window {text!r}: hours 0..23, minutes 0..59")
        return cls(time(h1, m1), time(h2, m2))

    def contains(self, now: time) -> bool:
        now = now.replace(second=0, microsecond=0, tzinfo=None)
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True, slots=True)
class UpdateRecord:
    """What survives the restart (``update.json`` in the update directory)."""

    state: UpdateState
    from_version: str
    to_version: str
    #: the release directory name ``current`` pointed at before ("" = the base install)
    previous: str = ""
    boots: int = 0
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state.value, "from_version": self.from_version,
                "to_version": self.to_version, "previous": self.previous,
                "boots": self.boots, "reason": self.reason}

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> UpdateRecord | None:
        try:
            return cls(UpdateState(obj["state"]), str(obj["from_version"]),
                       str(obj["to_version"]), str(obj.get("previous", "")),
                       int(obj.get("boots", 0)), str(obj.get("reason", "")))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class Transition:
    state: UpdateState
    effects: tuple[Effect, ...] = ()
    reason: str = ""


class UpdateMachine:
    """One agent's update, from offer to restart. ``running``: this agent's version."""

    def __init__(self, running: str, window: MaintenanceWindow) -> None:
        self.running = running
        self.window = window
        self.state = UpdateState.IDLE
        self.offer: Offer | None = None
        self.reason = ""
        self._refused: set[str] = set()  # sha256 of offers already refused
        self._failed: dict[str, str] = {}  # version -> why it was rolled back

    def reset(self, reason: str) -> Transition:
        """Back to idle after an unexpected error of the driver (what was refused or
        rolled back is still remembered); the next offer starts over."""
        self.offer = None
        return self._go(UpdateState.IDLE, reason=reason)

    def remember_failure(self, version: str, reason: str) -> None:
        """``version`` was installed and rolled back: do not try it again (IT publishes
        a fixed build under a new version)."""
        self._failed[version] = reason

    def _go(self, state: UpdateState, *effects: Effect, reason: str = "") -> Transition:
        self.state = state
        self.reason = reason
        return Transition(state, effects, reason)

    @property
    def busy(self) -> bool:
        """Between the start of a download and the restart (nothing else may start)."""
        return self.state in (UpdateState.DOWNLOADING, UpdateState.VERIFYING,
                              UpdateState.INSTALLING, UpdateState.RESTARTING)

    def offered(self, offer: Offer | None) -> Transition:
        """The server's current offer (None: nothing offered)."""
        if self.busy or self.state is UpdateState.READY:
            return Transition(self.state, (), self.reason)  # the check finishes first
        if offer is None or offer.version == self.running:
            self.offer = None
            return self._go(UpdateState.IDLE)
        if offer.sha256 in self._refused:
            self.offer = offer
            return Transition(self.state, (), self.reason)
        if offer.version in self._failed:
            self.offer = offer
            return self._go(UpdateState.ROLLED_BACK,
                            reason=f"{offer.version} was rolled back before: "
                                   f"{self._failed[offer.version]}")
        if self.offer == offer and self.state is UpdateState.WAITING:
            return Transition(self.state, (), self.reason)
        self.offer = offer
        return self._go(UpdateState.OFFERED)

    def tick(self, now: time, blocker: str) -> Transition:
        """Time passed. ``now``: local wall-clock time; ``blocker``: why the room cannot
        be disturbed now ("" = idle and nothing unacknowledged in the spool)."""
        if self.state not in (UpdateState.OFFERED, UpdateState.WAITING, UpdateState.READY):
            return Transition(self.state, (), self.reason)
        if not self.window.contains(now):
            return self._keep(f"outside the maintenance window {self.window}")
        if blocker:
            return self._keep(blocker)
        if self.state is UpdateState.READY:
            return self._go(UpdateState.RESTARTING, Effect.SWITCH_AND_RESTART)
        return self._go(UpdateState.DOWNLOADING, Effect.DOWNLOAD)

    def _keep(self, reason: str) -> Transition:
        state = UpdateState.READY if self.state is UpdateState.READY else UpdateState.WAITING
        return self._go(state, reason=reason)

    def downloaded(self, error: str = "") -> Transition:
        """The wheel is on disk (or the download failed: tried again at the next check)."""
        if self.state is not UpdateState.DOWNLOADING:
            raise RuntimeError(f"downloaded() in state {self.state}")
        if error:
            return self._go(UpdateState.OFFERED, reason=f"download failed: {error}")
        return self._go(UpdateState.VERIFYING, Effect.VERIFY)

    def verified(self, problem: str = "") -> Transition:
        """sha256, signature and the wheel's own version checked ("" = all good)."""
        if self.state is not UpdateState.VERIFYING:
            raise RuntimeError(f"verified() in state {self.state}")
        if problem:
            if self.offer is not None:
                self._refused.add(self.offer.sha256)
            return self._go(UpdateState.REFUSED, reason=problem)
        return self._go(UpdateState.INSTALLING, Effect.INSTALL)

    def installed(self, error: str = "") -> Transition:
        if self.state is not UpdateState.INSTALLING:
            raise RuntimeError(f"installed() in state {self.state}")
        if error:  # not tried again until the agent restarts (or a new version comes)
            reason = f"install failed: {error}"
            if self.offer is not None:
                self._failed[self.offer.version] = reason
            return self._go(UpdateState.ROLLED_BACK, Effect.DISCARD, reason=reason)
        return self._go(UpdateState.READY, reason="installed; restarts when the room is idle")


def after_restart(record: UpdateRecord | None, running: str, *, reported_in: bool,
                  waited_s: float, timeout_s: float) -> Transition | None:
    """The health check of a freshly switched release, run by the new agent itself.

    None: no update in progress. ``reported_in``: the agent has connected to the server
    and sent its status; ``waited_s``: since the agent started."""
    if record is None or record.state is not UpdateState.RESTARTING:
        return None
    if running != record.to_version:
        return Transition(UpdateState.ROLLED_BACK, (Effect.ROLLBACK_AND_RESTART,),
                          f"agent {running} started instead of {record.to_version}")
    if reported_in:
        return Transition(UpdateState.APPLIED, (Effect.MARK_APPLIED,),
                          f"{record.from_version} -> {record.to_version}")
    if waited_s >= timeout_s:
        return Transition(UpdateState.ROLLED_BACK, (Effect.ROLLBACK_AND_RESTART,),
                          f"agent {running} did not report in to the server within "
                          f"{timeout_s:g} s")
    return Transition(UpdateState.RESTARTING)


def guard_boot(record: UpdateRecord | None, max_boots: int = MAX_BOOTS,
               ) -> tuple[UpdateRecord | None, bool]:
    """Run before every start (``device/update_guard.py``): count the starts of a release
    that has not reported in yet. Returns the record to store and whether to roll back
    now (the new release crashed ``max_boots`` times)."""
    if record is None or record.state is not UpdateState.RESTARTING:
        return record, False
    boots = record.boots + 1
    if boots > max_boots:
        return UpdateRecord(UpdateState.ROLLED_BACK, record.from_version, record.to_version,
                            record.previous, boots,
                            f"agent {record.to_version} did not start ({max_boots} tries)"), True
    return UpdateRecord(record.state, record.from_version, record.to_version, record.previous,
                        boots, record.reason), False
