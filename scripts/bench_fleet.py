"""Fleet benchmark: what storing status reports and judging the fleet cost the server.

    python scripts/bench_fleet.py [--devices 100] [--reports 20] [--json OUT.json]
                                  [--database-url postgresql+psycopg://...]

A migrated database (SQLite in a temporary directory unless ``--database-url``; a
PostgreSQL one must be empty: the run makes its tables) with ``--devices`` enrolled
devices in one clinic. Each device sends ``--reports`` status events 30 s apart (device
clock), stored with ``server.fleet.store.record_status`` (the ingest hook); then one
evaluation sweep (``server.fleet.alerts.sweep``) judges every device, half of them
silent-mic failing so alerts are raised. Prints and writes (``--json``): status reports
stored per second and the p50 / p95 per report, the sweep's duration and per device,
the alerts raised, and the status event's size on the wire. At one report per device
every 30 s, 100 devices are 3.3 reports a second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from device.stats import health_fields
from protocol import Status, encode_event
from server import registry
from server.db import Database
from server.fleet.alerts import sweep
from server.fleet.hours import ClinicHours
from server.fleet.rules import HealthRules
from server.fleet.store import record_status
from server.migrate import upgrade


def _status(peak: float, at: datetime) -> Status:
    health = health_fields(agent_version="1.0.0", uptime_s=3600.0,
                           now_us=int(at.timestamp() * 1e6), spool_max_bytes=512 << 20,
                           oldest_unacked=0.4, level=(peak - 6, peak), disk=(20 << 30, 30 << 30),
                           cpu_temp=51.2)
    return Status("listening", "6f1c1b9e-8a47-4a43-9a3e-2f7c1d0b9a11", 1 << 20,
                  {"frames_captured": 123456, "frames_spooled": 123456, "frames_dropped": 0,
                   "frames_sent": 123456, "frames_acked": 123400, "reconnects": 1,
                   "capture_errors": 0, "ack_latency_ms_p50": 35, "ack_latency_ms_p95": 80},
                  health)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--reports", type=int, default=20)
    ap.add_argument("--database-url", default="")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.database_url or f"sqlite:///{tmp}/bench.db")
        upgrade(db)
        with db.session() as s:
            clinic = registry.create_clinic(s, "Bench Clinic")
            devices = []
            for i in range(args.devices):
                room = registry.create_room(s, clinic.id, f"Exam {i}", f"exam-{i}")
                device = registry.create_device(s, room.id)
                device.token_hash = f"bench-{i}"
                devices.append(device.id)
        start = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday, clinic open (UTC)
        per_report: list[float] = []
        t0 = time.perf_counter()
        for r in range(args.reports):
            at = start + timedelta(seconds=30 * r)
            for i, device_id in enumerate(devices):
                body = _status(-90.0 if i % 2 else -22.0, at).to_event().data
                t = time.perf_counter()
                record_status(db, device_id, body, at, "10.0.0.1")
                per_report.append(time.perf_counter() - t)
        stored_s = time.perf_counter() - t0
        now = start + timedelta(seconds=30 * (args.reports - 1))
        t = time.perf_counter()
        changes = sweep(db, HealthRules(), ClinicHours.parse("Mon-Fri 07:00-19:00"), now,
                        lambda _d: True)
        sweep_s = time.perf_counter() - t
        db.dispose()
    ms = sorted(x * 1000 for x in per_report)
    out = {
        "database": "postgresql" if args.database_url else "sqlite",
        "devices": args.devices, "reports_per_device": args.reports,
        "reports_per_s": round(len(per_report) / stored_s, 1),
        "report_ms_p50": round(statistics.median(ms), 2),
        "report_ms_p95": round(ms[int(0.95 * (len(ms) - 1))], 2),
        "sweep_ms": round(sweep_s * 1000, 1),
        "sweep_ms_per_device": round(sweep_s * 1000 / args.devices, 2),
        "alerts_raised": sum(c.event == "raised" for c in changes),
        "status_event_bytes": len(encode_event(_status(-22.0, start).to_event())),
    }
    for key, value in out.items():
        print(f"{key:>22}: {value}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
