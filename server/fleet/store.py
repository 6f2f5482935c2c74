"""Keeping status reports: the latest per device and a bounded history.

``record_status`` is what the ingest session calls for every ``status`` event (in a
worker thread, like its other database calls). History is pruned on insert: reports
older than ``keep_h`` hours go, and at most ``keep_max`` stay per device.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.db import Database
from server.fleet.report import HealthReport, normalise
from server.fleet.tables import DeviceHealth, DeviceReport
from server.models import Device

__all__ = ["DEFAULT_KEEP_H", "DEFAULT_KEEP_MAX", "history", "record_status"]

DEFAULT_KEEP_H = 24.0
#: A report every 30 s for 24 h is 2880; a chatty agent (state changes) cannot grow more.
DEFAULT_KEEP_MAX = 4000


def record_status(db: Database, device_id: str, report: dict[str, Any], received_at: datetime,
                  ip: str = "", agent_version: str = "", keep_h: float = DEFAULT_KEEP_H,
                  keep_max: int = DEFAULT_KEEP_MAX) -> HealthReport | None:
    """Store one ``status`` event's body (``Status.to_event().data``) for ``device_id``;
    return it normalised, or None when the device no longer exists (deleted while
    connected). ``ip``: the device's address as the server saw it; ``agent_version``:
    from its ``hello`` ("" = the one stored at enrolment/hello)."""
    with db.session() as s:
        return record_status_in(s, device_id, report, received_at, ip=ip,
                                agent_version=agent_version, keep_h=keep_h, keep_max=keep_max)


def record_status_in(s: Session, device_id: str, report: dict[str, Any], received_at: datetime,
                     *, ip: str = "", agent_version: str = "", keep_h: float = DEFAULT_KEEP_H,
                     keep_max: int = DEFAULT_KEEP_MAX) -> HealthReport | None:
    device = s.get(Device, device_id)
    if device is None:
        return None
    health = normalise(report, received_at, ip=ip,
                       agent_version=agent_version or device.agent_version)
    stored = health.as_dict()
    row = s.get(DeviceHealth, device_id)
    if row is None:
        row = DeviceHealth(device_id=device_id)
        s.add(row)
    row.received_at = received_at
    row.report = stored
    if ip:
        row.ip = ip[:64]
    s.add(DeviceReport(device_id=device_id, received_at=received_at, report=stored))
    s.flush()
    s.execute(delete(DeviceReport).where(
        DeviceReport.device_id == device_id,
        DeviceReport.received_at < received_at - timedelta(hours=keep_h)))
    cutoff = s.scalars(select(DeviceReport.id).where(DeviceReport.device_id == device_id)
                       .order_by(DeviceReport.id.desc()).offset(keep_max).limit(1)).first()
    if cutoff is not None:
        s.execute(delete(DeviceReport).where(DeviceReport.device_id == device_id,
                                             DeviceReport.id <= cutoff))
    return health


def history(s: Session, device_id: str, since: datetime) -> list[tuple[datetime, HealthReport]]:
    """The device's reports received at or after ``since``, oldest first."""
    rows = s.execute(select(DeviceReport.received_at, DeviceReport.report)
                     .where(DeviceReport.device_id == device_id,
                            DeviceReport.received_at >= since)
                     .order_by(DeviceReport.received_at, DeviceReport.id))
    return [(at, HealthReport.from_dict(data)) for at, data in rows]
