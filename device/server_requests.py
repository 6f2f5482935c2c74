"""What the server asks of the agent on the uplink, besides the audio stream.

The uplink's receiver hands these events here; the agent's callbacks do the work
(device/agent.py, device/remote.py) and nothing they raise ends the connection::

    ← command              start / stop / mute / unmute   → on_command (no answer)
    ← consent-withdrawn    delete the visit's unsent audio → on_withdrawn (no answer)
    ← diagnostics-request  → diagnostics                   (on_request's answer)
    ← config-change        → config-result                 (on_request's answer; a failure
                                                            is answered as refused)

A failed command or withdrawal is logged; a diagnostics request that fails goes
unanswered (the server times out and says so), a config change that fails is answered
``ok: false`` with the agent's error, so IT sees why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from protocol import (
    Command,
    ConfigChange,
    ConfigResult,
    ConsentWithdrawn,
    Diagnostics,
    DiagnosticsRequest,
)

__all__ = ["OnRequest", "ServerRequests"]

#: The uplink's logger: these lines read as the connection's, as they always did.
log = logging.getLogger("device.uplink")

#: The agent's answer to IT's request (None: no answer).
OnRequest = Callable[[DiagnosticsRequest | ConfigChange], Diagnostics | ConfigResult | None]


class ServerRequests:
    """The agent's side of the server's commands and requests; no socket, no state."""

    def __init__(
        self,
        *,
        on_command: Callable[[str], Any] = lambda _action: None,
        on_withdrawn: Callable[[str, str], Any] = lambda _encounter_id, _by: None,
        on_request: OnRequest = lambda _body: None,
    ) -> None:
        self._on_command = on_command
        self._on_withdrawn = on_withdrawn
        self._on_request = on_request

    def answer(self, body: DiagnosticsRequest | ConfigChange) -> Diagnostics | ConfigResult | None:
        """A request from IT (admin API): what the agent answers, to send back."""
        log.info("uplink: server asks for %s (request %s)", body.TYPE, body.request)
        try:
            return self._on_request(body)
        except Exception as err:
            log.exception("uplink: %s failed", body.TYPE)
            return (ConfigResult(body.request, False, {}, f"agent error: {err!r}"[:500])
                    if isinstance(body, ConfigChange) else None)

    def command(self, body: Command) -> None:
        log.info("uplink: server command %s", body.action)
        try:
            self._on_command(body.action)
        except Exception:
            log.exception("uplink: command %s failed", body.action)

    def withdrawn(self, body: ConsentWithdrawn) -> None:
        """The agent deletes the visit's unsent audio; the caller then stops sending what
        it had already read of it."""
        log.info("uplink: server says consent for %s was withdrawn", body.encounter_id)
        try:
            self._on_withdrawn(body.encounter_id, body.by)
        except Exception:
            log.exception("uplink: withdrawal of %s failed", body.encounter_id)
