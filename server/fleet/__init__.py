"""The fleet of room devices: health reports kept, judged and alerted on.

    store.record_status   each ``status`` event a device sends (called by the ingest
                          session): latest report + bounded history
    rules.evaluate        pure: ok / warning / failing and why, from a DeviceView
    alerts.sweep          judge every device once; raise / resolve alerts (audited)
    monitor.FleetMonitor  the loop running sweeps every N seconds; start() / aclose()
    webhook.WebhookSender alert JSON POSTed to the configured URLs, retried
    email.EmailSender     one email per alert raised / resolved (SMTP), retried
    delivery              the channels' shared interface; each outcome audited
    view.fleet_rows       what the rooms page shows (filter, search, sort)
    backlog.BacklogWatch  the backlog rule's input: rooms' ASR backlog, over since when
    actions               remote actions on a device (code, revoke, command, diagnostics,
                          config), audited; the IT API, the CLI and the rooms page call it
"""

from server.fleet.alerts import AlertChange, open_alerts, sweep
from server.fleet.delivery import AlertChannel, Delivery
from server.fleet.email import EmailSender, Recipients, SmtpServer
from server.fleet.hours import ClinicHours, HoursError
from server.fleet.monitor import FleetMonitor
from server.fleet.report import HealthReport, normalise
from server.fleet.rules import DeviceView, Finding, Health, HealthRules, Level, Rule, evaluate
from server.fleet.store import history, record_status
from server.fleet.webhook import WebhookSender

__all__ = [
    "AlertChange",
    "AlertChannel",
    "ClinicHours",
    "Delivery",
    "DeviceView",
    "EmailSender",
    "Finding",
    "FleetMonitor",
    "Health",
    "HealthReport",
    "HealthRules",
    "HoursError",
    "Level",
    "Recipients",
    "Rule",
    "SmtpServer",
    "WebhookSender",
    "evaluate",
    "history",
    "normalise",
    "open_alerts",
    "record_status",
    "sweep",
]
