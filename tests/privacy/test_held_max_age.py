"""Held audio of a visit that never ends: deleted once it has been held the longest time
allowed (``consent_hold_max_min``), by the consent gate and by the retention run, and
audited like every other deletion; the physician's list of held visits says when.

Times are moved, never slept through: the gate's clock is injected, and the encounter's
``created_at`` (when the server first heard of the visit) is set by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from server.models import AudioFrameRow, ConsentState, Encounter, EncounterStatus, PrivacyDeletion
from server.privacy.consent import ConsentGate, Verdict, record_consent
from server.privacy.held import held_visits
from server.privacy.retention import run_retention
from server.review.models import AuditEvent
from tests.review.world import World, add_encounter

HEARD = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
GRACE = timedelta(minutes=10)
MAX_HOLD = timedelta(minutes=60)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _never_ending(world: World, room: str = "exam-1") -> str:
    """A visit still recording (no end), 2 s of audio, no consent, heard at HEARD."""
    enc, _ = add_encounter(world.db, room, seconds=2, draft=False)
    with world.db.session() as s:
        row = s.get(Encounter, enc)
        assert row is not None
        row.status, row.ended_at_us, row.last_seq = EncounterStatus.RECORDING, None, None
        row.created_at = HEARD
        row.started_at_us = int(HEARD.timestamp() * 1e6)
    return enc


def _frames(world: World, enc: str) -> int:
    with world.db.session() as s:
        return len(s.scalars(select(AudioFrameRow.seq)
                             .where(AudioFrameRow.encounter_id == enc)).all())


async def test_the_gate_deletes_audio_held_longer_than_the_longest_hold(world: World) -> None:
    enc = _never_ending(world)
    clock = Clock(HEARD + MAX_HOLD - timedelta(seconds=1))
    gate = ConsentGate(world.db, grace=GRACE, poll_s=60, max_hold=MAX_HOLD, clock=clock)
    assert gate._check(enc) is Verdict.HOLD and _frames(world, enc) == 20
    clock.now = HEARD + MAX_HOLD
    assert await gate.wait(enc) is False  # never transcribed
    assert _frames(world, enc) == 0
    with world.db.session() as s:
        deletion = s.scalars(select(PrivacyDeletion)).one()
        assert (deletion.reason, deletion.audio_frames, deletion.actor) == (
            "held_expired", 20, "consent-gate")
        assert "no consent recorded within the longest hold (60 min)" in deletion.detail
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.encounter_id == enc)).all()
        assert (event.action, event.clinic_id) == ("delete", "north-clinic")
        assert "longest hold" in event.detail


def test_retention_run_deletes_it_too_and_only_past_the_longest_hold(world: World) -> None:
    old = _never_ending(world)
    with world.db.session() as s:
        assert run_retention(s, HEARD + timedelta(hours=5), grace=GRACE) == []  # no max
        done = run_retention(s, HEARD + MAX_HOLD - timedelta(seconds=1), grace=GRACE,
                             max_hold=MAX_HOLD)
        assert done == []
        done = run_retention(s, HEARD + MAX_HOLD, grace=GRACE, max_hold=MAX_HOLD)
        assert [(p.encounter_id, p.reason, p.audio_frames) for p in done] == [
            (old, "held_expired", 20)]
    assert _frames(world, old) == 0


def test_consent_or_a_legal_hold_keeps_it(world: World) -> None:
    consented, kept = _never_ending(world), _never_ending(world, "exam-2")
    with world.db.session() as s:
        record_consent(s, consented, method="verbal", obtained_by="Dr North", source="api",
                       now=HEARD)
        row = s.get(Encounter, kept)
        assert row is not None
        row.legal_hold, row.legal_hold_reason = True, "litigation"
    with world.db.session() as s:
        later = HEARD + timedelta(days=1)
        assert run_retention(s, later, grace=GRACE, max_hold=MAX_HOLD) == []
    assert _frames(world, consented) == 20 and _frames(world, kept) == 20


def test_physicians_see_held_visits_with_when_they_go(world: World) -> None:
    enc = _never_ending(world)
    with world.db.session() as s:
        [held] = held_visits(s, ["north-clinic"], grace=GRACE, max_hold=MAX_HOLD)
        assert (held.encounter_id, held.room_name, held.ended) == (enc, "Exam 1", False)
        assert held.deleted_at == HEARD + MAX_HOLD and held.audio_seconds == 2.0
        assert held_visits(s, ["south-clinic"], grace=GRACE, max_hold=MAX_HOLD) == []
        record_consent(s, enc, method="written", obtained_by="Dr North", source="api",
                       now=HEARD)
        assert held_visits(s, ["north-clinic"], grace=GRACE, max_hold=MAX_HOLD) == []
        assert s.get(Encounter, enc).consent_state == ConsentState.GIVEN  # type: ignore[union-attr]
