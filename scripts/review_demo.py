"""A review queue to click through: one clinic, its users, and a visit waiting for review.

    .venv/bin/python scripts/review_demo.py [--draft DRAFT.json] [--serve]

Builds ``var/review-demo`` (SQLite): "Demo Clinic" with room exam-1 and its
device, a physician (dr_demo), a partner (pat) in the "General" pool that the
routing rule fills, and an IT admin (it_admin), each with a printed random
password. Then one visit: an ACI-BENCH dialogue (CC BY 4.0) spoken by two
espeak-ng voices and stored as the encounter's audio, its turns (with their
times) as the transcript, and a draft in the queue. The draft is ``--draft``
(a DraftNote JSON, e.g. from ``roomscribe nlp draft``) when given; otherwise
the dataset's reference note stands in for the NLP draft (sentences linked to
the turns they share most words with; orders from ``nlp.orders`` when that
module is installed). ``--serve`` then runs the server on 127.0.0.1:8000.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import uuid
import wave
from pathlib import Path

from nlp.schema import (
    DraftNote,
    Evidence,
    NoteSection,
    NoteSentence,
    OrderIntent,
    SectionKey,
    Transcript,
    TranscriptSegment,
)
from server import registry
from server.db import Database
from server.lab.speech import Turn, read_aci_dialogue, synthesize_dialogue
from server.migrate import upgrade
from server.models import AudioFrameRow, Device, Encounter, EncounterStatus
from server.review import directory
from server.review.intake import receive_draft
from server.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FRAME = 3200  # 100 ms of 16 kHz mono s16le
HEADINGS = {"CHIEF COMPLAINT": SectionKey.CHIEF_COMPLAINT,
            "HISTORY OF PRESENT ILLNESS": SectionKey.HPI,
            "REVIEW OF SYSTEMS": SectionKey.ROS, "PHYSICAL EXAMINATION": SectionKey.PHYSICAL_EXAM,
            "PHYSICAL EXAM": SectionKey.PHYSICAL_EXAM, "RESULTS": SectionKey.RESULTS,
            "ASSESSMENT AND PLAN": SectionKey.ASSESSMENT, "ASSESSMENT": SectionKey.ASSESSMENT,
            "PLAN": SectionKey.PLAN, "MEDICATIONS": SectionKey.MEDICATIONS,
            "PAST HISTORY": SectionKey.PAST_MEDICAL_HISTORY,
            "SOCIAL HISTORY": SectionKey.SOCIAL_HISTORY}


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 3}


def reference_draft(encounter_id: str, note: str, transcript: Transcript) -> DraftNote:
    """The dataset's reference note as a stand-in draft, with word-overlap evidence."""
    sections: list[NoteSection] = []
    key, title, lines = None, "", []  # type: ignore[var-annotated]
    for line in [*note.splitlines(), "END"]:
        heading = line.strip().rstrip(":").upper()
        if heading in HEADINGS or heading == "END":
            if key is not None and " ".join(lines).strip():
                sentences = []
                for sent in re.split(r"(?<=[.!?])\s+", " ".join(lines).strip()):
                    best = max(transcript.segments,
                               key=lambda s, sent=sent: len(_words(s.text) & _words(sent)))
                    ev = (Evidence((best.id,), best.start_s, best.end_s, best.text[:200]),) \
                        if len(_words(best.text) & _words(sent)) >= 2 else ()
                    sentences.append(NoteSentence(sent, ev))
                sections.append(NoteSection(key, title, tuple(sentences)))
            if heading != "END":
                key, title, lines = HEADINGS[heading], heading, []
        elif key is not None and line.strip():
            lines.append(line.strip())
    orders: tuple[OrderIntent, ...] = ()
    try:  # the NLP stage's order extraction, when it is installed
        from nlp.dialogue import transcript_sentences  # type: ignore[import-not-found]
        from nlp.orders import extract_orders  # type: ignore[import-not-found]

        orders = tuple(extract_orders(transcript_sentences(transcript)))
    except ImportError:
        pass
    return DraftNote(encounter_id, "aci", tuple(sections), orders,
                     {"source": "aci-bench reference note (stand-in for the NLP draft)"})


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=ROOT / "var" / "review-demo")
    p.add_argument("--seconds", type=float, default=180.0, help="length of the visit's audio")
    p.add_argument("--row", type=int, default=0, help="which ACI-BENCH valid.csv visit")
    p.add_argument("--draft", type=Path, help="a DraftNote JSON to queue instead")
    p.add_argument("--serve", action="store_true", help="then run the server on :8000")
    args = p.parse_args()

    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    settings = Settings(data_dir=args.workdir, database_url="")
    args.workdir.mkdir(parents=True)
    db = Database(settings.resolved_database_url)
    upgrade(db)
    passwords = {u: secrets.token_urlsafe(9) for u in ("dr_demo", "pat", "it_admin")}
    with db.session() as s:
        registry.create_clinic(s, "Demo Clinic")
        registry.create_room(s, "demo-clinic", "Exam 1", "exam-1")
        s.add(Device(id="dev-demo", room_id="exam-1", name="Exam 1 Pi"))
        for user, role, name in (("dr_demo", "physician", "Dr Demo"),
                                 ("pat", "partner", "Pat Partner"),
                                 ("it_admin", "admin", "IT Admin")):
            directory.add_user(s, user, passwords[user], "demo-clinic", role, name)
        directory.assign_room_physician(s, "exam-1", "dr_demo")
        pool = directory.add_pool(s, "demo-clinic", "General", turnaround_h=8, lease_min=30)
        directory.add_pool_member(s, pool.id, "pat")
        directory.add_routing_rule(s, pool.id)

    source = DATA / "aci-bench" / "valid.csv"
    turns: list[Turn] = read_aci_dialogue(source, row=args.row)
    wav_path = args.workdir / "visit.wav"
    print(f"speaking an ACI-BENCH visit ({source.name} row {args.row}, CC BY 4.0) ...")
    turns = synthesize_dialogue(turns, wav_path, max_seconds=args.seconds)
    with wave.open(str(wav_path)) as wav:
        pcm = wav.readframes(wav.getnframes())
    enc_id = str(uuid.uuid4())
    transcript = Transcript(enc_id, tuple(
        TranscriptSegment(i, t.start_s, t.end_s, t.text, t.speaker)
        for i, t in enumerate(turns)), engine="dialogue-script")
    with db.session() as s:
        frames = [pcm[i:i + FRAME] for i in range(0, len(pcm), FRAME)]
        s.add(Encounter(id=enc_id, device_id="dev-demo", room_id="exam-1",
                        status=EncounterStatus.AUDIO_COMPLETE, next_seq=len(frames),
                        last_seq=len(frames) - 1, audio_bytes=len(pcm)))
        s.flush()
        s.add_all(AudioFrameRow(encounter_id=enc_id, seq=i, captured_at_us=i * 100_000, pcm=f)
                  for i, f in enumerate(frames))
    if args.draft:
        draft = DraftNote.from_dict(json.loads(args.draft.read_text()))
    else:
        with source.open(newline="") as f:
            note = list(csv.DictReader(f))[args.row]["note"]
        draft = reference_draft(enc_id, note, transcript)
    with db.session() as s:
        item = receive_draft(s, enc_id, draft, transcript)
        print(f"queued draft {item.id}: {len(draft.sections)} sections, "
              f"{len(draft.orders)} orders, {len(pcm) / 32000:.0f} s of audio")
    db.dispose()

    print("\nusers (passwords shown once):")
    for user, pw in passwords.items():
        print(f"  {user:9} {pw}")
    print(f"\nserve it:  ROOMSCRIBE_DATA_DIR={args.workdir} .venv/bin/roomscribe serve"
          "\nthen open http://127.0.0.1:8000/ and log in as pat (partner), then dr_demo"
          " (it_admin sees the rooms page and the audit log).")
    if args.serve:
        return subprocess.call([sys.executable, "-m", "server.cli", "serve", "--port", "8000"],
                               env={**os.environ, "ROOMSCRIBE_DATA_DIR": str(args.workdir)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
