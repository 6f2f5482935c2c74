"""The room's state machine: idle ↔ listening ↔ muted. Pure: no clock, no I/O.

Every request returns a :class:`Transition` listing the effects the agent
must carry out, in order; the machine itself only tracks state::

             start                  mute
    idle ───────────▶ listening ───────────▶ muted
      ▲ ◀─────────────   │   ◀───────────────  │
      │      stop        │       unmute        │
      └──────────────────┴─────────────────────┘
                          stop

``resume`` is the agent restarting mid-visit: the spool still holds an
encounter that has not ended, so the visit is still going on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Effect", "Room", "RoomState", "Transition"]


class RoomState(StrEnum):
    IDLE = "idle"
    LISTENING = "listening"
    MUTED = "muted"


class Effect(StrEnum):
    BEGIN_ENCOUNTER = "begin-encounter"
    START_CAPTURE = "start-capture"
    STOP_CAPTURE = "stop-capture"
    MARK_MUTED = "mark-muted"
    MARK_UNMUTED = "mark-unmuted"
    END_ENCOUNTER = "end-encounter"


@dataclass(frozen=True, slots=True)
class Transition:
    ok: bool
    state: RoomState
    encounter_id: str | None
    effects: tuple[Effect, ...] = ()
    message: str = ""


class Room:
    def __init__(self) -> None:
        self.state = RoomState.IDLE
        self.encounter_id: str | None = None

    def _result(self, *effects: Effect, ok: bool = True, message: str = "") -> Transition:
        return Transition(ok, self.state, self.encounter_id, effects, message)

    def start(self, new_encounter_id: str) -> Transition:
        if self.state is RoomState.LISTENING:
            return self._result(message="already listening")
        if self.state is RoomState.MUTED:
            return self._result(ok=False, message="muted: unmute to continue this visit, "
                                                  "or stop it first")
        self.state = RoomState.LISTENING
        self.encounter_id = new_encounter_id
        return self._result(Effect.BEGIN_ENCOUNTER, Effect.START_CAPTURE)

    def stop(self) -> Transition:
        if self.state is RoomState.IDLE:
            return self._result(message="already idle")
        effects = (Effect.STOP_CAPTURE,) if self.state is RoomState.LISTENING else ()
        ended = self.encounter_id
        self.state = RoomState.IDLE
        self.encounter_id = None
        return Transition(True, self.state, ended, (*effects, Effect.END_ENCOUNTER))

    def mute(self) -> Transition:
        if self.state is RoomState.MUTED:
            return self._result(message="already muted")
        if self.state is RoomState.IDLE:
            return self._result(ok=False, message="no visit is being recorded")
        self.state = RoomState.MUTED
        return self._result(Effect.STOP_CAPTURE, Effect.MARK_MUTED)

    def unmute(self) -> Transition:
        if self.state is RoomState.LISTENING:
            return self._result(message="not muted")
        if self.state is RoomState.IDLE:
            return self._result(ok=False, message="no visit is being recorded")
        self.state = RoomState.LISTENING
        return self._result(Effect.MARK_UNMUTED, Effect.START_CAPTURE)

    def resume(self, encounter_id: str, *, muted: bool) -> Transition:
        """Pick up a visit a previous run of the agent left open."""
        if self.state is not RoomState.IDLE:
            return self._result(ok=False, message="a visit is already in progress")
        self.encounter_id = encounter_id
        if muted:  # the patient asked not to be recorded; a restart must not undo that
            self.state = RoomState.MUTED
            return self._result()
        self.state = RoomState.LISTENING
        return self._result(Effect.START_CAPTURE)

    def abort_start(self) -> Transition:
        """The encounter could not be created (spool unwritable): back to idle."""
        self.state = RoomState.IDLE
        self.encounter_id = None
        return self._result()
