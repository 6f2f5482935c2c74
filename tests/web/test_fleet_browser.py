"""Admin pages in a real browser. The fleet page: an admin sees the failing device and
its alert, filters the fleet by health, searches it, asks for revoked and
never-enrolled devices, and the filters survive the 5-second refresh. The pools page:
an admin adds a partner to a pool, removes another, and finds both in the audit log.
axe-core on both pages.

The harness (browser, login, axe) is tests/web/test_browser.py's."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from tests.review.world import World
from tests.support import ServerThread
from tests.web.fleet_world import build_fleet
from tests.web.test_browser import _axe, _login_any, browser

__all__ = ["browser"]


def test_admin_filters_the_fleet(browser: Browser, server: ServerThread, world: World) -> None:
    fleet = build_fleet(world)
    page = _login_any(browser, server.http_url, "admin_north")
    rows = page.locator("#rooms-rows tr")
    expect(rows).to_have_count(3)  # exam-1 (no enrolled device), exam-2, exam-3
    failing = rows.filter(has_text="Pi exam-2b")
    expect(failing.locator(".badge.health-failing")).to_have_text("failing")
    expect(failing).to_contain_text("offline 10 min during clinic hours")
    alerts = page.get_by_role("region", name="Open alerts")
    expect(alerts.locator("li.alert")).to_have_count(1)
    expect(alerts).to_contain_text("exam-2")
    _axe(page, "fleet page")

    page.locator("select[name=health]").select_option("failing")  # submits the form
    page.wait_for_url("**/admin/rooms?*health=failing*")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(fleet.failing)
    page.wait_for_timeout(5_500)  # one refresh: the filter holds
    expect(rows).to_have_count(1)

    page.locator("select[name=health]").select_option("")
    page.wait_for_url("**/admin/rooms?*")
    page.get_by_label("Search").fill("exam-3")
    page.get_by_label("Search").press("Enter")
    page.wait_for_url("**q=exam-3*")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Pi exam-3")

    page.get_by_label("Show revoked and never-enrolled devices").check()
    page.wait_for_url("**all=1*")
    expect(rows).to_have_count(2)  # exam-3's healthy device and its revoked one
    expect(rows.filter(has_text=fleet.revoked)).to_contain_text("revoked")


def test_admin_adds_a_partner_to_a_pool_and_sees_it_in_the_audit_log(
        browser: Browser, server: ServerThread, world: World) -> None:
    page = _login_any(browser, server.http_url, "admin_north")
    page.get_by_role("navigation", name="main").get_by_role("link", name="Pools").click()
    pool = page.locator('[data-pool="north-general"]')
    members = pool.get_by_role("list", name=re.compile("Members of"))
    expect(members).to_contain_text("bob")
    expect(members).not_to_contain_text("carol")
    _axe(page, "pools page")
    pool.get_by_label(re.compile("Add a member")).select_option("carol")
    pool.get_by_role("button", name="Add").click()
    expect(members).to_contain_text("carol")  # the page reloads with the new member
    pool.get_by_role("button", name="Remove bob from General").click()
    expect(members).not_to_contain_text("bob")
    page.get_by_role("navigation", name="main").get_by_role("link", name="Audit log").click()
    page.get_by_label("Action").select_option("pool_member")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.audit tbody tr")
    expect(rows.filter(has_text="member carol: out -> in")).to_contain_text("admin_north")
    expect(rows.filter(has_text="member bob: in -> out")).to_contain_text("admin_north")


def test_admin_creates_disables_and_resets_a_user(browser: Browser, server: ServerThread,
                                                  world: World) -> None:
    page = _login_any(browser, server.http_url, "admin_north")
    page.get_by_role("navigation", name="main").get_by_role("link", name="Users").click()
    _axe(page, "users page")
    form = page.locator("#user-create")
    form.get_by_label("Username", exact=True).fill("erin")
    form.get_by_label("Name", exact=True).fill("Erin Partner")
    form.get_by_label("Role").select_option("partner")
    form.get_by_role("button", name="Create").click()
    notice = page.locator("#users-password")
    expect(notice).to_contain_text("One-time password for erin: ")
    password = notice.inner_text().split(": ", 1)[1].split(" ", 1)[0]
    assert len(password) >= 12
    page.reload()
    row = page.locator('tr[data-user="erin"]')
    expect(row).to_contain_text("active")
    row.get_by_label("Role of erin in north-clinic").select_option("physician")
    expect(page.locator("#toast")).to_contain_text("erin is now physician in north-clinic")
    row.get_by_role("button", name="Disable erin").click()
    expect(row).to_contain_text("disabled")
    row.get_by_role("button", name="Enable erin").click()
    expect(row).to_contain_text("active")
    row.get_by_role("button", name="Reset the password of erin").click()
    expect(notice).to_contain_text("One-time password for erin: ")
    assert notice.inner_text().split(": ", 1)[1].split(" ", 1)[0] != password
    page.goto("/admin/audit")
    rows = page.locator("table.audit tbody tr")
    for action in ("user_add", "membership", "user_disable", "user_enable", "password"):
        expect(rows.filter(has_text=action).filter(has_text="erin").first).to_be_visible()


def test_admin_assigns_a_room_physician_and_adds_a_routing_rule(
        browser: Browser, server: ServerThread, world: World) -> None:
    page = _login_any(browser, server.http_url, "admin_north")
    page.get_by_role("navigation", name="main").get_by_role("link", name="Setup").click()
    _axe(page, "setup page")
    page.get_by_label("Physician of Exam 2").select_option("dr_north")
    expect(page.locator("#toast")).to_contain_text("dr_north now signs the notes of exam-2")
    form = page.locator("#rule-create")
    form.get_by_label("Priority").fill("10")
    form.locator("select[name=room_id]").select_option("exam-2")
    form.get_by_role("button", name="Add rule").click()
    rules = page.locator("#routing-rules tbody tr")
    expect(rules.filter(has_text="room exam-2")).to_contain_text("10")
    page.reload()
    expect(page.get_by_label("Physician of Exam 2")).to_have_value("dr_north")
    page.goto("/admin/audit")
    rows = page.locator("table.audit tbody tr")
    expect(rows.filter(has_text="room exam-2 physician: dr_other -> dr_north")).to_contain_text(
        "admin_north")
    expect(rows.filter(has_text="routing_rule").first).to_be_visible()
