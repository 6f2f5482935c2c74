"""The consent panel of the review page and the held visits of the queue page, over plain
HTTP (tests/web/test_consent_browser.py clicks them): who sees which buttons, what the
panel says in each state, user text escaped, and the held list audited."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from server.models import Clinic, Encounter, EncounterStatus, utcnow
from server.review.models import Appointment, AuditEvent
from tests.review.world import UserClient, World, add_encounter
from tests.support import ServerThread


def _panel(page: str) -> str:
    match = re.search(r'<section class="consent.*?</section>', page, re.S)
    assert match, "no consent panel"
    return match[0]


def test_the_panel_says_the_state_and_only_physicians_get_buttons(
        server: ServerThread, world: World) -> None:
    enc, item = add_encounter(world.db, "exam-1")
    physician = UserClient(server.http_url, "dr_north")
    panel = _panel(physician.get(f"/items/{item}").text)
    assert "no consent recorded" in panel and "This clinic requires it" in panel
    assert 'data-consent="verbal"' in panel and 'data-consent="written"' in panel
    assert "data-withdraw" in panel and f'data-encounter="{enc}"' in panel
    assert 'value="Dr North"' in panel  # who obtained it: the physician, unless changed
    page = physician.get(f"/items/{item}").text
    assert 'id="withdraw-dialog"' in page and "deleted now" in page
    # a partner sees the state, never the buttons
    partner = UserClient(server.http_url, "alice").get(f"/items/{item}").text
    assert "no consent recorded" in _panel(partner)
    assert "data-consent=" not in partner and "data-withdraw" not in partner
    assert 'id="withdraw-dialog"' not in partner

    hostile = 'Nurse <img src=x onerror="alert(1)">'
    r = physician.post(f"/api/v1/encounters/{enc}/consent",
                       json={"method": "written", "obtained_by": hostile})
    assert r.status_code == 200, r.text
    panel = _panel(physician.get(f"/items/{item}").text)
    assert "consent written" in panel and "recorded in RoomScribe" in panel
    assert "<img" not in panel and "Nurse &lt;img src=x" in panel
    assert 'data-consent="verbal"' not in panel and "data-withdraw" in panel


def test_a_clinic_without_required_consent_says_so(server: ServerThread, world: World) -> None:
    with world.db.session() as s:
        clinic = s.get(Clinic, "north-clinic")
        assert clinic is not None
        clinic.consent_required = False
    _, item = add_encounter(world.db, "exam-1")
    panel = _panel(UserClient(server.http_url, "dr_north").get(f"/items/{item}").text)
    assert "This clinic does not require it." in panel


def _held_visit(world: World) -> str:
    enc, _ = add_encounter(world.db, "exam-1", seconds=3, draft=False)
    with world.db.session() as s:
        row = s.get(Encounter, enc)
        assert row is not None
        row.status, row.ended_at_us, row.last_seq = EncounterStatus.RECORDING, None, None
        row.started_at_us = int(utcnow().timestamp() * 1e6)
        s.add(Appointment(clinic_id="north-clinic", room_id="exam-1",
                          starts_at=utcnow() - timedelta(minutes=3), duration_min=20,
                          patient_name="Maria <Lopez>", patient_dob="1961-04-02",
                          patient_mrn="MRN-0042"))
    return enc


def test_physicians_see_visits_waiting_for_consent_audited(server: ServerThread,
                                                           world: World) -> None:
    enc = _held_visit(world)
    page = UserClient(server.http_url, "dr_north").get("/queue").text
    assert "Waiting for the patient's consent" in page
    row = re.search(rf'<tr data-held="{enc}".*?</tr>', page, re.S)
    assert row, "the held visit is listed"
    assert "Maria &lt;Lopez&gt;" in row[0] and "MRN-0042" in row[0]
    assert "still recording" in row[0] and "3 s" in row[0]
    assert 'data-consent="verbal"' in row[0] and "data-withdraw" in row[0]
    with world.db.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "view_schedule")).all()
        assert [(e.actor, e.detail) for e in events] == [
            ("dr_north", "visits waiting for consent (1, web)")]
    # partners were not in the room: no list; another clinic's physician: not theirs
    assert "data-held" not in UserClient(server.http_url, "alice").get("/queue").text
    assert "data-held" not in UserClient(server.http_url, "dr_south").get("/queue").text
    # once consent is recorded the visit leaves the list
    r = UserClient(server.http_url, "dr_north").post(f"/api/v1/encounters/{enc}/consent",
                                                     json={"method": "verbal"})
    assert r.status_code == 200
    assert "data-held" not in UserClient(server.http_url, "dr_north").get("/queue").text
