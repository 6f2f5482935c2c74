"""Benchmark: the agent's CPU and memory while it streams in real time.

Runs ``roomscribe-device run --wav`` (real time) as a process against the fake
server on loopback, skips start-up, then samples the process's CPU time and
RSS from /proc. Prints numbers; asserts nothing (not a test)::

    .venv/bin/python -m tests.device.bench_agent --seconds 30 --frame-ms 100

Budget on a Raspberry Pi: < 5 % of one core and < 60 MB RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from .fakes import DEVICE_ID, TOKEN, FakeServer, write_wav


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kb(pid: int) -> tuple[int, int]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines())
    return int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0])


async def measure(seconds: float, frame_ms: int, warmup: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_wav(d / "visit.wav", seconds + warmup + 5)
        (d / "device.token").write_text(TOKEN)
        (d / "device.token").chmod(0o600)
        server = FakeServer()
        await server.start()
        (d / "room.toml").write_text(
            f'server_url = "{server.url}"\ndevice_id = "{DEVICE_ID}"\n'
            'token_file = "device.token"\nallow_insecure = true\nspool_dir = "spool"\n'
            f'control_socket = "ctl.sock"\nframe_ms = {frame_ms}\n')
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "device.cli", "run", "--config", str(d / "room.toml"),
            "--wav", str(d / "visit.wav"), stderr=asyncio.subprocess.DEVNULL)
        try:
            await asyncio.sleep(warmup)
            frames0 = sum(e.next_seq for e in server.encounters.values())
            cpu0, t0 = cpu_seconds(agent.pid), time.monotonic()
            await asyncio.sleep(seconds)
            cpu1, t1 = cpu_seconds(agent.pid), time.monotonic()
            rss, peak = memory_kb(agent.pid)
            frames1 = sum(e.next_seq for e in server.encounters.values())
        finally:
            agent.terminate()
            await agent.wait()
            await server.stop()
    return {"frame_ms": frame_ms, "seconds": round(t1 - t0, 1),
            "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
            "rss_mb": round(rss / 1024, 1), "peak_rss_mb": round(peak / 1024, 1),
            "frames_stored_per_s": round((frames1 - frames0) / (t1 - t0), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--frame-ms", type=int, default=100)
    parser.add_argument("--warmup", type=float, default=3.0, help="start-up, not measured")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.seconds, args.frame_ms, args.warmup))))


if __name__ == "__main__":
    main()
