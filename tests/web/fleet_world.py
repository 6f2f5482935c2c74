"""A small fleet in the review world's North Clinic (Chicago): exam-2 gets an enrolled
device that reported a muted microphone and then went offline (failing, alerted);
exam-3 gets a healthy one; exam-1 keeps only its never-enrolled device; a revoked
device sits in exam-3."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from server import registry
from server.fleet.alerts import sweep
from server.fleet.hours import ClinicHours
from server.fleet.rules import HealthRules
from server.fleet.store import record_status
from server.models import Clinic, Device, utcnow
from tests.review.world import World
from tests.support import enrol_device

ALWAYS_OPEN = ClinicHours.parse("Mon-Sun 00:00-24:00")


@dataclass
class Fleet:
    failing: str
    healthy: str
    revoked: str


def report(peak: float, at_us: int) -> dict[str, object]:
    return {"state": "listening", "spool_bytes": 5 * 1024 * 1024,
            "counters": {"frames_dropped": 0, "capture_errors": 0, "reconnects": 2},
            "health": {"agent_version": "1.4.0", "uptime_s": 7200.0, "sent_at_us": at_us,
                       "spool_max_bytes": 512 * 1024 * 1024, "oldest_unacked_s": 0.0,
                       "input_rms_dbfs": peak - 6, "input_peak_dbfs": peak,
                       "disk_free_bytes": 40, "disk_total_bytes": 100, "cpu_temp_c": 52.0}}


def build_fleet(world: World) -> Fleet:
    with world.db.session() as s:
        clinic = s.get(Clinic, world.north)
        assert clinic is not None
        clinic.timezone = "America/Chicago"
        registry.create_room(s, world.north, "Exam 3", "exam-3")
    failing = enrol_device(world.db, "exam-2").device_id
    healthy = enrol_device(world.db, "exam-3").device_id
    revoked = enrol_device(world.db, "exam-3").device_id
    with world.db.session() as s:
        registry.revoke_device(s, revoked)
        for device_id, name in ((failing, "Pi exam-2b"), (healthy, "Pi exam-3")):
            device = s.get(Device, device_id)
            assert device is not None
            device.name = name
    now = utcnow()
    for device_id, peak in ((failing, -95.0), (healthy, -24.0)):
        at = now - timedelta(minutes=10)
        record_status(world.db, device_id, report(peak, int(at.timestamp() * 1e6)), at,
                      ip="10.0.0.7")
        with world.db.session() as s:
            device = s.get(Device, device_id)
            assert device is not None
            device.last_seen_at = at
    # the healthy one is connected; the failing one went away 10 minutes ago
    sweep(world.db, HealthRules(), ALWAYS_OPEN, now, lambda d: d == healthy)
    return Fleet(failing, healthy, revoked)
