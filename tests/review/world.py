"""A small clinic world for review tests: two clinics, rooms, users, pools, drafts.

North Clinic: rooms exam-1 (owned by dr_north) and exam-2 (dr_other); partners
alice and bob in pool north-general, carol a partner outside it; admin_north.
South Clinic: room south-1 (dr_south), partner dave in pool south-general.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import httpx

from nlp.schema import (
    DraftNote,
    Evidence,
    NoteSection,
    NoteSentence,
    OrderIntent,
    PatientInstruction,
    Transcript,
    TranscriptSegment,
)
from server import registry
from server.db import Database
from server.models import AudioFrameRow, Device, Encounter, EncounterStatus
from server.review import directory
from server.review.intake import receive_draft

PASSWORD = "correct horse 1"
FRAME_BYTES = 3200  # 100 ms


@dataclass
class World:
    db: Database
    north: str = "north-clinic"
    south: str = "south-clinic"
    encounters: list[str] = field(default_factory=list)


def build_world(db: Database) -> World:
    w = World(db)
    with db.session() as s:
        for name in ("North Clinic", "South Clinic"):
            registry.create_clinic(s, name)
        for clinic, room in (("north-clinic", "exam-1"), ("north-clinic", "exam-2"),
                             ("south-clinic", "south-1")):
            registry.create_room(s, clinic, room.replace("-", " ").title(), room)
            s.add(Device(id=f"dev-{room}", room_id=room, name=f"Pi {room}"))
        users = [("dr_north", "north-clinic", "physician"), ("dr_other", "north-clinic",
                                                             "physician"),
                 ("alice", "north-clinic", "partner"), ("bob", "north-clinic", "partner"),
                 ("carol", "north-clinic", "partner"), ("admin_north", "north-clinic", "admin"),
                 ("dr_south", "south-clinic", "physician"), ("dave", "south-clinic", "partner")]
        for username, clinic, role in users:
            directory.add_user(s, username, PASSWORD, clinic, role,
                               display_name=username.replace("_", " ").title())
        directory.assign_room_physician(s, "exam-1", "dr_north")
        directory.assign_room_physician(s, "exam-2", "dr_other")
        directory.assign_room_physician(s, "south-1", "dr_south")
        for clinic, members in (("north-clinic", ["alice", "bob"]), ("south-clinic", ["dave"])):
            pool = directory.add_pool(s, clinic, "General", turnaround_h=4, target_pct=90,
                                      lease_min=20, pool_id=f"{clinic.split('-')[0]}-general")
            for m in members:
                directory.add_pool_member(s, pool.id, m)
            directory.add_routing_rule(s, pool.id)
    return w


def make_transcript(encounter_id: str) -> Transcript:
    lines = [("doctor", "What brings you in today?"),
             ("patient", "I've had chest tightness when I climb stairs for two weeks."),
             ("doctor", "Your blood pressure is 150 over 95 today."),
             ("doctor", "Let's start lisinopril 10 milligrams once a day."),
             ("doctor", "I'll order a CBC and refer you to cardiology.")]
    return Transcript(encounter_id, tuple(
        TranscriptSegment(i, i * 2.0, i * 2.0 + 1.8, text, speaker)
        for i, (speaker, text) in enumerate(lines)), engine="fake")


def make_draft(encounter_id: str) -> DraftNote:
    def ev(*ids: int) -> tuple[Evidence, ...]:
        return (Evidence(ids, ids[0] * 2.0, ids[-1] * 2.0 + 1.8, "quote"),)

    sections = (
        NoteSection("chief_complaint", "CHIEF COMPLAINT",
                    (NoteSentence("Chest tightness on exertion.", ev(1)),)),
        NoteSection("history_of_present_illness", "HISTORY OF PRESENT ILLNESS", (
            NoteSentence("The patient reports chest tightness when climbing stairs.", ev(1)),
            NoteSentence("Symptoms started two weeks ago.", ev(1)))),
        NoteSection("assessment", "ASSESSMENT",
                    (NoteSentence("Blood pressure is elevated at 150/95.", ev(2)),)),
        NoteSection("plan", "PLAN", (
            NoteSentence("Start lisinopril 10 mg daily.", ev(3)),
            NoteSentence("CBC and cardiology referral.", ev(4)))),
        NoteSection("none", "", (NoteSentence("Hello.", ev(0)),)),
    )
    orders = (
        OrderIntent("medication", "lisinopril", dose="10", unit="mg", route="oral",
                    frequency="once a day", spoken="zestril",
                    description="zestril 10 mg once a day", reason="high blood pressure",
                    code_system="https://go.drugbank.com/drugs", code="DB00722",
                    evidence=ev(3)),
        OrderIntent("lab", "cbc", verify="the recogniser was unsure it heard 'cbc' (p=0.41)",
                    evidence=ev(4)),
        OrderIntent("referral", "cardiology", specialty="cardiology", evidence=ev(4)),
    )
    instructions = (
        PatientInstruction("medication", "Start lisinopril 10 mg once a day.", evidence=ev(3),
                           order="medication:lisinopril"),
        PatientInstruction("test", "Get a blood test: complete blood count (CBC).",
                           verify="the recogniser was unsure it heard 'cbc' (p=0.41)",
                           evidence=ev(4), order="lab:cbc"),
        PatientInstruction("referral", "See cardiology (referral).", evidence=ev(4),
                           order="referral:cardiology"),
    )
    return DraftNote(encounter_id, "soap", sections, orders, {"nlp": "test-1"}, instructions)


def add_encounter(db: Database, room_id: str, seconds: float = 0.0,
                  draft: bool = True) -> tuple[str, str | None]:
    """An encounter (with ``seconds`` of stored audio) and, if asked, its review item."""
    enc_id = str(uuid.uuid4())
    frames = int(seconds * 10)
    with db.session() as s:
        s.add(Encounter(id=enc_id, device_id=f"dev-{room_id}", room_id=room_id,
                        status=EncounterStatus.AUDIO_COMPLETE, next_seq=frames,
                        last_seq=frames - 1, audio_bytes=frames * FRAME_BYTES))
        s.flush()
        for seq in range(frames):  # frame n is filled with the byte n % 251
            s.add(AudioFrameRow(encounter_id=enc_id, seq=seq, captured_at_us=seq * 100_000,
                                pcm=bytes([seq % 251]) * FRAME_BYTES))
    if not draft:
        return enc_id, None
    with db.session() as s:
        item = receive_draft(s, enc_id, make_draft(enc_id), make_transcript(enc_id))
        return enc_id, item.id


class UserClient:
    """An httpx client logged in as one user (cookie + CSRF header), or with a token."""

    def __init__(self, base_url: str, username: str | None = None, token: str | None = None,
                 password: str = PASSWORD) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url, timeout=10, headers=headers)
        self.username = username
        if username:
            r = self.http.post("/api/v1/auth/login", json={"username": username,
                                                           "password": password})
            assert r.status_code == 200, r.text
            self.http.headers["X-CSRF-Token"] = r.json()["csrf_token"]

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.http, name)

    def close(self) -> None:
        self.http.close()
