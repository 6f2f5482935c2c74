"""The main job end to end, as a clinic runs it: device agent → server → transcription →
NLP draft → review queue → partner edits → physician signs → FHIR.

Real processes on loopback (`roomscribe serve`, `roomscribe-device run`), the real
whisper engine and the real NLP models built by `roomscribe models build`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.lab.processes import RoomLab
from server.lab.speech import Turn, synthesize_dialogue
from server.settings import Settings
from tests.support import TEST_DATABASE_URL, reset_database

pytestmark = pytest.mark.slow

VISIT = [
    Turn("doctor", "Good morning. What brings you in today?"),
    Turn("patient", "I have had a cough for two weeks, and a fever since Sunday."),
    Turn("doctor", "Any chest pain or shortness of breath?"),
    Turn("patient", "No chest pain. I get a little short of breath on the stairs."),
    Turn("doctor", "Your lungs sound crackly on the right side, and your temperature is "
                   "one hundred point four."),
    Turn("doctor", "I think this is a pneumonia. I'm going to order a chest x-ray, and we "
                   "will get a CBC."),
    Turn("doctor", "Let's start amoxicillin 500 milligrams three times a day for ten days."),
    Turn("doctor", "I want you to come back in two weeks."),
    Turn("patient", "Okay, thank you doctor."),
]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[RoomLab]:
    models = Settings().models_dir.resolve()
    if not (models / "nlp").is_dir():
        pytest.fail(f"NLP models missing in {models}: run `roomscribe models build` "
                    "(make setup does)")
    if TEST_DATABASE_URL:
        reset_database(TEST_DATABASE_URL)
    room_lab = RoomLab(tmp_path / "lab", database_url=TEST_DATABASE_URL,
                       extra_env={"ROOMSCRIBE_ASR_ENGINE": "whisper",
                                  "ROOMSCRIBE_MODELS_DIR": str(models)})
    room_lab.start_server(timeout=180)
    yield room_lab
    room_lab.close()


def test_a_spoken_visit_becomes_a_signed_note_with_orders(lab: RoomLab, tmp_path: Path) -> None:
    wav = tmp_path / "visit.wav"
    synthesize_dialogue(VISIT, wav)
    clinic = lab.roomscribe("admin", "clinic", "add", "E2E Clinic")["id"]
    room = lab.add_room("exam-e2e", clinic="E2E Clinic")
    team = lab.add_care_team(clinic, room.room_id)
    assert lab.start_agent(room, wav, speed=0).wait(timeout=120) == 0
    encounter_id = lab.encounters(room.room_id)[0]["id"]

    # The physician records the patient's verbal consent, as the web UI does, within the
    # grace period; without it the audio is held and nothing is transcribed or drafted.
    consent = lab.post(f"/api/v1/encounters/{encounter_id}/consent", {"method": "verbal"},
                       team["physician"]["token"])
    assert (consent["state"], consent["obtained_by"]) == ("given", "Dr. Demo")

    # The draft reaches the partner's pool with sections and the spoken orders.
    partner = team["partner"]["token"]
    item = lab.wait_for_draft(partner, encounter_id, timeout=300)
    assert item is not None, f"no draft in the queue; see {lab.server_log}"
    document = item["document"]
    sections = {s["key"]: s for s in document["sections"] if s["text"]}
    assert len(sections) >= 2, document["sections"]
    for section in sections.values():
        for sentence in section["sentences"]:
            assert sentence["evidence"], f"unsupported sentence: {sentence['text']}"
    orders = document["orders"]
    kinds = {o["kind"] for o in orders}
    assert {"imaging", "lab", "follow_up"} <= kinds, orders
    names = {o["name"].lower() for o in orders}
    assert any("x-ray" in n or "xray" in n for n in names), names
    assert "cbc" in names, names
    assert all(o["evidence"] for o in orders)

    # Partner: claim, edit a section, accept every order, send for signature.
    item_id = item["id"]
    lab.post(f"/api/v1/review/items/{item_id}/claim", {}, partner)
    first = next(iter(sections))
    edited = lab.post(f"/api/v1/review/items/{item_id}/note", {
        "base_version": item["version"],
        "sections": {first: sections[first]["text"] + " Reviewed with the patient."},
        "orders": [{"id": o["id"], "decision": "accepted"} for o in orders],
    }, partner, method="PUT")
    lab.post(f"/api/v1/review/items/{item_id}/send", {}, partner)

    # Physician: sign; the note leaves the queue and leaves as FHIR.
    physician = team["physician"]["token"]
    review = lab.api(f"/api/v1/review/items/{item_id}/sign-review", token=physician)
    acknowledge = [c["id"] for c in review["checks"]
                   if c["severity"] == "blocker" and c["acknowledgeable"]]
    signed = lab.post(f"/api/v1/review/items/{item_id}/sign",
                      {"attest": True, "acknowledged": acknowledge}, physician)
    assert signed["state"] == "signed" and signed["version"] == edited["version"]
    queue = lab.api("/api/v1/review/queue", token=physician)
    assert item_id not in {e["item_id"] for e in queue}
    bundle = lab.api(f"/api/v1/review/items/{item_id}/fhir", token=physician)
    resources = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "Composition" in resources
    assert "ServiceRequest" in resources
