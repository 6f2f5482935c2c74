#!/usr/bin/env python3
"""The Rooms page with a failing device, shown: a real fleet on loopback, screenshotted.

    python scripts/screenshot_fleet.py [--out docs/screenshots/fleet-failing-device.png]
                                       [--json docs/fleet_failing_device.json]
                                       [--report-every-s 5] [--evaluate-every-s 5]
                                       [--silent-warn-min 0.2] [--silent-fail-min 0.5]
                                       [--timeout 240] [--keep DIR]

What IT would see, end to end, with nothing faked: ``roomscribe serve`` on SQLite in a
temporary folder (server/lab/processes.py ``RoomLab``), a clinic with three rooms,
each with a device enrolled by its one-time code and run by the real
``roomscribe-device`` agent:

  exam-1   fed a spoken visit (espeak-ng voices)            ok
  exam-2   fed digital silence (a microphone unplugged)    failing: silent_mic, alerted
  exam-3   streamed a few seconds, then stopped            offline (a warning)

The server's thresholds are set through its environment for the run (the silent-mic
rule's ``ROOMSCRIBE_FLEET_SILENT_WARN_MIN`` / ``_FAIL_MIN``, the sweep's
``ROOMSCRIBE_FLEET_EVALUATE_EVERY_S``, clinic hours always open) and the agents report
every ``--report-every-s`` (their ``log_interval_s`` in room.toml). Alerts go to a
webhook on loopback that this script listens on. The IT admin logs in with Chromium
(/usr/bin/chromium, Playwright), opens the Rooms page and the script watches it (as it
refreshes itself every 5 s) until exam-2's device shows ``failing`` with the silent-mic
reason and its alert is listed; then a full-page screenshot.

Measured from the first silent frame the device captured (the failure's start: its
visit's ``started_at_us``, the device's clock on this host): when the page
first shows the device unhealthy with the silent-mic reason, when it shows it failing,
when the alert was raised (the webhook's ``at``) and delivered, and when the page lists
the alert. The issue's targets: a device failure visible in the UI within 30 s, and the
alert raised within the configured delay (``silent_fail_min``) plus one report and one
sweep interval (the rule counts from the first report that reads silence), and 2 s for
their work. The exit status is 0
only when both are met.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.lab.processes import Room, RoomLab, free_port  # noqa: E402
from server.lab.speech import (  # noqa: E402
    RATE,
    Turn,
    synthesize_dialogue,
    wav_to_pcm16k,
    write_wav,
)

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1440, "height": 900}
#: Seconds allowed for the work of one report and one sweep (the alert's allowance).
WORK_S = 2.0
CLINIC = "North Clinic"
#: A fictitious exchange, spoken over and over for the healthy room.
VISIT = (
    Turn("doctor", "Good morning. What brings you in today?"),
    Turn("patient", "I have had a sore throat and a low fever since Monday."),
    Turn("doctor", "Any trouble swallowing, or a cough?"),
    Turn("patient", "It hurts to swallow, but no cough."),
    Turn("doctor", "Let me take a look and check your temperature."),
)

#: What the page shows for one device, and the open alerts (robust to added columns
#: and buttons: rows are found by the device id in their text).
PAGE_STATE_JS = """(ids) => {
  const rows = Array.from(document.querySelectorAll('#rooms-rows tr, table.rooms tbody tr'));
  const out = {devices: {}, alerts: []};
  for (const id of ids) {
    const tr = rows.find(r => r.dataset.device === id || r.textContent.includes(id));
    if (!tr) { out.devices[id] = null; continue; }
    const badge = tr.querySelector('[class*="health-"]');
    const reason = tr.querySelector('.reason');
    out.devices[id] = {
      health: tr.dataset.health || (badge ? badge.textContent.trim() : ''),
      reason: reason ? reason.textContent.trim() : '',
    };
  }
  const alerts = document.querySelectorAll('#fleet-alerts li.alert, li.alert');
  out.alerts = Array.from(alerts, li => li.textContent.replace(/\\s+/g, ' ').trim());
  return out;
}"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path,
                   default=ROOT / "docs" / "screenshots" / "fleet-failing-device.png",
                   help="the full-page screenshot (PNG)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT",
                   help="write what was measured here as JSON")
    p.add_argument("--report-every-s", type=float, default=5.0,
                   help="the agents' status interval (log_interval_s; the default is 60)")
    p.add_argument("--evaluate-every-s", type=float, default=5.0,
                   help="ROOMSCRIBE_FLEET_EVALUATE_EVERY_S for the run (default 15)")
    p.add_argument("--silent-warn-min", type=float, default=0.2,
                   help="ROOMSCRIBE_FLEET_SILENT_WARN_MIN for the run (default 2)")
    p.add_argument("--silent-fail-min", type=float, default=0.5,
                   help="ROOMSCRIBE_FLEET_SILENT_FAIL_MIN for the run (default 5)")
    p.add_argument("--offline-warn-min", type=float, default=0.5,
                   help="ROOMSCRIBE_FLEET_OFFLINE_WARN_MIN for the run (default 2)")
    p.add_argument("--timeout", type=float, default=240.0,
                   help="seconds to wait for the failing device and its alert on the page")
    p.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="run in DIR and keep it (server and agent logs); default a temp dir")
    return p


