"""Uplink benchmark: a visit through the real agent and server on loopback, with an outage.

    python scripts/bench_uplink.py [--seconds 90] [--outage-at 25] [--outage 20] [--json OUT]

Streams a synthesized visit (two espeak-ng voices, ACI-BENCH dialogue) in real
time through `roomscribe-device`, kills the server mid-visit for `--outage`
seconds, restarts it, and reports whether the stored audio is byte-identical,
the agent's CPU (% of one core while streaming in real time) and RSS, and the
ack latency the agent saw. Targets: identical; device < 5 % of a core, < 60 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Any

from server.lab.processes import RoomLab
from server.lab.speech import read_aci_dialogue, synthesize_dialogue

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return rss / 1024, hwm / 1024


def counters_from_log(log: Path) -> dict[str, float]:
    """The agent's final 'agent stopped: k=v ...' line."""
    lines = [ln for ln in log.read_text().splitlines() if "agent stopped:" in ln]
    if not lines:
        return {}
    pairs = re.findall(r"(\w+)=([-\d.]+)", lines[-1].split("agent stopped:", 1)[1])
    return {k: float(v) for k, v in pairs}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=90.0)
    p.add_argument("--outage-at", type=float, default=25.0)
    p.add_argument("--outage", type=float, default=20.0)
    p.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench_uplink")
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    import shutil
    shutil.rmtree(args.workdir, ignore_errors=True)
    wav = args.workdir / "visit.wav"
    synthesize_dialogue(read_aci_dialogue(DATA / "aci-bench" / "valid.csv", row=1), wav,
                        max_seconds=args.seconds)
    with wave.open(str(wav)) as w:
        pcm = w.readframes(w.getnframes())

    lab = RoomLab(args.workdir / "lab")
    lab.start_server()
    try:
        room = lab.add_room("bench-room")
        agent = lab.start_agent(room, wav, speed=1.0)
        samples: list[tuple[float, float]] = []
        peak = [0.0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set() and agent.poll() is None:
                try:
                    samples.append((time.monotonic(), cpu_seconds(agent.pid)))
                    peak[0] = max(peak[0], rss_mb(agent.pid)[1])
                except (FileNotFoundError, ProcessLookupError):
                    return
                stop.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        time.sleep(args.outage_at)
        lab.stop_server(kill=True)
        outage_started = time.monotonic()
        time.sleep(args.outage)
        lab.start_server()
        outage_s = time.monotonic() - outage_started
        rc = agent.wait(timeout=args.seconds + 300)
        stop.set()
        sampler.join()

        # CPU while streaming in real time: from 3 s after start (imports done) to the
        # end of capture, outage included (the agent keeps capturing and spooling).
        window = [s for s in samples if s[0] - samples[0][0] >= 3.0]
        cpu_pct = 100 * (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
        encounter = lab.encounters("bench-room")[0]
        stored = lab.stored_audio(encounter["id"])
        counters = counters_from_log(room.config.with_name("agent.log"))
        result: dict[str, Any] = {
            "agent_exit_code": rc,
            "audio_seconds": round(len(pcm) / 32000, 1),
            "bytes_captured": len(pcm),
            "bytes_stored": len(stored),
            "identical": stored == pcm,
            "gaps": encounter.get("gaps", []),
            "device_cpu_percent": round(cpu_pct, 2),
            "device_rss_mb": round(peak[0], 1),
            "ack_latency_ms_p50": counters.get("ack_latency_ms_p50"),
            "ack_latency_ms_p95": counters.get("ack_latency_ms_p95"),
            "reconnects": counters.get("reconnects"),
            "frames_sent": counters.get("frames_sent"),
            "frames_acked": counters.get("frames_acked"),
            "outage_s": round(outage_s, 1),
        }
    finally:
        lab.close()

    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
