"""The rooms page's device actions in a real browser: an admin filters the fleet to its
failing device, opens its actions, is told a command cannot reach it (offline), issues
an enrolment code (shown once), revokes it after confirming, sees it leave the list and
finds the revoke, with their name, in the audit log. axe-core on the open dialog. With
the real agent connected: a command sent, the diagnostic bundle downloaded, a setting
changed and another refused with the agent's reason.

The harness (browser, login, axe) is tests/web/test_browser.py's; the pools page and its
audit trail are tests/web/test_fleet_browser.py's."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Browser, expect

from device.agent import Agent
from server.models import Device
from tests.review.world import World
from tests.server.test_device_actions import RunningAgent
from tests.support import Enrolled, ServerThread, enrol_device
from tests.web.fleet_world import build_fleet
from tests.web.test_browser import _axe, _login_any, browser

__all__ = ["browser"]

T = TypeVar("T")


def test_admin_filters_the_fleet_revokes_a_device_and_finds_it_in_the_audit_log(
        browser: Browser, server: ServerThread, world: World) -> None:
    fleet = build_fleet(world)
    page = _login_any(browser, server.http_url, "admin_north")
    page.locator("select[name=health]").select_option("failing")  # submits the filter
    page.wait_for_url("**/admin/rooms?*health=failing*")
    rows = page.locator("#rooms-rows tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(fleet.failing)

    rows.first.get_by_role("button", name="Actions for Pi exam-2b").click()
    dialog = page.get_by_role("dialog", name="Device Pi exam-2b")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(fleet.failing)
    _axe(page, "device actions dialog")

    dialog.get_by_role("button", name="Stop").click()  # it went offline 10 minutes ago
    expect(dialog.get_by_role("alert")).to_contain_text(f"{fleet.failing} is not connected")

    dialog.get_by_role("button", name="New enrolment code").click()
    shown = dialog.locator("#device-code-shown")
    expect(shown).to_contain_text("One-time enrolment code for Pi exam-2b: ")
    code = shown.inner_text().split(": ", 1)[1].split(" ", 1)[0]
    assert re.fullmatch(r"[A-Z0-9]{4}(-[A-Z0-9]{4}){3}", code), code

    dialog.get_by_role("button", name="Revoke…").click()
    confirm = dialog.get_by_role("group", name=re.compile("Revoke Pi exam-2b"))
    expect(confirm).to_be_visible()
    with world.db.session() as s:  # nothing happens before the confirmation
        device = s.get(Device, fleet.failing)
        assert device is not None and device.token_hash is not None
    confirm.get_by_role("button", name="Yes, revoke it").click()
    expect(dialog.get_by_role("status")).to_contain_text("Pi exam-2b is revoked")
    expect(dialog.get_by_role("button", name="Stop")).to_be_hidden()  # no more commands
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("No rooms match.")  # a revoked device is hidden
    with world.db.session() as s:
        device = s.get(Device, fleet.failing)
        assert device is not None and device.token_hash is None and device.revoked_at

    page.get_by_role("navigation", name="main").get_by_role("link", name="Audit log").click()
    page.get_by_label("Action").select_option("device_revoke")
    page.get_by_role("button", name="Filter").click()
    audit = page.locator("table.audit tbody tr")
    expect(audit).to_have_count(1)
    expect(audit.first).to_contain_text("admin_north")
    expect(audit.first).to_contain_text(f"enrolled -> revoked -> device {fleet.failing}")
    page.get_by_label("Action").select_option("device_code")
    page.get_by_role("button", name="Filter").click()
    expect(audit.first).to_contain_text("enrolment code issued")
    expect(audit.first).not_to_contain_text(code)


class AgentThread:
    """The real agent (tests/server/test_device_actions.py) in its own event loop, so the
    synchronous browser test can drive the page meanwhile."""

    def __init__(self, tmp_path: Path, server: ServerThread, dev: Enrolled) -> None:
        self.args = (tmp_path, server, dev)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.running: RunningAgent | None = None

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def __enter__(self) -> Agent:
        self.thread.start()

        async def start() -> Agent:
            self.running = RunningAgent(*self.args)
            return await self.running.__aenter__()

        return self._run(start())

    def __exit__(self, *_exc: object) -> None:
        try:
            if self.running is not None:
                self._run(self.running.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()


def test_admin_commands_a_device_downloads_its_diagnostics_and_changes_a_setting(
        browser: Browser, server: ServerThread, world: World, tmp_path: Path) -> None:
    dev = enrol_device(world.db, "exam-1")
    with AgentThread(tmp_path, server, dev) as agent:
        page = _login_any(browser, server.http_url, "admin_north")
        page.get_by_role("button", name=f"Actions for {dev.device_id}").click()
        dialog = page.get_by_role("dialog", name=f"Device {dev.device_id}")
        status = dialog.get_by_role("status")
        alert = dialog.get_by_role("alert")
        dialog.get_by_role("button", name="Start").click()
        expect(status).to_contain_text(f'Sent "start" to {dev.device_id}.')

        with page.expect_download() as download:
            dialog.get_by_role("button", name="Download diagnostics").click()
        saved = download.value
        assert saved.suggested_filename.startswith(f"roomscribe-diagnostics-{dev.device_id}-")
        bundle = Path(saved.path()).read_text()
        assert dev.token not in bundle
        assert json.loads(bundle)["config"]["device_id"] == dev.device_id
        expect(status).to_contain_text("Diagnostics of")

        form = dialog.locator("#device-config")
        form.get_by_label("Setting").fill("log_interval_s")
        form.get_by_label("Value").fill("15")
        form.get_by_role("button", name="Apply").click()
        expect(status).to_contain_text("applied log_interval_s = 15")
        assert agent.settings.log_interval_s == 15  # a number, not the text "15"
        form.get_by_label("Setting").fill("frame_ms")
        form.get_by_label("Value").fill("20")
        form.get_by_role("button", name="Apply").click()
        expect(alert).to_contain_text("The device refused the change")
        expect(alert).to_contain_text("restart the agent")
        assert agent.settings.frame_ms != 20
