"""Evaluating the fleet: health state per device, and alerts raised and resolved.

``sweep`` runs once per evaluation (server/fleet/monitor.py, in a worker thread): for
each enrolled, unrevoked device it updates when the device went offline, judges its
health (server/fleet/rules.py), stores state and reason, opens an alert for each rule
newly failing (at most one open per device and rule) and resolves each open alert
whose rule no longer fails. Every raise and resolve is audited in the same
transaction and returned as an :class:`AlertChange` for delivery (webhook, live UI).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import Database
from server.fleet.hours import ClinicHours
from server.fleet.report import HealthReport
from server.fleet.rules import DeviceView, HealthRules, RoomBacklog, Rule, evaluate
from server.fleet.store import history
from server.fleet.tables import DeviceHealth, FleetAlert
from server.models import Clinic, Device, Room
from server.review import audit

__all__ = ["AlertChange", "open_alerts", "sweep"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One alert raised or resolved: the webhook's JSON body (``as_json``)."""

    event: str  # raised | resolved
    alert_id: int
    device_id: str
    room_id: str
    clinic_id: str
    rule: str
    reason: str
    at: datetime

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["at"] = self.at.isoformat()
        body["text"] = (f"[{self.clinic_id}/{self.room_id}] {self.device_id}: "
                        f"{'FAILING' if self.event == 'raised' else 'recovered'} "
                        f"({self.rule}) {self.reason}")
        return body


def _lookback(rules: HealthRules) -> timedelta:
    return timedelta(minutes=max(rules.capture_window_min, rules.silent_fail_min) + 1)


def _judge(s: Session, device: Device, room: Room, clinic: Clinic, rules: HealthRules,
           hours: ClinicHours, now: datetime, connected: bool,
           backlog: RoomBacklog | None = None) -> list[AlertChange]:
    row = s.get(DeviceHealth, device.id)
    if row is None:
        row = DeviceHealth(device_id=device.id)
        s.add(row)
    if connected:
        row.offline_since = None
    elif row.offline_since is None:
        # since its last sign of life; a device never seen stays None ("never connected")
        seen = [t if t.tzinfo else t.replace(tzinfo=UTC)  # SQLite: naive UTC
                for t in (row.received_at, device.last_seen_at) if t is not None]
        row.offline_since = max(seen) if seen else None
    latest = HealthReport.from_dict(row.report) if row.received_at is not None else None
    view = DeviceView(connected=connected, clinic_open=hours.is_open(now, clinic.timezone),
                      latest=latest, latest_at=row.received_at,
                      history=history(s, device.id, now - _lookback(rules)) if connected else (),
                      offline_since=row.offline_since, backlog=backlog)
    health = evaluate(view, rules, now)
    if row.state != health.level.value or row.reason != health.reason:
        if row.state != health.level.value:
            row.state_since = now
        row.state = health.level.value
        row.reason = health.reason
    row.evaluated_at = now
    failing = health.failing_rules()
    changes: list[AlertChange] = []
    opened = {a.rule: a for a in s.scalars(select(FleetAlert).where(
        FleetAlert.device_id == device.id, FleetAlert.resolved_at.is_(None)))}
    for rule, alert in opened.items():
        if rule == Rule.BACKLOG and backlog is None:
            continue  # not judged here (the room is not transcribed by this process)
        if rule not in failing:
            alert.resolved_at = now
            alert.open_key = None
            s.flush()
            audit.record(s, None, audit.AuditAction.ALERT_RESOLVED, clinic_id=clinic.id,
                         detail=f"alert {alert.id} {device.id} ({room.id}) {rule}: cleared",
                         now=now)
            changes.append(AlertChange("resolved", alert.id, device.id, room.id, clinic.id,
                                       rule, alert.reason, now))
    for rule, reason in failing.items():
        if rule.value in opened:
            continue
        alert = FleetAlert(device_id=device.id, clinic_id=clinic.id, room_id=room.id,
                           rule=rule.value, reason=reason, raised_at=now,
                           open_key=f"{device.id}:{rule.value}")
        s.add(alert)
        s.flush()
        audit.record(s, None, audit.AuditAction.ALERT_RAISED, clinic_id=clinic.id,
                     detail=f"alert {alert.id} {device.id} ({room.id}) {rule}: {reason}",
                     now=now)
        changes.append(AlertChange("raised", alert.id, device.id, room.id, clinic.id,
                                   rule.value, reason, now))
    return changes


def sweep(db: Database, rules: HealthRules, hours: ClinicHours, now: datetime,
          is_connected: Callable[[str], bool],
          backlogs: Mapping[str, RoomBacklog] | None = None) -> list[AlertChange]:
    """Judge every enrolled device once; one transaction per device (a failure on one
    does not hold back the others' alerts). A revoked device's open alerts resolve.
    ``backlogs``: the transcription backlog of the rooms this process transcribes
    (server/fleet/backlog.py); a room not in it keeps its backlog alert as it is."""
    with db.session() as s:
        rows = list(s.execute(select(Device.id).where(Device.token_hash.is_not(None))))
        revoked = list(s.scalars(select(FleetAlert).join(Device).where(
            FleetAlert.resolved_at.is_(None), Device.token_hash.is_(None))))
        changes = []
        for alert in revoked:
            alert.resolved_at, alert.open_key = now, None
            s.flush()
            audit.record(s, None, audit.AuditAction.ALERT_RESOLVED, clinic_id=alert.clinic_id,
                         detail=f"alert {alert.id} {alert.device_id}: device revoked", now=now)
            changes.append(AlertChange("resolved", alert.id, alert.device_id, alert.room_id,
                                       alert.clinic_id, alert.rule, "device revoked", now))
    for (device_id,) in rows:
        try:
            with db.session() as s:
                device = s.get(Device, device_id)
                if device is None or device.token_hash is None:
                    continue
                room = s.get(Room, device.room_id)
                clinic = s.get(Clinic, room.clinic_id) if room is not None else None
                if room is None or clinic is None:
                    continue
                judged = _judge(s, device, room, clinic, rules, hours, now,
                                is_connected(device_id),
                                (backlogs or {}).get(room.id))
        except IntegrityError:  # another server node raised the same alert first
            log.info("fleet: %s judged by another node at the same time", device_id)
            continue
        changes += judged
    return changes


def open_alerts(s: Session, clinics: list[str] | None = None) -> list[FleetAlert]:
    """Open alerts, newest first (``clinics`` None: all)."""
    stmt = select(FleetAlert).where(FleetAlert.resolved_at.is_(None))
    if clinics is not None:
        stmt = stmt.where(FleetAlert.clinic_id.in_(clinics))
    return list(s.scalars(stmt.order_by(FleetAlert.raised_at.desc(), FleetAlert.id.desc())))
