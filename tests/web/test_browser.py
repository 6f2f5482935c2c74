"""The web UI in a real browser: Debian's chromium driven by Playwright.

A partner logs in, claims a draft, edits it beside the transcript, plays the
evidence audio, saves and sends it; the physician — whose queue page updates
live meanwhile — opens it, signs it, and sees it leave the queue.

``playwright install`` is never needed: the test launches /usr/bin/chromium
(``scripts/setup.sh`` installs it). Set ROOMSCRIBE_SCREENSHOTS=DIR to keep
the screenshots it takes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from websockets.sync.client import connect as ws_connect

from protocol import Hello, Status, encode_event, parse_event
from server.review.models import ReviewItem
from server.settings import Settings
from tests.review.world import PASSWORD, UserClient, World, add_encounter
from tests.support import ServerThread, enrol_device

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT_MS = 10_000  # every wait in the browser is bounded
expect.set_options(timeout=WAIT_MS)

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)",
                allow_module_level=True)



@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=30_000)
        try:
            yield b
        finally:
            b.close()


def _login(browser: Browser, base: str, username: str) -> Page:
    context = browser.new_context(base_url=base, viewport={"width": 1400, "height": 950})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto("/queue")  # not logged in: sent to the login page
    assert "/login" in page.url
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/queue")
    return page


def _shot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    keep = os.environ.get("ROOMSCRIBE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


def test_partner_edits_and_sends_physician_signs(browser: Browser, server: ServerThread,
                                                 world: World, settings: Settings,
                                                 tmp_path: Path) -> None:
    enc, item = add_encounter(world.db, "exam-1", seconds=10)
    physician = _login(browser, server.http_url, "dr_north")
    row = physician.locator(f'tr[data-item="{item}"]')
    expect(row).to_contain_text("ready")

    partner = _login(browser, server.http_url, "alice")
    p_row = partner.locator(f'tr[data-item="{item}"]')
    expect(p_row).to_contain_text("Exam 1")
    _shot(partner, tmp_path, "queue-partner")
    p_row.get_by_role("link", name="Open").click()
    partner.wait_for_url(f"**/items/{item}")
    partner.get_by_role("button", name="Claim").click()
    expect(partner.locator("#state-badge")).to_have_text("claimed")
    # Live: the physician's queue shows the claim without a reload.
    expect(row).to_contain_text("claimed")
    expect(row).to_contain_text("Alice")

    # Evidence: the plan's second sentence jumps to segment 4 and plays its audio span.
    partner.locator("details.evidence").nth(3).locator("summary").click()
    partner.locator("details.evidence").nth(3).locator("button.ev").nth(1).click()
    expect(partner.locator("#seg-4")).to_have_class("seg speaker-doctor hit")
    src = partner.eval_on_selector("#player", "a => a.src")
    assert f"/api/v1/review/items/{item}/audio.wav?start=7.75&end=10.05" in src
    status = partner.evaluate("s => fetch(s).then(r => r.status)", src)
    assert status == 200

    plan = partner.get_by_label("PLAN")
    plan.fill("Start lisinopril 20 mg daily. CBC today. Cardiology referral.")
    for order in ("o1", "o2"):
        partner.locator(f'fieldset[data-order="{order}"]').get_by_label("Accept").check()
    partner.locator('fieldset[data-order="o3"]').get_by_label("Reject").check()
    partner.locator('fieldset[data-order="o1"] input[data-field="dose"]').fill("20")
    partner.get_by_role("button", name="Save", exact=True).click()
    expect(partner.locator("#toast")).to_have_text("Saved as version 2")
    expect(partner.locator("#version-label")).to_have_text("2")
    expect(partner.locator('fieldset[data-order="o1"] legend')).to_contain_text("modified")
    _shot(partner, tmp_path, "editor-partner")
    partner.get_by_role("button", name="Send for signature").click()
    partner.wait_for_url("**/queue")
    expect(p_row).to_contain_text("awaiting signature")
    expect(row).to_contain_text("awaiting signature")  # live on the physician's page

    row.get_by_role("link", name="Open").click()
    physician.wait_for_url(f"**/items/{item}")
    expect(physician.get_by_label("PLAN")).to_have_value(
        "Start lisinopril 20 mg daily. CBC today. Cardiology referral.")
    expect(physician.locator('fieldset[data-order="o1"]')).to_contain_text("modified")
    _shot(physician, tmp_path, "editor-physician")
    physician.get_by_role("button", name="Sign").click()
    physician.wait_for_url("**/queue")
    expect(physician.locator(f'tr[data-item="{item}"]')).to_have_count(0)
    expect(physician.locator("#queue-rows")).to_contain_text("Nothing in the queue")
    _shot(physician, tmp_path, "queue-physician-after-sign")

    with world.db.session() as s:
        signed = s.get(ReviewItem, item)
        assert signed is not None and signed.state == "signed" and signed.version == 2
    assert (settings.fhir_outbox / f"{enc}-v2.json").exists()


def test_admin_sees_rooms_live_and_no_notes(browser: Browser, server: ServerThread,
                                            world: World, tmp_path: Path) -> None:
    _, item = add_encounter(world.db, "exam-1")
    device = enrol_device(world.db, room_id="exam-2")
    with ws_connect(server.ws_url, open_timeout=5) as ws:
        hello = Hello(device.device_id, device.token, device.room_id, "test")
        ws.send(encode_event(hello.to_event()))
        assert parse_event(ws.recv(timeout=5)).TYPE == "ready"
        ws.send(encode_event(Status("listening").to_event()))
        admin = _login_any(browser, server.http_url, "admin_north")
        admin.goto("/admin/rooms")
        rows = admin.locator("#rooms-rows tr")
        expect(rows).to_have_count(3)  # two rooms, exam-2 with two devices
        expect(rows.filter(has_text=device.device_id)).to_contain_text("listening")
        expect(rows.filter(has_text="Pi exam-1")).to_contain_text("not-enrolled")
        _shot(admin, tmp_path, "rooms-admin")
        ws.send(encode_event(Status("idle").to_event()))
        # the page refreshes itself every 5 s
        expect(rows.filter(has_text=device.device_id)).to_contain_text("idle")
    expect(rows.filter(has_text=device.device_id)).to_contain_text("offline")
    admin.goto(f"/items/{item}")
    expect(admin.locator("main")).to_contain_text("no access to notes")
    assert admin.locator("nav a").all_inner_texts() == ["Rooms", "Audit log"]


def _login_any(browser: Browser, base: str, username: str) -> Page:
    context = browser.new_context(base_url=base)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/rooms")
    return page


def _claimed(browser: Browser, server: ServerThread, item: str) -> Page:
    partner = _login(browser, server.http_url, "alice")
    partner.goto(f"/items/{item}")
    partner.get_by_role("button", name="Claim").click()
    expect(partner.locator("#state-badge")).to_have_text("claimed")
    return partner


def test_partner_edits_removes_and_adds_patient_instructions(
        browser: Browser, server: ServerThread, world: World, tmp_path: Path) -> None:
    _, item = add_encounter(world.db, "exam-1", seconds=10)
    partner = _claimed(browser, server, item)
    panel = partner.get_by_role("region", name="Patient instructions")
    rows = panel.locator("fieldset[data-instruction]")
    expect(rows.locator("legend")).to_have_text(["Medication", "Test", "Referral"])
    i1, i2 = rows.nth(0), rows.nth(1)
    expect(i2.locator(".verify")).to_contain_text("unsure it heard 'cbc'")
    # the evidence chip plays what was said and marks it in the transcript
    i1.get_by_role("button", name="▶ said at 6.0 s").click()
    expect(partner.locator("#seg-3")).to_have_class("seg speaker-doctor hit")
    assert "audio.wav?start=5.75&end=8.05" in partner.eval_on_selector("#player", "a => a.src")

    i1.get_by_label("Instruction text").fill("Take lisinopril 20 mg once a day,  in the morning.")
    i2.get_by_role("button", name="Remove").press("Enter")  # keyboard works
    expect(i2.get_by_role("button", name="Remove")).to_have_attribute("aria-pressed", "true")
    expect(i2.locator(".removed-note")).to_be_visible()
    add = panel.get_by_role("group", name="Add instruction")
    add.get_by_label("Kind").select_option(label="When to get help")
    add.get_by_label("Text").fill("Call 911 if the <b>chest pain</b> lasts over 5 minutes.")
    add.get_by_label("Text").press("Enter")
    expect(rows).to_have_count(4)
    expect(rows.nth(3).locator("legend")).to_have_text("When to get help")
    expect(add.get_by_label("Text")).to_have_value("")

    with partner.expect_request(lambda r: r.method == "PUT") as sent:
        partner.get_by_role("button", name="Save", exact=True).click()
    expect(partner.locator("#toast")).to_have_text("Saved as version 2")
    new_text = "Call 911 if the <b>chest pain</b> lasts over 5 minutes."
    assert sent.value.post_data_json["instructions"] == [  # only what changed
        {"id": "i1", "fields": {"text": "Take lisinopril 20 mg once a day,  in the morning."}},
        {"id": "i2", "remove": True},
        {"id": None, "fields": {"kind": "warning", "text": new_text}}]
    # the page shows what the server stored: i2 gone, the new line is i4, spaces squeezed
    expect(rows).to_have_count(3)
    expect(rows.nth(2)).to_have_attribute("data-instruction", "i4")
    expect(i1.get_by_label("Instruction text")).to_have_value(
        "Take lisinopril 20 mg once a day, in the morning.")
    _shot(partner, tmp_path, "instructions-partner")

    partner.reload()
    expect(rows.locator("legend")).to_have_text(["Medication", "Referral", "When to get help"])
    assert [r.get_attribute("data-instruction") for r in rows.all()] == ["i1", "i3", "i4"]
    assert [r.input_value() for r in rows.get_by_label("Instruction text").all()] == [
        "Take lisinopril 20 mg once a day, in the morning.", "See cardiology (referral).",
        new_text]
    stored = UserClient(server.http_url, "alice").get(f"/api/v1/review/items/{item}").json()
    assert [(n["id"], n["kind"], n["text"]) for n in stored["document"]["instructions"]] == [
        ("i1", "medication", "Take lisinopril 20 mg once a day, in the morning."),
        ("i3", "referral", "See cardiology (referral)."), ("i4", "warning", new_text)]


def test_instruction_of_a_rejected_order_is_shown_left_out(
        browser: Browser, server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1", seconds=10)
    partner = _claimed(browser, server, item)
    referral = partner.locator('fieldset[data-instruction="i3"]')
    note = referral.get_by_text("Left out: its order is rejected")
    expect(note).to_be_hidden()
    # rejecting the cardiology referral (o3) leaves its line out at once, and no other
    partner.locator('fieldset[data-order="o3"]').get_by_label("Reject").check()
    expect(note).to_be_visible()
    expect(referral).to_have_class("instruction left-out")
    expect(partner.locator("fieldset.instruction.left-out")).to_have_count(1)
    partner.get_by_role("button", name="Save", exact=True).click()
    expect(partner.locator("#toast")).to_have_text("Saved as version 2")
    partner.reload()  # rendered from the stored decision
    expect(note).to_be_visible()
    assert referral.get_by_label("Instruction text").evaluate(
        "t => getComputedStyle(t).textDecorationLine") == "line-through"
    partner.locator('fieldset[data-order="o3"]').get_by_label("Accept").check()
    expect(note).to_be_hidden()
    expect(partner.locator("fieldset.instruction.left-out")).to_have_count(0)


def test_after_log_out_back_shows_no_phi(browser: Browser, server: ServerThread,
                                         world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    page = _login(browser, server.http_url, "alice")
    page.goto(f"/items/{item}")
    said = page.locator("aside.transcript li").first.inner_text()
    assert said.strip()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    page.go_back()  # a shared workstation: the next person presses Back
    page.wait_for_load_state()
    assert "/login" in page.url
    assert said not in page.content()


def test_an_ended_session_is_said_and_the_page_is_not_replaced(
        browser: Browser, server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    page = _login(browser, server.http_url, "alice")
    rows = page.locator("#queue-rows")
    expect(rows).to_contain_text("Exam 1")
    expect(page.locator("#live-status")).to_have_text("● live")
    # the session ends behind the page's back (another tab logged out, or it expired)
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    assert page.request.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).ok
    # someone else's change makes the queue refresh itself
    bob = UserClient(server.http_url, "bob")
    assert bob.post(f"/api/v1/review/items/{item}/claim").status_code == 200
    ended = page.locator("#session-ended")
    expect(ended).to_be_visible()
    assert ended.locator("a").get_attribute("href") == "/login?next=%2Fqueue"
    expect(rows).to_contain_text("Exam 1")  # the rows stay; no login form pasted in
    assert page.locator("#queue-rows form").count() == 0


def test_a_double_clicked_save_is_one_version_and_no_conflict(
        browser: Browser, server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    partner = _claimed(browser, server, item)
    section = partner.locator("textarea[data-section]").first
    section.fill(section.input_value() + " Reviewed by the partner.")
    partner.locator("#save").dblclick()
    expect(partner.locator("#toast")).to_contain_text("Saved as version 2")
    expect(partner.locator("#banner")).to_be_hidden()
    versions = UserClient(server.http_url, "alice").get(
        f"/api/v1/review/items/{item}/versions").json()
    assert [v["number"] for v in versions] == [1, 2]
