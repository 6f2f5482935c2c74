"""The fleet of room devices: health reports kept, judged and alerted on.

    store.record_status   each ``status`` event a device sends (called by the ingest
                          session): latest report + bounded history
    rules.evaluate        pure: ok / warning / failing and why, from a DeviceView
    alerts.sweep          judge every device once; raise / resolve alerts (audited)
    monitor.FleetMonitor  the loop running sweeps every N seconds; start() / aclose()
    webhook.WebhookSender alert JSON POSTed to the configured URLs, retried
    view.fleet_rows       what the rooms page shows (filter, search, sort)
"""

from server.fleet.alerts import AlertChange, open_alerts, sweep
from server.fleet.hours import ClinicHours, HoursError
from server.fleet.monitor import FleetMonitor
from server.fleet.report import HealthReport, normalise
from server.fleet.rules import DeviceView, Finding, Health, HealthRules, Level, Rule, evaluate
from server.fleet.store import history, record_status
from server.fleet.webhook import WebhookSender

__all__ = [
    "AlertChange",
    "ClinicHours",
    "DeviceView",
    "Finding",
    "FleetMonitor",
    "Health",
    "HealthReport",
    "HealthRules",
    "HoursError",
    "Level",
    "Rule",
    "WebhookSender",
    "evaluate",
    "history",
    "normalise",
    "open_alerts",
    "record_status",
    "sweep",
]
