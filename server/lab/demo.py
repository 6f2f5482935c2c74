"""``roomscribe demo``: the main job on this machine, from a room's audio to the queue.

    roomscribe demo [--once] [--visit ENCOUNTER_ID] [--speed N] [--port P] [--workdir DIR]
                    [--voices neural|espeak]

Starts ``roomscribe serve`` on SQLite (under ``var/demo``), creates a demo
clinic with a physician, a remote partner, a pool that receives the room's
drafts and a room whose device agent is enrolled with a one-time code; then
streams a visit through the real ``roomscribe-device`` agent: an ACI-BENCH
dialogue (CC BY 4.0, Yim et al. 2023) spoken by human-like neural voices
(Piper for the doctor, Kokoro for the patient; ``--voices espeak`` for the
robotic espeak-ng ones), cached after the first run. The
server transcribes it, drafts the note and its orders, and queues the draft.
Prints where the draft waits and the logins. ``--once`` prints the draft and
exits: 0 only when it reached the queue with sections and at least one order.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.lab.processes import RoomLab
from server.lab.speech import read_aci_dialogue, synthesize_dialogue
from server.lab.voices import VOICE_SETS, voice_set
from server.settings import Settings

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
#: A short ACI-BENCH validation visit (knee sprain, 49 turns, about 4 minutes spoken): a
#: knee brace, crutches, motrin 800 mg every 6 hours, a follow-up in a week, and an MRI
#: only "if it's not better" (conditional: not an order). Its turns alternate cleanly; in
#: D2N085, the demo visit until 2026-12-03, the patient's words sit inside the doctor's
#: turns, so the doctor's voice said them.
DEFAULT_VISIT = "D2N069"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="roomscribe demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--once", action="store_true", help="run through, print the draft, exit")
    p.add_argument("--visit", default=DEFAULT_VISIT, help="ACI-BENCH valid encounter id")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared datasets folder")
    p.add_argument("--speed", type=float, default=4.0, help="agent speed (1 = real time)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workdir", type=Path, default=ROOT / "var" / "demo")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the draft")
    p.add_argument("--voices", choices=VOICE_SETS, default="neural",
                   help="who speaks the visit (default neural)")
    return p


def _print_document(document: dict[str, Any]) -> tuple[int, int]:
    sections = [s for s in document.get("sections", []) if s.get("text") or s.get("sentences")]
    for section in sections:
        text = section.get("text") or " ".join(s["text"] for s in section.get("sentences", []))
        print(f"\n{section.get('title', section.get('key', '')).upper()}\n{text}")
    orders = document.get("orders", [])
    if orders:
        print("\nORDERS")
        for order in orders:
            fields = order.get("fields", order)
            detail = " ".join(str(fields.get(k, "")) for k in
                              ("dose", "unit", "frequency", "interval", "specialty") if
                              fields.get(k))
            print(f"- [{fields.get('kind', '')}] {fields.get('name', '')} {detail}".rstrip()
                  + (f"  — VERIFY: {fields['verify']}" if fields.get("verify") else ""))
    return len(sections), len(orders)


def main(argv: list[str], settings: Settings) -> int:
    args = _parser().parse_args(argv)
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    source = args.data / "aci-bench" / "valid.csv"
    wav = args.workdir / "sample-visit.wav"
    cast = voice_set(args.voices)
    print(f"RoomScribe demo — visit {args.visit} of ACI-BENCH (CC BY 4.0), spoken by "
          f"{cast['doctor'].name} (doctor) and {cast['patient'].name} (patient)")
    turns = synthesize_dialogue(read_aci_dialogue(source, args.visit), wav,
                                voice_set=args.voices)
    print(f"  {len(turns)} turns, {turns[-1].end_s:.0f} s of audio -> {wav}")

    lab = RoomLab(args.workdir, port=args.port,
                  extra_env={"ROOMSCRIBE_MODELS_DIR": str(settings.models_dir.resolve())})
    lab.start_server(timeout=120)
    try:
        clinic = lab.roomscribe("admin", "clinic", "add", "Demo Clinic")["id"]
        room = lab.add_room("exam-1", clinic="Demo Clinic")
        people = lab.add_care_team(clinic, room.room_id)
        # the clinic's schedule (its time zone is UTC): who is due in exam-1 now, so the
        # draft arrives with its patient linked
        schedule = args.workdir / "schedule.csv"
        schedule.write_text("room,start,duration_min,name,dob,mrn,reason\n"
                            f"exam-1,{datetime.now(UTC):%Y-%m-%d %H:%M},30,"
                            "Demo Patient (fictitious),1970-01-01,DEMO-0001,follow-up visit\n")
        lab.roomscribe("review", "schedule-import", str(schedule), "--clinic", clinic)
        print(f"server: {lab.http_url} (SQLite in {args.workdir / 'server'}); room exam-1, "
              f"device {room.device_id} enrolled")
        started = time.monotonic()
        agent = lab.start_agent(room, wav, speed=args.speed)
        # the physician records the patient's verbal consent as the visit starts (the web
        # UI's POST /api/v1/encounters/{id}/consent); without it the audio is held, nothing
        # is transcribed, and it is deleted 10 minutes after the visit
        deadline = time.monotonic() + args.timeout
        while not (found := lab.encounters(room.room_id)) and time.monotonic() < deadline \
                and agent.poll() is None:
            time.sleep(0.1)
        if found:
            lab.post(f"/api/v1/encounters/{found[0]['id']}/consent", {"method": "verbal"},
                     people["physician"]["token"])
        if agent.wait(timeout=args.timeout) != 0:
            print(f"the agent failed; see {room.config.with_name('agent.log')}", file=sys.stderr)
            return 1
        encounter_id = lab.encounters(room.room_id)[0]["id"]
        if not found:  # the visit was over before we saw it
            lab.post(f"/api/v1/encounters/{encounter_id}/consent", {"method": "verbal"},
                     people["physician"]["token"])
        print(f"visit streamed through the agent in {time.monotonic() - started:.1f} s; "
              f"encounter {encounter_id}")
        item = lab.wait_for_draft(people["physician"]["token"], encounter_id, args.timeout)
        if item is None:
            print(f"no draft reached the queue; see {lab.server_log}", file=sys.stderr)
            return 1
        print(f"draft in the queue after {time.monotonic() - started:.1f} s "
              f"(state {item['state']}):")
        patient = item.get("patient")
        print("patient: " + (f"{patient['name']}, born {patient['dob']}, MRN {patient['mrn']} "
                             f"(from the {patient['source']})" if patient else "not linked"))
        n_sections, n_orders = _print_document(item["document"])
        print(f"\nopen {lab.http_url}/ and log in:")
        for role, who in people.items():
            print(f"  {role:<9} {who['username']:<12} password {who['password']}")
        if args.once:
            ok = n_sections > 0 and n_orders > 0
            print(json.dumps({"draft_in_queue": True, "sections": n_sections,
                              "orders": n_orders, "patient_linked": patient is not None,
                              "ok": ok}))
            return 0 if ok else 1
        print("serving; Ctrl-C to stop")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        lab.close()
