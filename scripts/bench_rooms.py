"""Rooms benchmark: N rooms streaming real speech at once, through the whole chain.

    python scripts/bench_rooms.py [--levels 2,4,6,8,10] [--visit-s 90] [--long-visit-s 600]
                                  [--stagger-s 0] [--json OUT.json] [--plot OUT.png]
    python scripts/bench_rooms.py --replot OUT.json --plot OUT.png

For each level N: a fresh server (SQLite, the configured ASR engine, NLP
drafting, review queue), N enrolled rooms, N `roomscribe-device` agents
streaming different synthesized ACI-BENCH visits in real time, and a live
viewer per room. A level passes when no agent dropped audio, no room's
transcription fell behind (`lagging`), and partial latency p95 <= 1 s. The
levels go on while the rooms keep up (no drops, no `lagging`, every draft
queued), so `max_rooms_keeping_up` is reported beside `max_rooms`.

Partial latency: arrival of a `partial` event at the viewer minus the wall
time at which the audio it covers was captured (encounter start + the
partial's `audio_s`). End of visit -> draft: the last frame's capture time to
the draft's arrival in the physician's queue. `max_rooms` is the largest
passing level; then one run at that level (at least one room) with
`--long-visit-s` visits gives `end_of_visit_to_draft_ms_p50/_p95` (all rooms
together, or `--stagger-s` apart as in a clinic where visits overlap). Server
CPU (% of one core) and peak RSS come from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from server.lab.processes import RoomLab
from server.lab.speech import Turn, synthesize_dialogue

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def visits(n: int, seconds: float, workdir: Path) -> list[Path]:
    """``n`` different ACI-BENCH dialogues (train split), each spoken for ``seconds``."""
    with (DATA / "aci-bench" / "train.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    paths = []
    for i in range(n):
        turns = [Turn(line[1:].split("]", 1)[0].strip(), line.split("]", 1)[1].strip())
                 for line in rows[i % len(rows)]["dialogue"].splitlines()
                 if line.startswith("[") and "]" in line and line.split("]", 1)[1].strip()]
        path = workdir / f"visit-{i:02d}-{int(seconds)}s.wav"
        if not path.exists():
            while sum(len(t.text) for t in turns) < seconds * 20:  # long visits: repeat
                turns = turns + turns
            synthesize_dialogue(turns, path, max_seconds=seconds)
        paths.append(path)
    return paths


class ProcSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self.peak_rss_mb = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            self.samples.append((time.monotonic(), (int(fields[11]) + int(fields[12])) / TICKS))
            hwm = re.search(r"VmHWM:\s+(\d+)", status)
            if hwm:
                self.peak_rss_mb = max(self.peak_rss_mb, int(hwm.group(1)) / 1024)
            self.stop.wait(1.0)

    def cpu_percent(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, c0), (t1, c1) = self.samples[0], self.samples[-1]
        return round(100 * (c1 - c0) / (t1 - t0), 1)


async def watch_room(lab: RoomLab, encounter_id: str, started_us: int,
                     out: dict[str, Any], token: str) -> None:
    url = lab.http_url.replace("http", "ws") + f"/ws/encounters/{encounter_id}/live"
    # the room's physician watches (the IT key reads no transcripts; no token in a URL)
    async with connect(url, open_timeout=30, max_size=None,
                       additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        async for message in ws:
            event = json.loads(message)
            now_us = time.time() * 1e6
            data = event.get("data", {})
            if event["type"] == "partial" and data.get("text") and "audio_s" in data:
                out["partial_ms"].append((now_us - started_us - data["audio_s"] * 1e6) / 1000)
            elif event["type"] == "lagging":
                out["lagging"] += 1
            elif event["type"] in ("transcript-complete", "error"):
                out["end"] = event["type"]
                return


def encounter_of(lab: RoomLab, room_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = lab.encounters(room_id)
        if found:
            return found[0]
        time.sleep(0.2)
    raise RuntimeError(f"room {room_id}: no encounter appeared")


def run_level(n: int, wavs: list[Path], workdir: Path, physician_wait_s: float,
              stagger_s: float = 0.0) -> dict[str, Any]:
    shutil.rmtree(workdir, ignore_errors=True)
    lab = RoomLab(workdir)
    lab.start_server(timeout=180)
    sampler = ProcSampler(lab.server_pid or 0)
    sampler.start()
    stop_polling = threading.Event()
    try:
        _, token = lab.add_physician("Bench Clinic", "dr_bench")
        rooms = []
        for i in range(n):
            room = lab.add_room(f"room-{i:02d}", clinic="Bench Clinic")
            lab.roomscribe("review", "room-physician", room.room_id, "dr_bench")
            rooms.append(room)
        seen: dict[str, float] = {}  # encounter id -> when its draft was first in the queue

        def poll_queue() -> None:  # the physician's queue, every 0.2 s, all run long
            while not stop_polling.wait(0.2):
                now_us = time.time() * 1e6
                try:
                    queue = lab.api("/api/v1/review/queue", token=token)
                except OSError:  # the server is going away
                    return
                for entry in queue:
                    seen.setdefault(entry["encounter_id"], now_us)

        threading.Thread(target=poll_queue, daemon=True).start()
        agents: list[Any] = []

        def start_agents() -> None:  # room i starts i * stagger_s after room 0
            for i, (room, wav) in enumerate(zip(rooms, wavs[:n], strict=True)):
                if i and stagger_s:
                    time.sleep(stagger_s)
                agents.append(lab.start_agent(room, wav, speed=1.0))

        starter = threading.Thread(target=start_agents, daemon=True)
        starter.start()
        per_room: list[dict[str, Any]] = []

        async def watch_all() -> None:
            tasks = []
            for i, room in enumerate(rooms):
                enc = await asyncio.to_thread(encounter_of, lab, room.room_id,
                                              60 + i * stagger_s)
                # the room's physician records the patient's consent as the visit starts
                await asyncio.to_thread(lab.post, f"/api/v1/encounters/{enc['id']}/consent",
                                        {"method": "verbal"}, token)
                out: dict[str, Any] = {"room": room.room_id, "encounter_id": enc["id"],
                                       "started_us": enc["started_at_us"], "partial_ms": [],
                                       "lagging": 0, "end": None}
                per_room.append(out)
                tasks.append(asyncio.create_task(
                    watch_room(lab, enc["id"], enc["started_at_us"], out, token)))
            await asyncio.wait_for(asyncio.gather(*tasks),
                                   timeout=physician_wait_s + n * stagger_s)

        asyncio.run(watch_all())
        starter.join()
        for agent in agents:
            agent.wait(timeout=120)
        # End of visit -> draft in the physician's queue (seen by the poller below).
        draft_ms: list[float] = []
        deadline = time.monotonic() + 120
        while (time.monotonic() < deadline
               and not all(r["encounter_id"] in seen for r in per_room)):
            time.sleep(0.2)
        stop_polling.set()
        for r in per_room:
            if r["encounter_id"] in seen:
                enc = lab.api(f"/api/v1/encounters/{r['encounter_id']}")
                ended_us = enc["started_at_us"] + enc["audio_seconds"] * 1e6
                draft_ms.append((seen[r["encounter_id"]] - ended_us) / 1000)
        dropped = 0
        for room in rooms:
            log = room.config.with_name("agent.log").read_text()
            found = re.findall(r"frames_dropped=(\d+)", log)
            dropped += int(found[-1]) if found else 0
    finally:
        stop_polling.set()
        sampler.stop.set()
        lab.close()
    partials = [ms for r in per_room for ms in r["partial_ms"]]
    lagging = sum(r["lagging"] for r in per_room)
    p95 = percentile(partials, 0.95)
    return {
        "rooms": n,
        "frames_dropped": dropped,
        "lagging_events": lagging,
        "partial_latency_ms_p50": percentile(partials, 0.5),
        "partial_latency_ms_p95": p95,
        "drafts_in_queue": len(draft_ms),
        "end_of_visit_to_draft_ms_p50": percentile(draft_ms, 0.5),
        "end_of_visit_to_draft_ms_p95": percentile(draft_ms, 0.95),
        "server_cpu_percent": sampler.cpu_percent(),
        "server_rss_mb": round(sampler.peak_rss_mb, 1),
        "kept_up": dropped == 0 and lagging == 0 and len(draft_ms) == n,
        "passed": dropped == 0 and lagging == 0 and p95 is not None and p95 <= 1000
                  and len(draft_ms) == n,
    }


def plot(summary: dict[str, Any], path: Path) -> None:
    """Partial latency and end of visit -> draft per level, the targets, and the long run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = summary["levels"]
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    xs = [lv["rooms"] for lv in levels]
    ax.plot(xs, [lv["partial_latency_ms_p95"] or 0 for lv in levels], "o-",
            label="partial latency p95")
    ax.plot(xs, [lv["end_of_visit_to_draft_ms_p95"] or 0 for lv in levels], "s-",
            label=f"end of visit → draft p95 ({summary['visit_s']:.0f}-s visits)")
    failed = [lv for lv in levels if not lv["passed"]]
    if failed:
        ax.plot([lv["rooms"] for lv in failed],
                [lv["partial_latency_ms_p95"] or 0 for lv in failed], "x", color="red",
                markersize=10, label="level failed")
    long_run = summary.get("long_visit")
    if long_run and long_run.get("end_of_visit_to_draft_ms_p95") is not None:
        ax.plot([long_run["rooms"]], [long_run["end_of_visit_to_draft_ms_p95"]], "D",
                color="black", label=f"end of visit → draft p95 "
                                     f"({long_run['visit_s'] / 60:.0f}-min visits)")
    ax.axhline(1000, color="tab:blue", ls=":", lw=1)
    ax.axhline(5000, color="tab:orange", ls=":", lw=1)
    ax.text(xs[0], 1050, "partial target 1 s", fontsize=7, color="tab:blue")
    ax.text(xs[0], 5050, "draft target 5 s", fontsize=7, color="tab:orange")
    ax.set_ylim(0, 5600)
    ax.set_xticks(xs)
    ax.set_xlabel("rooms streaming at once")
    ax.set_ylabel("ms")
    ax.set_title("RoomScribe on one 2-core server (whisper tiny.en, SQLite)", fontsize=10)
    ax.legend(fontsize=7, loc="center left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--levels", default="2,4,6,8,10")
    p.add_argument("--visit-s", type=float, default=90.0)
    p.add_argument("--long-visit-s", type=float, default=600.0,
                   help="visit length for the end-of-visit run at max_rooms (0 = skip)")
    p.add_argument("--long-rooms", type=int, default=0,
                   help="rooms in the --long-visit-s run (0 = max_rooms, at least 1)")
    p.add_argument("--stagger-s", type=float, default=0.0,
                   help="start the rooms of the --long-visit-s run this many seconds apart "
                        "(0 = all together, the worst case for the drafting queue)")
    p.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench_rooms")
    p.add_argument("--json", type=Path)
    p.add_argument("--plot", type=Path)
    p.add_argument("--replot", type=Path, metavar="JSON",
                   help="only draw --plot from a saved --json result")
    args = p.parse_args()
    if args.replot:
        plot(json.loads(args.replot.read_text()), args.plot or args.replot.with_suffix(".png"))
        return 0
    levels_n = [int(x) for x in args.levels.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    wavs = visits(max(levels_n), args.visit_s, args.workdir / "audio")
    levels = []
    for n in levels_n:
        result = run_level(n, wavs, args.workdir / f"level-{n}", args.visit_s + 300)
        levels.append(result)
        print(json.dumps(result), flush=True)
        if not result["kept_up"]:
            break
    passing = [lv for lv in levels if lv["passed"]]
    max_rooms = max((lv["rooms"] for lv in passing), default=0)
    keeping_up = max((lv["rooms"] for lv in levels if lv["kept_up"]), default=0)
    summary: dict[str, Any] = {"max_rooms": max_rooms, "max_rooms_keeping_up": keeping_up,
                               "visit_s": args.visit_s, "levels": levels}
    best = next((lv for lv in levels if lv["rooms"] == max_rooms), None)
    if best:
        summary["partial_latency_ms_p95"] = best["partial_latency_ms_p95"]
        summary["server_cpu_percent"] = best["server_cpu_percent"]
        summary["server_rss_mb"] = best["server_rss_mb"]
    if args.long_visit_s:
        # the 10-minute visits at max_rooms (at least one room, so the end-of-visit
        # number exists even when no level met the partial-latency target)
        n_long = args.long_rooms or max(1, max_rooms)
        long_wavs = visits(n_long, args.long_visit_s, args.workdir / "audio")
        long_run = run_level(n_long, long_wavs, args.workdir / "long",
                             args.long_visit_s + 600, args.stagger_s)
        summary["long_visit"] = long_run | {"visit_s": args.long_visit_s,
                                            "stagger_s": args.stagger_s}
        summary["end_of_visit_to_draft_ms_p50"] = long_run["end_of_visit_to_draft_ms_p50"]
        summary["end_of_visit_to_draft_ms_p95"] = long_run["end_of_visit_to_draft_ms_p95"]
    print(f"{'rooms':>5} {'partial p95 ms':>15} {'draft p95 ms':>13} {'cpu %':>6} "
          f"{'rss MB':>7} {'dropped':>7} {'lagging':>7} pass")
    for lv in levels:
        print(f"{lv['rooms']:>5} {lv['partial_latency_ms_p95']!s:>15} "
              f"{lv['end_of_visit_to_draft_ms_p95']!s:>13} {lv['server_cpu_percent']!s:>6} "
              f"{lv['server_rss_mb']:>7} {lv['frames_dropped']:>7} {lv['lagging_events']:>7} "
              f"{lv['passed']}")
    print(json.dumps({k: v for k, v in summary.items() if k != "levels"}, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
    if args.plot:
        plot(summary, args.plot)
    return 0 if keeping_up else 1


if __name__ == "__main__":
    sys.exit(main())
