"""The privacy API on a running server: who may record or withdraw consent, delete on
request, set a legal hold and change a clinic's policy."""

from __future__ import annotations

from sqlalchemy import func, select

from server.db import Database
from server.models import AudioFrameRow, Encounter
from server.review.models import AuditEvent, ReviewItem
from tests.review.world import UserClient, World, add_encounter
from tests.support import ServerThread


def _frames(db: Database, enc: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(AudioFrameRow)
                        .where(AudioFrameRow.encounter_id == enc)) or 0


def test_consent_by_a_physician_of_the_clinic_only(server: ServerThread, db: Database,
                                                   world: World) -> None:
    enc, _ = add_encounter(db, "exam-1", 1.0, draft=False)
    url = f"/api/v1/encounters/{enc}/consent"
    for user, status in (("alice", 403), ("admin_north", 403), ("dr_south", 404)):
        client = UserClient(server.http_url, user)
        assert client.post(url, json={"method": "verbal"}).status_code == status, user
        client.close()
    doc = UserClient(server.http_url, "dr_other")  # any physician of the clinic
    assert doc.post(url, json={"method": "nodded"}).status_code == 422
    r = doc.post(url, json={"method": "written"})
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["method"], r.json()["obtained_by"],
            r.json()["source"]) == ("given", "written", "Dr Other", "api")
    assert doc.get(url).json()["state"] == "given"
    doc.close()
    admin = UserClient(server.http_url, "admin_north")  # may look, not record
    assert admin.get(url).json()["state"] == "given"
    admin.close()
    with db.session() as s:
        row = s.scalars(select(AuditEvent).where(AuditEvent.action == "consent")).one()
        assert (row.encounter_id, row.actor, row.clinic_id) == (enc, "dr_other",
                                                                 "north-clinic")


def test_withdrawal_deletes_audio_transcript_and_draft(server: ServerThread, db: Database,
                                                       world: World) -> None:
    enc, item_id = add_encounter(db, "exam-1", 1.0)
    doc = UserClient(server.http_url, "dr_north")
    r = doc.post(f"/api/v1/encounters/{enc}/consent/withdraw", json={"reason": "asked"})
    doc.close()
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["consent"], body["device_told"], body["deleted"]["audio_frames"],
            body["deleted"]["note_versions"]) == ("withdrawn", False, 10, 1)
    assert _frames(db, enc) == 0
    with db.session() as s:
        assert s.get(ReviewItem, item_id) is None
        assert s.get(Encounter, enc).consent_state == "withdrawn"  # type: ignore[union-attr]
        audit = s.scalars(select(AuditEvent)
                          .where(AuditEvent.action == "consent_withdrawn")).one()
        assert audit.encounter_id == enc and "asked" in audit.detail


def test_deletion_on_request_and_legal_hold(server: ServerThread, db: Database,
                                            world: World) -> None:
    enc, _ = add_encounter(db, "exam-1", 1.0)
    url = f"/api/v1/encounters/{enc}/deletion"
    other = UserClient(server.http_url, "dr_other")  # not the room's physician
    assert other.post(url, json={"reason": "patient asked"}).status_code == 403
    other.close()
    partner = UserClient(server.http_url, "alice")
    assert partner.post(url, json={"reason": "patient asked"}).status_code == 404
    assert partner.put(f"/api/v1/encounters/{enc}/legal-hold",
                       json={"hold": True, "reason": "x"}).status_code == 403
    partner.close()
    admin = UserClient(server.http_url, "admin_north")
    r = admin.put(f"/api/v1/encounters/{enc}/legal-hold",
                  json={"hold": True, "reason": "claim 17"})
    assert r.status_code == 200 and r.json()["legal_hold"] is True
    doc = UserClient(server.http_url, "dr_north")
    r = doc.post(url, json={"reason": "patient asked"})
    assert r.status_code == 409 and "legal hold" in r.text
    assert _frames(db, enc) == 10
    assert admin.put(f"/api/v1/encounters/{enc}/legal-hold",
                     json={"hold": False}).status_code == 200
    r = doc.post(url, json={"reason": "patient asked"})
    assert r.status_code == 200, r.text
    assert r.json()["deleted"]["audio_frames"] == 10 and _frames(db, enc) == 0
    doc.close()
    admin.close()


def test_clinic_policy_by_its_admin(server: ServerThread, world: World) -> None:
    admin = UserClient(server.http_url, "admin_north")
    url = "/api/v1/admin/clinics/north-clinic/privacy"
    assert admin.get(url).json() == {"consent_required": True, "audio_retention_days": 30,
                                     "transcript_retention_days": None}
    new = {"consent_required": False, "audio_retention_days": 7,
           "transcript_retention_days": 365}
    assert admin.put(url, json=new).json() == new
    assert admin.get("/api/v1/admin/clinics/south-clinic/privacy").status_code == 404
    r = admin.post("/api/v1/admin/retention/run", json={"dry_run": True})
    assert r.status_code == 200 and r.json() == {"dry_run": True, "deleted": []}
    admin.close()
    doc = UserClient(server.http_url, "dr_north")
    assert doc.get(url).status_code == 403
    doc.close()
