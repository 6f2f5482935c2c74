"""What the server may ask of the agent remotely: a diagnostic bundle, a live config change.

* ``diagnostics-request`` → ``diagnostics``: :func:`diagnostic_bundle` — the agent's
  version and state, its settings without the token (:func:`public_config`), its
  counters and status, and the recent log lines :class:`RecentLog` kept (log lines name
  encounters and states, never audio). Trimmed, oldest lines first, to fit one text
  frame (:data:`protocol.MAX_EVENT_BYTES`).
* ``config-change`` → ``config-result``: :func:`device.settings.changed_live` validates
  (keys in :data:`device.settings.LIVE_KEYS` only); the agent swaps its settings or
  answers why not. Changes are not written to the room's TOML file: a restart returns
  to it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from protocol import MAX_EVENT_BYTES, Diagnostics, encode_event

from .settings import AgentSettings

__all__ = ["MAX_LOG_LINES", "RecentLog", "diagnostic_bundle", "public_config"]

#: Log lines kept for a diagnostic bundle.
MAX_LOG_LINES = 200
_MAX_LINE = 300
#: Room left in a text frame for the event's envelope.
_FRAME_BUDGET = MAX_EVENT_BYTES - 512


class RecentLog(logging.Handler):
    """Keeps the last :data:`MAX_LOG_LINES` formatted log records (each cut at 300
    characters), for :func:`diagnostic_bundle`."""

    def __init__(self, capacity: int = MAX_LOG_LINES) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._lines: deque[str] = deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record)[:_MAX_LINE])
        except Exception:  # a log call must never break the agent
            self.handleError(record)

    def lines(self) -> list[str]:
        return list(self._lines)


def public_config(settings: AgentSettings) -> dict[str, Any]:
    """The settings as JSON values, without the token (the token file's path stays)."""
    out: dict[str, Any] = {}
    for f in fields(settings):
        if f.name == "token":
            continue
        value = getattr(settings, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def diagnostic_bundle(request: str, *, agent_version: str, settings: AgentSettings,
                      status: Mapping[str, Any], log_lines: list[str]) -> Diagnostics:
    """The ``diagnostics`` answer, its oldest log lines dropped until it fits a frame."""
    bundle: dict[str, Any] = {
        "agent_version": agent_version,
        "config": public_config(settings),
        "status": dict(status),
        "log": list(log_lines),
        "log_lines_dropped": 0,
    }
    while True:
        answer = Diagnostics(request, bundle)
        size = len(encode_event(answer.to_event()).encode())
        if size <= _FRAME_BUDGET or not bundle["log"]:
            return answer
        # drop enough of the oldest lines at once (at least one)
        excess, drop = size - _FRAME_BUDGET, 0
        while excess > 0 and drop < len(bundle["log"]):
            excess -= len(bundle["log"][drop]) + 3
            drop += 1
        bundle["log"] = bundle["log"][drop:]
        bundle["log_lines_dropped"] += drop
