"""Consent from the clinic's schedule: the CSV's ``consent`` / ``consent_by`` columns are
checked and stored on the appointment, and a visit falling in an appointment with
consent on file is recorded as consented (source ``schedule``, audited), which releases
its held audio; a withdrawal is never overridden. Migration 0007 up and down."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from server.db import Database
from server.migrate import alembic_config, upgrade
from server.models import AudioFrameRow, Clinic, ConsentState, Encounter, EncounterStatus, utcnow
from server.privacy.consent import ConsentGate, Verdict, withdraw_consent
from server.privacy.scheduled import consent_from_schedule
from server.review.errors import InvalidInput
from server.review.models import Appointment, AuditEvent
from server.review.schedule import import_schedule, parse_schedule
from server.settings import Settings
from tests.review.world import PASSWORD, World, add_encounter
from tests.support import TEST_DATABASE_URL, ServerThread, reset_database

HEADER = "room,start,duration_min,name,dob,mrn,reason,consent,consent_by\n"
UTC_ZONE = ZoneInfo("UTC")


def _parse(body: str) -> list[object]:
    return list(parse_schedule(HEADER + body, rooms={"exam-1"}, zone=UTC_ZONE,
                               today=date(2026, 12, 3)))


def test_consent_columns_are_checked_and_optional() -> None:
    rows = _parse("exam-1,2026-12-03 09:00,20,Ann Lee,1970-01-02,A1,cough,written,Front desk\n"
                  "exam-1,2026-12-03 09:30,20,Bo Park,1980-02-03,A2,rash,Verbal,\n"
                  "exam-1,2026-12-03 10:00,20,Cy Ode,1990-03-04,A3,,,\n")
    assert [(r.consent, r.consent_by) for r in rows] == [  # type: ignore[attr-defined]
        ("written", "Front desk"), ("verbal", ""), ("", "")]
    with pytest.raises(InvalidInput) as err:
        _parse("exam-1,2026-12-03 09:00,20,Ann Lee,1970-01-02,A1,,yes,\n"
               "exam-1,2026-12-03 09:30,20,Bo Park,1980-02-03,A2,,,Dr Who\n")
    assert err.value.extra["problems"] == [
        "line 2: consent 'yes' is not verbal, written or empty",
        "line 3: consent_by is given but consent is empty"]
    # a schedule without the columns is as before
    old = parse_schedule("room,start,name,dob,mrn\nexam-1,2026-12-03 09:00,Ann,1970-01-02,A1\n",
                         rooms={"exam-1"}, zone=UTC_ZONE, today=date(2026, 12, 3))
    assert old[0].consent == "" and old[0].consent_by == ""


def _start_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _book(world: World, at: datetime, consent: str, by: str = "", mrn: str = "A1") -> None:
    with world.db.session() as s:
        import_schedule(s, "north-clinic", HEADER + f"exam-1,{_start_text(at)},30,Ann Lee,"
                        f"1970-01-02,{mrn},cough,{consent},{by}\n", actor="test")


def test_import_stores_consent_and_a_correction_updates_it(world: World) -> None:
    at = utcnow().replace(second=0, microsecond=0)
    _book(world, at, "")
    with world.db.session() as s:
        counts = import_schedule(s, "north-clinic", HEADER + f"exam-1,{_start_text(at)},30,"
                                 "Ann Lee,1970-01-02,A1,cough,written,Front desk\n")
        assert (counts.imported, counts.updated) == (0, 1)
        appointment = s.scalars(select(Appointment)).one()
        assert (appointment.consent_method, appointment.consent_by) == ("written", "Front desk")


def _held(world: World) -> str:
    """A visit in exam-1 starting now, audio stored, no consent (North requires it)."""
    enc, _ = add_encounter(world.db, "exam-1", seconds=1, draft=False)
    with world.db.session() as s:
        row = s.get(Encounter, enc)
        assert row is not None
        row.started_at_us = int(utcnow().timestamp() * 1e6)
        row.status = EncounterStatus.RECORDING
    return enc


async def test_consent_on_file_releases_held_audio_and_is_audited(world: World) -> None:
    enc = _held(world)
    gate = ConsentGate(world.db, grace=timedelta(minutes=10), poll_s=60)
    assert gate._check(enc) is Verdict.HOLD  # nothing booked yet
    booked = utcnow() - timedelta(minutes=5)
    _book(world, booked, "")
    assert gate._check(enc) is Verdict.HOLD  # booked, no consent on file
    _book(world, booked, "verbal", "Front desk")  # corrected: consent on file now
    assert await gate.wait(enc) is True  # released: the visit goes to transcription
    with world.db.session() as s:
        row = s.get(Encounter, enc)
        assert row is not None
        assert (row.consent_state, row.consent_method, row.consent_by, row.consent_source) == (
            ConsentState.GIVEN, "verbal", "Front desk", "schedule")
        appointment = s.scalars(select(Appointment)).one()
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.encounter_id == enc,
                                                     AuditEvent.action == "consent")).all()
        assert event.actor == f"schedule (appointment {appointment.id})"
        assert event.detail == "verbal consent obtained by Front desk (via schedule)"
        assert event.clinic_id == "north-clinic"
        assert s.scalar(select(AudioFrameRow.seq).where(AudioFrameRow.encounter_id == enc)) == 0


def test_consent_on_file_never_overrides_a_withdrawal_or_another_room(world: World) -> None:
    enc = _held(world)
    with world.db.session() as s:
        withdraw_consent(s, enc, obtained_by="Dr North", source="api", now=utcnow())
    _book(world, utcnow(), "written")
    with world.db.session() as s:
        row = s.get(Encounter, enc)
        assert row is not None
        assert consent_from_schedule(s, row, utcnow()) is False
        assert row.consent_state == ConsentState.WITHDRAWN
    # a visit in another room does not take exam-1's appointment
    other, _ = add_encounter(world.db, "exam-2", draft=False)
    with world.db.session() as s:
        row = s.get(Encounter, other)
        assert row is not None
        assert consent_from_schedule(s, row, utcnow()) is False
        assert row.consent_state == ConsentState.NONE


def test_intake_takes_consent_from_the_linked_appointment(world: World) -> None:
    with world.db.session() as s:  # a clinic without required consent: drafts at once
        clinic = s.get(Clinic, "north-clinic")
        assert clinic is not None
        clinic.consent_required = False
    _book(world, utcnow() - timedelta(minutes=2), "written", "Nurse Kim")
    enc, item = add_encounter(world.db, "exam-1")
    with world.db.session() as s:
        row = s.get(Encounter, enc)
        assert row is not None and item is not None
        assert (row.consent_state, row.consent_method, row.consent_by, row.consent_source) == (
            ConsentState.GIVEN, "written", "Nurse Kim", "schedule")


def test_the_schedule_api_takes_the_consent_column(server: ServerThread, world: World) -> None:
    import httpx

    with httpx.Client(base_url=server.http_url, timeout=10) as c:
        r = c.post("/api/v1/auth/login", json={"username": "admin_north", "password": PASSWORD})
        assert r.status_code == 200
        csv = HEADER + f"exam-1,{_start_text(utcnow())},20,Ann Lee,1970-01-02,A1,,written,Desk\n"
        r = c.post("/api/v1/admin/clinics/north-clinic/schedule", content=csv.encode(),
                   headers={"Content-Type": "text/csv", "X-CSRF-Token": r.json()["csrf_token"]})
        assert r.status_code == 200, r.text
    with world.db.session() as s:
        assert s.scalars(select(Appointment.consent_method)).one() == "written"


def test_0007_up_and_down(settings: Settings) -> None:
    if TEST_DATABASE_URL:
        reset_database(TEST_DATABASE_URL)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)

    def down(revision: str) -> None:
        cfg = alembic_config(db.url)
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)

    def columns() -> set[str]:
        return {c["name"] for c in inspect(db.engine).get_columns("appointments")}

    try:
        upgrade(db, "0006")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO clinics (id, name, created_at) "
                              "VALUES ('c', 'C', CURRENT_TIMESTAMP)"))
            conn.execute(text(
                "INSERT INTO appointments (clinic_id, room_id, starts_at, duration_min, "
                "patient_name, patient_dob, patient_mrn, reason, created_at) VALUES "
                "('c', 'r', CURRENT_TIMESTAMP, 20, 'A', '1970-01-01', 'M', '', "
                "CURRENT_TIMESTAMP)"))
        upgrade(db, "0007")
        with db.engine.connect() as conn:
            assert tuple(conn.execute(text(
                "SELECT consent_method, consent_by FROM appointments")).one()) == ("", "")
        down("0006")
        assert not {"consent_method", "consent_by"} & columns()
        upgrade(db, "0007")
        assert {"consent_method", "consent_by"} <= columns()
    finally:
        db.dispose()

