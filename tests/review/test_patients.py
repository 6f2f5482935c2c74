"""Patient identity: the schedule, matching a visit at intake, a reviewer's choice, the queue.

North Clinic runs on America/Chicago (CST, UTC-6, on 2 March 2026). Appointments in
exam-1 at 09:00 and 09:30 local, one in exam-2 at 09:00.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from server import registry
from server.db import Database
from server.models import Base, Clinic, Device, Encounter
from server.review import audit, directory, schedule, workflow
from server.review.auth import load_principal
from server.review.cli import main as review
from server.review.errors import ClaimHeld, InvalidInput
from server.review.intake import receive_draft
from server.review.lifecycle import Action
from server.review.live import hub_of
from server.review.models import Appointment, AuditEvent, ReviewItem
from server.review.patients import (
    chief_complaint,
    encounter_seconds,
    patient_of,
    set_patient,
    visit_seconds,
)
from server.review.queue import list_queue
from server.settings import Settings
from tests.review.world import UserClient, World, add_encounter, make_draft, make_transcript
from tests.support import ServerThread

CHICAGO = ZoneInfo("America/Chicago")
DAY = "2026-03-02"
NOW = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)  # noon in Chicago
GOOD = f"""room,start,duration_min,name,dob,mrn,reason
exam-1,{DAY} 09:00,20,Maria Lopez,1961-04-12,A-1001,chest tightness
exam-1,{DAY}T09:30,,"Chen, Wei",1987-11-30,A-1002,
exam-2,{DAY} 09:00,30,Ann Smith,1950-01-01,A-1003,knee pain
"""


def local(hh: int, mm: int) -> datetime:
    return datetime(2026, 3, 2, hh, mm, tzinfo=CHICAGO)


@pytest.fixture
def scheduled(world: World) -> World:
    with world.db.session() as s:
        schedule.set_timezone(s, world.north, "America/Chicago")
        counts = schedule.import_schedule(s, world.north, GOOD, now=NOW)
        assert (counts.imported, counts.updated, counts.unchanged) == (3, 0, 0)
    return world


def visit(db: Database, room: str, started: datetime | None, *, seconds: float = 0.0,
          ended: datetime | None = None, now: datetime = NOW) -> ReviewItem:
    """An encounter begun at ``started`` (None: the device did not say) and its review item."""
    enc_id, _ = add_encounter(db, room, seconds, draft=False)
    with db.session() as s:
        enc = s.get(Encounter, enc_id)
        assert enc is not None
        enc.started_at_us = int(started.timestamp() * 1e6) if started else 0
        enc.ended_at_us = int(ended.timestamp() * 1e6) if ended else None
    with db.session() as s:
        item = receive_draft(s, enc_id, make_draft(enc_id), make_transcript(enc_id), now=now)
        s.expunge(item)
        return item


def intake_detail(db: Database, item_id: str) -> str:
    with db.session() as s:
        return s.scalars(select(AuditEvent.detail).where(
            AuditEvent.item_id == item_id, AuditEvent.action == "intake")).one()


# --- the schedule --------------------------------------------------------------------------

def test_import_stores_utc_and_reimport_changes_nothing(scheduled: World) -> None:
    with scheduled.db.session() as s:
        rows = list(s.scalars(select(Appointment).order_by(Appointment.room_id,
                                                           Appointment.starts_at)))
        assert [(a.room_id, a.starts_at, a.duration_min, a.patient_name) for a in rows] == [
            ("exam-1", datetime(2026, 3, 2, 15, 0, tzinfo=UTC), 20, "Maria Lopez"),
            ("exam-1", datetime(2026, 3, 2, 15, 30, tzinfo=UTC), 20, "Chen, Wei"),
            ("exam-2", datetime(2026, 3, 2, 15, 0, tzinfo=UTC), 30, "Ann Smith")]
        again = schedule.import_schedule(s, scheduled.north, GOOD, now=NOW)
        assert (again.imported, again.updated, again.unchanged) == (0, 0, 3)
        fixed = GOOD.replace("chest tightness", "chest pain on stairs")
        fixed += f"exam-2,{DAY} 10:00,20,Ben Ode,2001-02-03,A-1004,\n"
        counts = schedule.import_schedule(s, scheduled.north, fixed, now=NOW)
        assert (counts.imported, counts.updated, counts.unchanged) == (1, 1, 2)
        assert s.query(Appointment).count() == 4
        trail = {e.detail for e in audit.query(s, clinics=[scheduled.north],
                                                action="schedule")}
        assert trail == {"time zone UTC -> America/Chicago",
                         "schedule imported: 3 new, 0 updated, 0 unchanged",
                         "schedule imported: 0 new, 0 updated, 3 unchanged",
                         "schedule imported: 1 new, 1 updated, 2 unchanged"}


def test_a_bad_file_reports_every_bad_row_and_imports_nothing(scheduled: World) -> None:
    bad = (GOOD.replace("exam-2,", "south-1,")  # another clinic's room (line 4)
           + f"exam-1,{DAY} 25:00,20,Bo Day,1990-01-01,A-2,\n"  # line 5: no such time
           + f"exam-1,{DAY} 11:00,20,,1990-01-01,A-3,\n"  # line 6: no name
           + f"exam-1,{DAY} 11:30,20,Kid Future,2999-01-01,A-4,\n")  # line 7
    with scheduled.db.session() as s:
        with pytest.raises(InvalidInput) as err:
            schedule.import_schedule(s, scheduled.north, bad.replace("chest", "x"), now=NOW)
        problems = err.value.extra["problems"]
        assert [p.split(":")[0] for p in problems] == ["line 4", "line 5", "line 6", "line 7"]
        assert "'south-1' is not a room of this clinic" in problems[0]
        assert "name is empty" in problems[2] and "in the future" in problems[3]
        assert "nothing was imported" in err.value.message
    with scheduled.db.session() as s:  # the good rows were not touched either
        assert s.query(Appointment).count() == 3
        assert s.scalars(select(Appointment.reason).where(
            Appointment.patient_mrn == "A-1001")).one() == "chest tightness"


def test_parse_checks_header_duplicates_and_clock_changes() -> None:
    rooms, today = {"exam-1"}, date(2026, 3, 2)
    with pytest.raises(InvalidInput, match="missing mrn"):
        schedule.parse_schedule("room,start,name,dob\n", rooms=rooms, zone=CHICAGO, today=today)
    twice = "room,start,name,dob,mrn\nexam-1,2026-03-02 09:00,A,1990-01-01,M1\n" * 1
    twice += "exam-1,2026-03-02 09:00,A again,1990-01-01,M1\n"
    with pytest.raises(InvalidInput, match="line 3: the same room, start and mrn as line 2"):
        schedule.parse_schedule(twice, rooms=rooms, zone=CHICAGO, today=today)
    gap = "room,start,name,dob,mrn\nexam-1,2026-03-08 02:30,A,1990-01-01,M1\n"
    with pytest.raises(InvalidInput, match="does not exist in America/Chicago"):
        schedule.parse_schedule(gap, rooms=rooms, zone=CHICAGO, today=today)
    [row] = schedule.parse_schedule("\ufeffRoom,Start,Name,DOB,MRN\r\n"
                                    "exam-1,2026-07-01 09:00,A,1990-01-01,M1\r\n",
                                    rooms=rooms, zone=CHICAGO, today=today)
    assert row.starts_at == datetime(2026, 7, 1, 14, 0, tzinfo=UTC)  # CDT in summer
    assert (row.duration_min, row.reason) == (20, "")


# --- matching at intake ---------------------------------------------------------------------

def test_visit_in_the_window_gets_the_nearest_appointments_patient(scheduled: World) -> None:
    item = visit(scheduled.db, "exam-1", local(9, 24))  # 24 min after 9:00, 6 before 9:30
    assert (item.patient_name, item.patient_mrn, item.patient_source) == (
        "Chen, Wei", "A-1002", "schedule")
    assert item.appointment_at == datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
    assert "patient from schedule" in intake_detail(scheduled.db, item.id)
    early = visit(scheduled.db, "exam-1", local(8, 46))  # 14 min early for 9:00
    assert (early.patient_mrn, early.visit_reason) == ("A-1001", "chest tightness")
    late = visit(scheduled.db, "exam-2", local(10, 0))  # 9:00 + 30 min + 30 min
    assert late.patient_mrn == "A-1003"


def test_other_room_outside_the_window_or_a_tie_stays_unlinked(scheduled: World) -> None:
    with scheduled.db.session() as s:
        s.add(Appointment(clinic_id=scheduled.north, room_id="exam-2",
                          starts_at=local(9, 20).astimezone(UTC), duration_min=20,
                          patient_name="Tie Break", patient_dob="1990-01-01",
                          patient_mrn="A-9", reason=""))
        registry.create_room(s, scheduled.north, "Exam 3", "exam-3")
        s.add(Device(id="dev-exam-3", room_id="exam-3"))
    cases = [("exam-1", local(8, 44)),  # 16 min early
             ("exam-1", local(10, 21)),  # 9:30 + 20 + 30 = 10:20
             ("exam-2", local(9, 10)),  # 9:00 and 9:20 equally near: nobody can tell
             ("exam-3", local(9, 30)),  # exam-1 has a 9:30; exam-3 has none
             ]
    for room, started in cases:
        item = visit(scheduled.db, room, started)
        assert patient_of(item) is None and item.patient_source == "", (room, started)
        assert "patient not linked" in intake_detail(scheduled.db, item.id)
    with scheduled.db.session() as s:
        assert s.query(ReviewItem).filter(ReviewItem.patient_mrn != "").count() == 0


def test_unknown_device_clock_uses_the_time_of_intake(scheduled: World) -> None:
    item = visit(scheduled.db, "exam-1", None, now=local(9, 5).astimezone(UTC))
    assert item.patient_mrn == "A-1001"


# --- the API --------------------------------------------------------------------------------

def _csv(c: UserClient, clinic: str, body: str):  # type: ignore[no-untyped-def]
    return c.post(f"/api/v1/admin/clinics/{clinic}/schedule", content=body.encode(),
                  headers={"Content-Type": "text/csv"})


def test_only_the_clinics_admin_imports_and_admins_see_no_appointments(
        server: ServerThread, world: World) -> None:
    for username in ("alice", "dr_north"):
        r = _csv(UserClient(server.http_url, username), world.north, GOOD)
        assert r.status_code == 403, (username, r.text)
    admin = UserClient(server.http_url, "admin_north")
    assert _csv(admin, world.south, GOOD).status_code == 403  # another clinic's admin
    r = _csv(admin, world.north, GOOD)
    assert r.status_code == 200, r.text
    assert r.json() == {"clinic_id": world.north, "imported": 3, "updated": 0, "unchanged": 0}
    assert _csv(admin, world.north, GOOD).json()["unchanged"] == 3
    r = _csv(admin, world.north, GOOD + "nowhere,2026-03-02 09:00,20,X,1990-01-01,M,\n")
    assert r.status_code == 422
    assert r.json()["problems"] == ["line 5: room 'nowhere' is not a room of this clinic"]
    _, item = add_encounter(world.db, "exam-1")
    r = admin.get(f"/api/v1/review/items/{item}/appointments")
    assert r.status_code == 403
    assert UserClient(server.http_url, "dr_south").get(
        f"/api/v1/review/items/{item}/appointments").status_code == 404
    with world.db.session() as s:
        assert s.query(Appointment).count() == 3


def test_timezone_endpoint(server: ServerThread, world: World) -> None:
    admin = UserClient(server.http_url, "admin_north")
    path = f"/api/v1/admin/clinics/{world.north}/timezone"
    assert admin.get(path).json() == {"clinic_id": world.north, "timezone": "UTC"}
    r = admin.put(path, json={"timezone": "America/Chicago"})
    assert r.status_code == 200 and r.json()["timezone"] == "America/Chicago"
    r = admin.put(path, json={"timezone": "Mars/Olympus"})
    assert r.status_code == 422 and "unknown time zone 'Mars/Olympus'" in r.json()["detail"]
    assert admin.put(f"/api/v1/admin/clinics/{world.south}/timezone",
                     json={"timezone": "UTC"}).status_code == 403
    assert UserClient(server.http_url, "dr_north").put(
        path, json={"timezone": "UTC"}).status_code == 403
    with world.db.session() as s:
        clinic = s.get(Clinic, world.north)
        assert clinic is not None and clinic.timezone == "America/Chicago"


def test_reviewer_picks_the_patient_then_signing_fixes_it(server: ServerThread,
                                                           world: World) -> None:
    with world.db.session() as s:
        schedule.set_timezone(s, world.north, "America/Chicago")
        schedule.import_schedule(s, world.north, GOOD.replace(DAY, "2030-01-02"))
    day = datetime(2030, 1, 2, 10, 0, tzinfo=CHICAGO)
    item = visit(world.db, "exam-1", day + timedelta(hours=5), now=day.astimezone(UTC))
    assert patient_of(item) is None  # 15:00: long after every slot
    base = f"/api/v1/review/items/{item.id}"
    alice = UserClient(server.http_url, "alice")
    slots = alice.get(f"{base}/appointments").json()
    assert [(a["local_start"], a["mrn"], a["linked"]) for a in slots] == [
        ("2030-01-02 09:00", "A-1001", False), ("2030-01-02 09:30", "A-1002", False)]
    r = alice.put(f"{base}/patient", json={"appointment_id": slots[1]["id"]})
    assert r.status_code == 409 and "claim the draft" in r.json()["detail"]
    assert alice.post(f"{base}/claim").status_code == 200
    hub = hub_of(server.services)
    published = hub.published
    r = alice.put(f"{base}/patient", json={"appointment_id": slots[1]["id"]})
    assert r.status_code == 200, r.text
    patient = r.json()["patient"]
    assert (patient["name"], patient["mrn"], patient["dob"], patient["source"]) == (
        "Chen, Wei", "A-1002", "1987-11-30", "reviewer")
    assert hub.published == published + 1  # open pages hear of it
    assert alice.get(f"{base}/appointments").json()[1]["linked"] is True
    assert alice.put(f"{base}/patient", json={"appointment_id": 1, "mrn": "x"}
                     ).status_code == 422
    doc = UserClient(server.http_url, "dr_north")
    r = doc.put(f"{base}/patient", json={"name": "Wei Chen", "dob": "2999-01-01", "mrn": "B7"})
    assert r.status_code == 422 and "in the future" in r.json()["detail"]
    r = doc.put(f"{base}/patient", json={"name": "Wei Chen", "dob": "1987-11-30", "mrn": "B7"})
    assert r.status_code == 200 and r.json()["patient"]["mrn"] == "B7"
    assert r.json()["patient"]["appointment_at"] is None
    queue = doc.get("/api/v1/review/queue").json()
    assert [(q["patient_name"], q["patient_mrn"]) for q in queue] == [("Wei Chen", "B7")]

    assert alice.post(f"{base}/send").status_code == 200
    assert doc.put(f"{base}/note", json={"base_version": 1, "orders": [
        {"id": o, "decision": "accepted"} for o in ("o1", "o2", "o3")]}).status_code == 200
    r = doc.post(f"{base}/sign", json={"attest": True})
    assert r.status_code == 200 and r.json()["state"] == "signed", r.text
    r = doc.put(f"{base}/patient", json={"appointment_id": slots[0]["id"]})
    assert r.status_code == 409
    assert r.json()["detail"].startswith("the note is signed: its patient cannot be changed")
    with world.db.session() as s:
        trail = audit.query(s, item_id=item.id)
        assert [(e.actor, e.detail) for e in trail if e.action == "patient"] == [
            ("dr_north", "patient MRN A-1002 -> B7: entered by hand"),
            ("alice", "patient MRN (none) -> A-1002: appointment "
                      f"{slots[1]['id']} (exam-1 2030-01-02 15:30 UTC)")]
        assert [e.actor for e in trail if e.action == "view_schedule"] == ["alice", "alice"]


def test_partner_holding_no_claim_and_other_holders_are_refused(world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    assert item is not None
    with world.db.session() as s:
        alice = load_principal(s, directory.get_user(s, "alice"), "t")
        bob = load_principal(s, directory.get_user(s, "bob"), "t")
        workflow.act(s, alice, item, Action.CLAIM, NOW)
        with pytest.raises(ClaimHeld, match="only they can change its patient"):
            set_patient(s, bob, item, NOW, name="A", dob="1990-01-01", mrn="M")
        got, change = set_patient(s, alice, item, NOW, name="A B", dob="1990-01-01", mrn="M")
        assert got.patient_source == "reviewer" and change.action == "patient"


# --- the queue, the item, the visit ---------------------------------------------------------

def test_queue_entries_carry_patient_visit_length_and_complaint(scheduled: World) -> None:
    item = visit(scheduled.db, "exam-1", local(9, 1), ended=local(9, 13), seconds=2)
    plain = visit(scheduled.db, "exam-1", None, seconds=2, now=NOW + timedelta(days=3))
    with scheduled.db.session() as s:
        doc = load_principal(s, directory.get_user(s, "dr_north"), "t")
        entries = {e.item_id: e for e in list_queue(s, doc, NOW)}
        e = entries[item.id]
        assert (e.patient_name, e.patient_dob, e.patient_mrn, e.visit_reason) == (
            "Maria Lopez", "1961-04-12", "A-1001", "chest tightness")
        assert e.appointment_at == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
        assert e.visit_seconds == pytest.approx(12 * 60)
        assert e.chief_complaint == "Chest tightness on exertion."
        p = entries[plain.id]
        assert (p.patient_name, p.visit_seconds) == ("", pytest.approx(2.0))
        row = s.get(ReviewItem, plain.id)
        assert row is not None and visit_seconds(s, row) == pytest.approx(2.0)


def test_pure_helpers() -> None:
    doc = {"sections": [{"key": "chief_complaint", "text": "Knee pain. Worse on stairs."}]}
    assert chief_complaint(doc, "x") == "Knee pain."
    assert chief_complaint({"sections": [{"key": "chief_complaint", "text": " "}]}, "booked"
                           ) == "booked"
    assert chief_complaint(None) == ""
    enc = Encounter(id="e", device_id="d", room_id="r", started_at_us=1_000_000,
                    ended_at_us=61_000_000, audio_bytes=32000)
    assert encounter_seconds(enc) == 60.0
    enc.ended_at_us = None
    assert encounter_seconds(enc) == 1.0
    assert schedule.local_day(datetime(2026, 3, 2, 3, 0, tzinfo=UTC), CHICAGO) == (
        datetime(2026, 3, 1, 6, 0, tzinfo=UTC), datetime(2026, 3, 2, 6, 0, tzinfo=UTC))


# --- the CLI and the migration --------------------------------------------------------------

def test_cli_imports_a_schedule(settings: Settings, world: World, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "day.csv"
    path.write_text(GOOD)
    assert review(["schedule-import", str(path), "--clinic", world.north], settings) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["imported"], out["updated"], out["unchanged"]) == (3, 0, 0)
    path.write_text(GOOD + "exam-9,2026-03-02 09:00,20,X,1990-01-01,M,\n")
    assert review(["schedule-import", str(path), "--clinic", world.north], settings) == 1
    err = capsys.readouterr().err
    assert "refused, nothing was changed" in err and "line 5: room 'exam-9'" in err


def test_migrations_match_the_models(world: World) -> None:
    """Upgrading to head gives exactly the tables and columns the models declare."""
    with world.db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []
