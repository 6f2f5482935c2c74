"""The main job on this machine, on the embedded default (SQLite): `make demo`.

Starts `roomscribe serve`, creates a clinic, a room and a device with the
admin CLI, enrols a real `roomscribe-device` agent with its one-time code, and
streams a visit synthesized from an ACI-BENCH dialogue (CC BY 4.0) through it.
Prints the stored encounter and where to fetch its audio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from server.lab.processes import RoomLab
from server.lab.speech import read_aci_dialogue, synthesize_dialogue

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=ROOT / "var" / "demo")
    p.add_argument("--seconds", type=float, default=45.0, help="length of the sample visit")
    p.add_argument("--speed", type=float, default=4.0, help="agent speed (1 = real time)")
    p.add_argument("--keep-serving", action="store_true", help="leave the server running")
    args = p.parse_args()

    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    wav = args.workdir / "sample-visit.wav"
    source = DATA / "aci-bench" / "valid.csv"
    print(f"synthesizing a sample visit from {source} (ACI-BENCH, CC BY 4.0) ...")
    turns = synthesize_dialogue(read_aci_dialogue(source), wav, max_seconds=args.seconds)
    print(f"  {len(turns)} turns, {turns[-1].end_s:.0f} s, two voices -> {wav}")

    lab = RoomLab(args.workdir)
    lab.start_server()
    try:
        print(f"server up at {lab.http_url} (SQLite in {args.workdir / 'server'})")
        room = lab.add_room("exam-1", clinic="Demo Clinic")
        print(f"room exam-1: device {room.device_id} enrolled with a one-time code")
        started = time.monotonic()
        agent = lab.start_agent(room, wav, speed=args.speed)
        if agent.wait(timeout=600) != 0:
            print(f"agent failed; see {room.config.with_name('agent.log')}", file=sys.stderr)
            return 1
        encounter = lab.encounters("exam-1")[0]
        print(f"visit streamed in {time.monotonic() - started:.1f} s; stored encounter:")
        print(json.dumps(encounter, indent=2))
        print(f"audio: {lab.http_url}/api/v1/encounters/{encounter['id']}/audio.wav "
              f"(Authorization: Bearer {lab.ensure_admin()})")
        if args.keep_serving:
            print("serving; Ctrl-C to stop")
            while True:
                time.sleep(3600)
        ok = encounter["status"] == "audio_complete"
        return 0 if ok else 1
    except KeyboardInterrupt:
        return 0
    finally:
        lab.close()


if __name__ == "__main__":
    sys.exit(main())
