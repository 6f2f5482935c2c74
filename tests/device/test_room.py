"""The room's state machine."""

from __future__ import annotations

from device.room import Effect, Room, RoomState


def test_a_visit_start_mute_unmute_stop() -> None:
    room = Room()
    t = room.start("enc-1")
    assert (t.ok, t.state, t.encounter_id) == (True, RoomState.LISTENING, "enc-1")
    assert t.effects == (Effect.BEGIN_ENCOUNTER, Effect.START_CAPTURE)
    t = room.mute()
    assert t.state is RoomState.MUTED and t.effects == (Effect.STOP_CAPTURE, Effect.MARK_MUTED)
    t = room.unmute()
    assert t.state is RoomState.LISTENING
    assert t.effects == (Effect.MARK_UNMUTED, Effect.START_CAPTURE)
    assert t.encounter_id == "enc-1", "unmute continues the same encounter"
    t = room.stop()
    assert (t.state, t.encounter_id) == (RoomState.IDLE, "enc-1")
    assert t.effects == (Effect.STOP_CAPTURE, Effect.END_ENCOUNTER)
    assert room.encounter_id is None


def test_stop_while_muted_ends_without_touching_capture() -> None:
    room = Room()
    room.start("e")
    room.mute()
    assert room.stop().effects == (Effect.END_ENCOUNTER,)


def test_repeated_requests_are_harmless() -> None:
    room = Room()
    room.start("e")
    again = room.start("other")
    assert again.ok and again.effects == () and again.encounter_id == "e"
    assert "already listening" in again.message
    assert room.unmute().effects == ()
    room.mute()
    assert room.mute().effects == ()
    room.stop()
    assert room.stop().effects == () and room.stop().ok


def test_requests_that_make_no_sense_are_refused() -> None:
    room = Room()
    assert not room.mute().ok
    assert not room.unmute().ok
    room.start("e")
    room.mute()
    refused = room.start("f")
    assert not refused.ok and refused.encounter_id == "e" and "unmute" in refused.message


def test_resume_after_a_restart() -> None:
    room = Room()
    t = room.resume("enc-9", muted=False)
    assert (t.state, t.encounter_id, t.effects) == (RoomState.LISTENING, "enc-9",
                                                    (Effect.START_CAPTURE,))
    muted = Room()
    t = muted.resume("enc-9", muted=True)
    assert t.state is RoomState.MUTED and t.effects == (), "a restart never unmutes"


def test_abort_start_returns_to_idle() -> None:
    room = Room()
    room.start("e")
    room.abort_start()
    assert room.state is RoomState.IDLE and room.encounter_id is None
