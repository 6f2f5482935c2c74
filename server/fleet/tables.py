"""Fleet tables, one module so Alembic's env imports them.

Device ─ DeviceHealth       its latest status report, health state and reason (one row)
       ─< DeviceReport      the status reports of the last ``fleet_history_h`` hours
       ─< FleetAlert        a rule that made the device failing: open until it clears
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.models import Base
from server.review.models import UTCDateTime

__all__ = ["DeviceHealth", "DeviceReport", "FleetAlert"]

_TS = UTCDateTime()


class DeviceHealth(Base):
    """A device's latest report and what the health rules made of it."""

    __tablename__ = "device_health"
    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    #: When the latest status report arrived (None: never reported since the table existed).
    received_at: Mapped[datetime | None] = mapped_column(_TS)
    #: The latest report, normalised (server/fleet/report.py ``HealthReport.as_dict``).
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str] = mapped_column(String(64), default="")
    #: ok | warning | failing ("" before the first evaluation) and why.
    state: Mapped[str] = mapped_column(String(16), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    state_since: Mapped[datetime | None] = mapped_column(_TS)
    #: When the evaluation loop first saw the device disconnected (None: connected).
    offline_since: Mapped[datetime | None] = mapped_column(_TS)
    evaluated_at: Mapped[datetime | None] = mapped_column(_TS)


class DeviceReport(Base):
    """One status report kept for the rules that look back (silence, rising errors)."""

    __tablename__ = "device_reports"
    __table_args__ = (Index("ix_device_reports_device_at", "device_id", "received_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(_TS)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class FleetAlert(Base):
    """A device failing one rule. ``open_key`` (device:rule) is set while open and unique,
    so there is at most one open alert per device and rule; resolving clears it."""

    __tablename__ = "fleet_alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    clinic_id: Mapped[str] = mapped_column(String(64), index=True)
    room_id: Mapped[str] = mapped_column(String(64), default="")
    rule: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    raised_at: Mapped[datetime] = mapped_column(_TS)
    resolved_at: Mapped[datetime | None] = mapped_column(_TS, index=True)
    open_key: Mapped[str | None] = mapped_column(String(120), unique=True)