def _check_args(args: argparse.Namespace) -> None:
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing (scripts/setup.sh installs Debian's chromium)")
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is missing (scripts/setup.sh installs it)")
    for name in ("report_every_s", "evaluate_every_s", "silent_fail_min", "timeout"):
        if getattr(args, name) <= 0:
            raise SystemExit(f"--{name.replace('_', '-')} must be positive")
    if not 0 <= args.silent_warn_min <= args.silent_fail_min:
        raise SystemExit("--silent-warn-min must be between 0 and --silent-fail-min")
    if args.out.suffix.lower() != ".png":
        raise SystemExit("--out must name a .png file")


# ------------------------------------------------------------------ the room audio

def _speech_wav(path: Path, seconds: float) -> bytes:
    """The visit, spoken by espeak-ng voices, repeated to ``seconds``; its PCM."""
    once = path.with_name("visit-once.wav")
    synthesize_dialogue(VISIT, once, voice_set="espeak")
    pcm = wav_to_pcm16k(once)
    need = int(seconds * RATE) * 2
    pcm = (pcm * (need // len(pcm) + 1))[:need]
    write_wav(path, pcm)
    return pcm


def _silent_wav(path: Path, seconds: float) -> None:
    """Digital zeros: what an unplugged or hardware-muted microphone reads."""
    write_wav(path, bytes(int(seconds * RATE) * 2))


# ------------------------------------------------------------------ the webhook

class _Webhook:
    """Alerts POSTed by the server, with when each arrived (wall clock)."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                hook.received.append((time.time(), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def raised(self, device_id: str, rule: str) -> tuple[float, dict[str, Any]] | None:
        return next(((at, b) for at, b in self.received if b.get("event") == "raised"
                     and b.get("device_id") == device_id and b.get("rule") == rule), None)

    def __enter__(self) -> _Webhook:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------ the fleet

def _report_every(room: Room, seconds: float) -> None:
    """IT's setting in the room's config: the agent sends its status this often."""
    with room.config.open("a", encoding="utf-8") as f:
        f.write(f"log_interval_s = {seconds}\n")


def _wait_connected(lab: RoomLab, device_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(d["id"] == device_id and d["connected"] for d in lab.api("/api/v1/devices")):
            return
        time.sleep(0.2)
    raise RuntimeError(f"device {device_id} did not connect within {timeout:g} s")


def _stopped_device(lab: RoomLab, room: Room, wav: Path, timeout: float = 60) -> float:
    """Stream ``wav`` to the end and let the agent exit; when it stopped (wall clock)."""
    agent = lab.start_agent(room, wav, speed=0)
    try:
        code = agent.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()
        raise RuntimeError(f"the exam-3 agent did not finish; see "
                           f"{room.config.with_name('agent.log')}") from None
    if code != 0:
        raise RuntimeError(f"the exam-3 agent exited {code}; see "
                           f"{room.config.with_name('agent.log')}")
    return time.time()


# ------------------------------------------------------------------ the page

def _watch(page: Any, failing: str, healthy: str, offline: str, started: float,
           hook: _Webhook, timeout: float) -> dict[str, Any]:
    """Poll the page (it refreshes itself) until the failing device and its alert show,
    the healthy device is ok and the stopped one is offline; first-seen times."""
    seen: dict[str, float] = {}
    last: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = page.evaluate(PAGE_STATE_JS, [failing, healthy, offline])
        now = time.time()
        row = last["devices"].get(failing) or {}
        silent = "silent" in row.get("reason", "")
        if silent and row.get("health") in ("warning", "failing"):
            seen.setdefault("ui_unhealthy", now)
        if silent and row.get("health") == "failing":
            seen.setdefault("ui_failing", now)
        if any(failing in a and "silent" in a for a in last["alerts"]):
            seen.setdefault("ui_alert", now)
        if (raised := hook.raised(failing, "silent_mic")) is not None:
            seen.setdefault("webhook", raised[0])
        others_ok = ((last["devices"].get(healthy) or {}).get("health") == "ok"
                     and "offline" in (last["devices"].get(offline) or {}).get("reason", ""))
        if {"ui_failing", "ui_alert", "webhook"} <= seen.keys() and others_ok:
            return {"seen": {k: round(v - started, 1) for k, v in seen.items()}, "page": last}
        page.wait_for_timeout(250)
    raise RuntimeError(f"the page did not show the failing device, its alert and the others "
                       f"within {timeout:g} s; seen {sorted(seen)}; last {json.dumps(last)}")


def _login(browser: Any, base: str, username: str, password: str) -> Any:
    context = browser.new_context(base_url=base, viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/rooms")
    return page


# ------------------------------------------------------------------ main

def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    visit_s = args.timeout + 120  # the live rooms outlast the wait
    speech, silence, short = (workdir / n for n in ("speech.wav", "silence.wav", "short.wav"))
    spoken = _speech_wav(speech, visit_s)
    _silent_wav(silence, visit_s)
    write_wav(short, spoken[:4 * RATE * 2])
    with _Webhook() as hook:
        settings = {
            "ROOMSCRIBE_FLEET_EVALUATE_EVERY_S": f"{args.evaluate_every_s:g}",
            "ROOMSCRIBE_FLEET_SILENT_WARN_MIN": f"{args.silent_warn_min:g}",
            "ROOMSCRIBE_FLEET_SILENT_FAIL_MIN": f"{args.silent_fail_min:g}",
            "ROOMSCRIBE_FLEET_OFFLINE_WARN_MIN": f"{args.offline_warn_min:g}",
            "ROOMSCRIBE_FLEET_CLINIC_HOURS": "Mon-Sun 00:00-24:00",
            "ROOMSCRIBE_FLEET_WEBHOOK_URLS": hook.url,
            "ROOMSCRIBE_ASR_ENGINE": "none",  # nobody consents here: nothing to transcribe
        }
        lab = RoomLab(workdir / "lab", extra_env=settings)
        agents: list[subprocess.Popen[bytes]] = []
        lab.start_server(timeout=120)
        try:
            clinic = lab.roomscribe("admin", "clinic", "add", CLINIC)["id"]
            admin = lab.roomscribe("review", "user", "add", "it_admin", "--clinic", clinic,
                                   "--role", "admin", "--name", "IT Admin")
            rooms = {r: lab.add_room(r, clinic=CLINIC) for r in ("exam-1", "exam-2", "exam-3")}
            for room in rooms.values():
                _report_every(room, args.report_every_s)
            healthy, failing, offline = (rooms[r].device_id for r in rooms)
            stopped_at = _stopped_device(lab, rooms["exam-3"], short)
            agents.append(lab.start_agent(rooms["exam-1"], speech, speed=1))
            _wait_connected(lab, healthy, 30)

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
                try:
                    page = _login(browser, lab.http_url, "it_admin", admin["password"])
                    launched = time.time()
                    agents.append(lab.start_agent(rooms["exam-2"], silence, speed=1))
                    watched = _watch(page, failing, healthy, offline, launched, hook,
                                     args.timeout)
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(args.out), full_page=True)
                finally:
                    browser.close()
            # the failure starts with the first silent frame the device captured: its
            # visit's start (device clock, this host's)
            visit = lab.encounters("exam-2")[0]
            started = visit["started_at_us"] / 1e6
            delivered = hook.raised(failing, "silent_mic")
            assert delivered is not None  # _watch waited for it
            at, body = delivered
        finally:
            for agent in agents:
                agent.terminate()
            for agent in agents:
                try:
                    agent.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    agent.kill()
                    agent.wait()
            lab.close()
    raised_at = datetime.fromisoformat(body["at"]).timestamp()
    shift = round(started - launched, 1)  # _watch timed from the agent's launch
    seen = {k: round(v - shift, 1) for k, v in watched["seen"].items()}
    delay_s = args.silent_fail_min * 60
    # the rule counts from the first report that reads silence (up to one report after
    # the first frame) and a sweep judges it (up to one interval later); plus the work of
    # a report and a sweep on a busy machine
    allowance_s = delay_s + args.report_every_s + args.evaluate_every_s + WORK_S
    alert_raised_s = round(raised_at - started, 1)
    return {
        "what": "Rooms page with a failing device (silent microphone), real server and agents "
                "on loopback; seconds from the first silent frame the device captured",
        "screenshot": str(args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT)
                          else args.out),
        "settings": {**{k: v for k, v in settings.items() if k != "ROOMSCRIBE_FLEET_WEBHOOK_URLS"},
                     "ROOMSCRIBE_FLEET_WEBHOOK_URLS": "http://127.0.0.1:<port>/alerts",
                     "agent log_interval_s": args.report_every_s},
        "devices": {"exam-1 (speech)": healthy, "exam-2 (silence)": failing,
                    "exam-3 (stopped)": offline},
        "seconds": {
            "agent_launch_to_first_frame": shift,
            "failure_visible_in_ui": seen["ui_unhealthy"],
            "failing_shown_in_ui": seen["ui_failing"],
            "alert_raised": alert_raised_s,
            "alert_delivered_to_webhook": round(at - started, 1),
            "alert_listed_in_ui": seen["ui_alert"],
            "alert_raised_to_listed_in_ui": round(seen["ui_alert"] - alert_raised_s, 1),
            "exam-3_offline_for": round(time.time() - stopped_at, 1),
        },
        "configured": {"silent_warn_s": args.silent_warn_min * 60, "silent_fail_s": delay_s,
                       "report_every_s": args.report_every_s,
                       "evaluate_every_s": args.evaluate_every_s, "page_refresh_s": 5},
        "targets": {
            "failure_visible_in_ui_within_30_s": seen["ui_unhealthy"] <= 30,
            "alert_within_delay_plus_one_report_and_sweep": alert_raised_s <= allowance_s,
            "alert_allowance_s": allowance_s,
        },
        "alert": {k: body[k] for k in ("event", "rule", "reason", "room_id", "text")},
        "page": watched["page"],
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _check_args(args)
    args.out = args.out.resolve()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run(args, args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="roomscribe-fleet-shot-") as tmp:
            result = run(args, Path(tmp))
    s = result["seconds"]
    print(f"screenshot: {result['screenshot']}")
    print(f"failure visible in the UI after {s['failure_visible_in_ui']} s (warning at "
          f"{result['configured']['silent_warn_s']:g} s), failing shown after "
          f"{s['failing_shown_in_ui']} s")
    print(f"alert raised after {s['alert_raised']} s (configured delay "
          f"{result['configured']['silent_fail_s']:g} s; allowance "
          f"{result['targets']['alert_allowance_s']:g} s), delivered after "
          f"{s['alert_delivered_to_webhook']} s, listed in the UI after "
          f"{s['alert_listed_in_ui']} s")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if all(v for k, v in result["targets"].items() if k.startswith(("failure",
                                                                              "alert_within")))\
        else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
