"""What the rooms page shows: one row per room and device, with its health and numbers.

Filter by health state and clinic, search room or device, sort; revoked and
never-enrolled devices are left out unless ``show_all``. A room without an enrolled
device is always listed, as one "no-device" row: it will not record.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.fleet.releases import AgentDrift, drift_of
from server.fleet.report import HealthReport
from server.fleet.tables import DeviceHealth
from server.models import Device, Room
from server.review.schedule import clinic_zone

__all__ = ["FleetQuery", "FleetRow", "Sort", "fleet_rows"]

_HEALTH_RANK = {"failing": 0, "warning": 1, "": 2, "ok": 3}
HIDDEN_STATES = ("revoked", "not-enrolled")


class Sort(StrEnum):
    ROOM = "room"  # clinic, then room name
    HEALTH = "health"  # failing first
    LAST_SEEN = "last_seen"  # longest silent first
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class FleetQuery:
    health: str = ""  # ok | warning | failing | "" (all)
    clinic: str = ""
    search: str = ""
    sort: Sort = Sort.ROOM
    show_all: bool = False

    @classmethod
    def from_params(cls, params: dict[str, str]) -> FleetQuery:
        health = params.get("health", "")
        sort = params.get("sort", "")
        return cls(health=health if health in ("ok", "warning", "failing") else "",
                   clinic=params.get("clinic", "")[:64], search=params.get("q", "")[:100],
                   sort=Sort(sort) if sort in Sort._value2member_map_ else Sort.ROOM,
                   show_all=params.get("all") == "1")


@dataclass(frozen=True, slots=True)
class FleetRow:
    clinic_id: str
    room_id: str
    room_name: str
    device_id: str | None
    device_name: str
    #: listening | idle | muted | offline | not-enrolled | revoked | no-device
    device_state: str
    #: ok | warning | failing; "" = not judged yet (or no device)
    health: str
    reason: str
    last_seen_at: datetime | None
    tz: ZoneInfo
    agent_version: str
    ip: str
    report: HealthReport | None
    #: the agent version offered to this device vs the one it runs, and its update state
    update: AgentDrift | None = None

    def numbers(self) -> list[str]:
        """The key numbers, short, as the page lists them."""
        r = self.report
        if r is None:
            return []
        out = []
        if r.input_peak_dbfs is not None:
            out.append(f"input {r.input_peak_dbfs:.0f} dBFS peak / {r.input_rms_dbfs or 0:.0f} "
                       "RMS")
        if r.spool_pct is not None:
            out.append(f"spool {r.spool_pct:.0f} %")
        if r.oldest_unacked_s:
            out.append(f"unacked {r.oldest_unacked_s:.0f} s")
        if r.frames_dropped:
            out.append(f"{r.frames_dropped} dropped")
        if r.reconnects:
            out.append(f"{r.reconnects} reconnects")
        if r.capture_errors:
            out.append(f"{r.capture_errors} capture errors")
        if r.ack_latency_ms_p95 is not None:
            out.append(f"ack p95 {r.ack_latency_ms_p95} ms")
        if r.disk_free_pct is not None:
            out.append(f"disk {r.disk_free_pct:.0f} % free")
        if r.clock_offset_s is not None:
            out.append(f"clock {r.clock_offset_s:+.1f} s")
        if r.cpu_temp_c is not None:
            out.append(f"{r.cpu_temp_c:.0f} °C")
        if r.uptime_s is not None:
            out.append(f"up {r.uptime_s / 3600:.1f} h")
        return out


def _aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC times."""
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def _device_state(device: Device, connected: bool) -> str:
    if device.token_hash is None:
        return "revoked" if device.revoked_at else "not-enrolled"
    if not connected:
        return "offline"
    return device.reported_state or "idle"


def _matches(row: FleetRow, q: FleetQuery) -> bool:
    if q.health and row.health != q.health:
        return False
    if q.search:
        needle = q.search.lower()
        hay = " ".join(filter(None, (row.room_id, row.room_name, row.device_id,
                                     row.device_name, row.ip))).lower()
        if needle not in hay:
            return False
    return True


def _sort_key(sort: Sort) -> Callable[[FleetRow], tuple[object, ...]]:
    if sort is Sort.HEALTH:
        return lambda r: (_HEALTH_RANK.get(r.health, 2), r.clinic_id, r.room_name)
    if sort is Sort.LAST_SEEN:  # never seen first, then the longest ago
        return lambda r: (r.last_seen_at is not None,
                          r.last_seen_at.timestamp() if r.last_seen_at else 0.0, r.room_name)
    if sort is Sort.DEVICE:
        return lambda r: (r.device_name or r.device_id or "~", r.room_name)
    return lambda r: (r.clinic_id, r.room_name, r.device_id or "")


def fleet_rows(s: Session, clinics: Collection[str], is_connected: Callable[[str], bool],
               query: FleetQuery = FleetQuery()) -> list[FleetRow]:
    """The rooms and devices of ``clinics`` (those the admin administers) that match."""
    wanted = [c for c in clinics if not query.clinic or c == query.clinic]
    zones = {c: clinic_zone(s, c) for c in wanted}
    rows: list[FleetRow] = []
    rooms = list(s.scalars(select(Room).where(Room.clinic_id.in_(wanted))))
    by_room: dict[str, list[Device]] = {r.id: [] for r in rooms}
    for device in s.scalars(select(Device).where(Device.room_id.in_(list(by_room)))):
        by_room[device.room_id].append(device)
    healths = {h.device_id: h for h in s.scalars(select(DeviceHealth).where(
        DeviceHealth.device_id.in_([d.id for ds in by_room.values() for d in ds])))}
    drift = drift_of(s, wanted, [d.id for ds in by_room.values() for d in ds])
    for room in rooms:
        tz = zones[room.clinic_id]
        room_rows = [_device_row(room, device, healths.get(device.id), tz,
                                 is_connected(device.id)) for device in by_room[room.id]]
        room_rows = [replace(r, update=drift(r.clinic_id, r.device_id, r.agent_version))
                     for r in room_rows]
        if query.show_all:
            rows += room_rows
        else:
            rows += [r for r in room_rows if r.device_state not in HIDDEN_STATES]
        if not room_rows or not (query.show_all or any(
                r.device_state not in HIDDEN_STATES for r in room_rows)):
            rows.append(FleetRow(room.clinic_id, room.id, room.name, None, "", "no-device", "",
                                 "no enrolled device: this room will not record", None, tz,
                                 "", "", None))
    return sorted((r for r in rows if _matches(r, query)), key=_sort_key(query.sort))


def _device_row(room: Room, device: Device, health: DeviceHealth | None, tz: ZoneInfo,
                connected: bool) -> FleetRow:
    report = (HealthReport.from_dict(health.report)
              if health is not None and health.received_at is not None else None)
    state = _device_state(device, connected)
    judged = health is not None and state not in HIDDEN_STATES
    return FleetRow(
        room.clinic_id, room.id, room.name, device.id, device.name, state,
        health.state if judged and health is not None else "",
        health.reason if judged and health is not None else "",
        _aware(device.last_seen_at), tz,
        (report.agent_version if report else "") or device.agent_version,
        health.ip if health is not None else "", report)
