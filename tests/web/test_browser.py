"""The web UI in a real browser: Debian's chromium driven by Playwright.

A partner logs in, claims a draft, edits it beside the transcript, plays the
evidence audio, saves and sends it; the physician — whose queue page updates
live meanwhile — opens it, signs it, and sees it leave the queue.

``playwright install`` is never needed: the test launches /usr/bin/chromium
(``scripts/setup.sh`` installs it). Set ROOMSCRIBE_SCREENSHOTS=DIR to keep
the screenshots it takes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select
from websockets.sync.client import connect as ws_connect

from protocol import Hello, Status, encode_event, parse_event
from server.models import Clinic, utcnow
from server.review.models import Appointment, ReviewItem, User
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


def _login(browser: Browser, base: str, username: str,
           viewport: dict[str, int] | None = None) -> Page:
    context = browser.new_context(base_url=base, viewport=viewport or DESKTOP)
    context.set_default_timeout(WAIT_MS)
    context.add_init_script(COUNT_CLICKS)
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


DESKTOP = {"width": 1440, "height": 900}
TABLET = {"width": 820, "height": 1180}
# Counts the clicks a person makes on a page (trusted events only), across page loads of
# the tab: the review's click budget is measured, not estimated.
COUNT_CLICKS = """
document.addEventListener("click", (e) => {
  if (!e.isTrusted) return;
  const n = Number(sessionStorage.getItem("clicks") || 0) + 1;
  sessionStorage.setItem("clicks", String(n));
}, true);
"""


def _clicks(page: Page) -> int:
    return int(page.evaluate("Number(sessionStorage.getItem('clicks') || 0)"))


def _reset_clicks(page: Page) -> None:
    page.evaluate("sessionStorage.setItem('clicks', '0')")


def _axe(page: Page, name: str) -> None:
    """axe-core on the page as it is now: no serious or critical violations."""
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in bad)


def _schedule(world: World, room: str, name: str, dob: str, mrn: str, reason: str) -> None:
    """A booked appointment starting now in ``room``: the visit recorded next links to it."""
    with world.db.session() as s:
        s.add(Appointment(clinic_id="north-clinic", room_id=room, starts_at=utcnow(),
                          duration_min=20, patient_name=name, patient_dob=dob,
                          patient_mrn=mrn, reason=reason))


@pytest.mark.parametrize("viewport", [DESKTOP, TABLET], ids=["desktop", "tablet"])
def test_partner_edits_adds_an_order_physician_reviews_and_signs(
        browser: Browser, server: ServerThread, world: World, settings: Settings,
        tmp_path: Path, viewport: dict[str, int]) -> None:
    size = "desktop" if viewport == DESKTOP else "tablet"
    with world.db.session() as s:  # times are shown in the clinic's zone, named
        clinic = s.get(Clinic, "north-clinic")
        assert clinic is not None
        clinic.timezone = "America/Chicago"
    _schedule(world, "exam-1", "Maria Lopez", "1961-04-02", "MRN-0042", "chest tightness")
    enc, item = add_encounter(world.db, "exam-1", seconds=10)
    physician = _login(browser, server.http_url, "dr_north", viewport)
    row = physician.locator(f'tr[data-item="{item}"]')
    expect(row).to_contain_text("ready")
    expect(row).to_contain_text("Maria Lopez")
    expect(row).to_contain_text("MRN-0042")

    partner = _login(browser, server.http_url, "alice", viewport)
    p_row = partner.locator(f'tr[data-item="{item}"]')
    expect(p_row).to_contain_text("Maria Lopez")
    _shot(partner, tmp_path, f"queue-partner-{size}")
    _axe(partner, "queue")
    _reset_clicks(partner)
    p_row.get_by_role("link", name="Open").click()
    partner.wait_for_url(f"**/items/{item}")
    header = partner.get_by_role("region", name="Patient and visit")
    expect(header).to_contain_text("Maria Lopez")
    expect(header).to_contain_text("1961-04-02")
    expect(header).to_contain_text("MRN-0042")
    expect(header).to_contain_text("Exam 1")
    expect(header).to_contain_text(re.compile(r"\d\d:\d\d C[SD]T"))
    partner.get_by_role("button", name="Claim").click()
    expect(partner.locator("#state-badge")).to_have_text("claimed")
    expect(partner.locator("#lease-text")).to_contain_text("Your claim ends in 19:")
    expect(row).to_contain_text("claimed")  # live on the physician's queue
    expect(row).to_contain_text("Alice")

    partner.get_by_role("button", name="Edit plan").click()
    partner.get_by_role("textbox", name="PLAN").fill(
        "Start lisinopril 20 mg daily. CBC today. Cardiology referral. Recheck in 2 weeks.")
    partner.get_by_role("button", name="Accept all undecided").click()
    partner.locator('fieldset[data-order="o3"]').get_by_label("Reject").check()
    partner.locator('fieldset[data-order="o1"] input[data-field="dose"]').fill("20")
    partner.get_by_role("button", name="Add order").click()
    new = partner.locator("fieldset.order").last
    new.get_by_label("Kind").select_option("lab")
    new.get_by_label("Name").fill("bmp")
    new.get_by_label("Reason").fill("on lisinopril")
    _axe(partner, "editor")
    _shot(partner, tmp_path, f"editor-partner-{size}")
    partner.get_by_role("button", name="Send for signature").click()  # saves, then sends
    partner.wait_for_url("**/queue")
    partner_clicks = _clicks(partner)
    expect(row).to_contain_text("awaiting signature")  # live on the physician's page

    _reset_clicks(physician)
    row.get_by_role("link", name="Open").click()
    physician.wait_for_url(f"**/items/{item}")
    p_plan = physician.get_by_role("region", name="PLAN")
    expect(p_plan.locator(".sent").first).to_contain_text("Start lisinopril 20 mg daily.")
    expect(p_plan.locator(".human-tag").first).to_have_text("edited by Alice")
    expect(physician.locator("#version-label")).to_have_text("2")
    expect(physician.locator('fieldset[data-order="o1"] legend')).to_contain_text("modified")
    expect(physician.locator('fieldset[data-order="o4"]')).to_contain_text("added by Alice")
    expect(physician.locator('fieldset[data-order="o4"] legend')).to_contain_text("bmp")
    physician.get_by_role("button", name="Review and sign…").click()
    dialog = physician.get_by_role("dialog", name="Review and sign")
    expect(dialog.locator("#sign-changes")).to_contain_text("Changed by Alice")
    expect(dialog.locator("#sign-changes ins").first).to_be_visible()
    expect(dialog.locator("#sign-changes")).to_contain_text("bmp")
    expect(dialog.locator("#sign-checks")).to_contain_text("Check the cbc order against the audio")
    expect(dialog.locator("#sign-checks li.blocker")).to_have_count(0)
    confirm = dialog.get_by_role("button", name="Sign", exact=True)
    expect(confirm).to_be_disabled()  # not before the attestation
    _shot(physician, tmp_path, f"sign-review-{size}")
    _axe(physician, "sign dialog")
    dialog.get_by_label(re.compile("I, Dr North, reviewed this note")).check()
    confirm.click()
    physician.wait_for_url("**/queue")
    physician_clicks = _clicks(physician)
    print(f"clicks ({size}): partner {partner_clicks}, physician {physician_clicks}")
    # the click budget: partner edit + send + physician sign (typing is not counted)
    assert partner_clicks + physician_clicks <= 12, (partner_clicks, physician_clicks)
    expect(physician.locator(f'tr[data-item="{item}"]')).to_have_count(0)

    # signed: read-only, amendments are an explicit action with a reason
    physician.goto(f"/items/{item}")
    expect(physician.locator("#signed-banner")).to_contain_text("Signed by Dr North")
    expect(physician.locator("#save")).to_be_hidden()
    expect(physician.get_by_role("button", name="Edit plan")).to_be_hidden()
    assert physician.locator('fieldset[data-order="o1"] input[data-field="dose"]').evaluate(
        "i => i.readOnly")
    expect(physician.locator(".attestation")).to_contain_text("including the changes made by Alice")
    # the partner's sentences are marked as theirs, with the AI's words they replaced
    p_plan.locator(".sent").nth(0).click()
    p_source = p_plan.get_by_role("region", name="Source of the sentence")
    expect(p_source).to_contain_text(
        "Changed by Alice. The AI wrote: “Start lisinopril 10 mg daily.”")
    expect(p_source).to_contain_text("Let's start lisinopril 10 milligrams once a day.")
    expect(p_plan.locator(".sent.human")).to_have_count(4)

    _shot(physician, tmp_path, f"signed-{size}")
    _axe(physician, "signed note")

    with world.db.session() as s:
        signed = s.get(ReviewItem, item)
        assert signed is not None and signed.state == "signed" and signed.version == 2
    bundle = json.loads((settings.fhir_outbox / f"{enc}-v2.json").read_text())
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "Patient" in kinds
    requests = [e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "ServiceRequest"]
    assert any(r["code"]["text"].lower() == "bmp" for r in requests)


def test_every_note_sentence_is_one_click_from_its_audio(
        browser: Browser, server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1", seconds=10)
    page = _login(browser, server.http_url, "alice")
    page.goto(f"/items/{item}")
    # the whole-visit player works from the start (not only after an evidence click)
    assert page.eval_on_selector("#player", "a => a.src").endswith(f"/items/{item}/audio.wav")
    # Linked evidence in place: the plan's second sentence shows its source and plays it.
    plan = page.get_by_role("region", name="PLAN")
    sentence = plan.locator(".sent").nth(1)
    expect(sentence).to_have_text("CBC and cardiology referral.")
    sentence.click()
    source = plan.get_by_role("region", name="Source of the sentence")
    expect(source).to_contain_text("I'll order a CBC and refer you to cardiology.")
    expect(page.locator("#seg-4")).to_have_class(re.compile(r"\bhit\b"))
    src = page.eval_on_selector("#player", "a => a.src")
    assert f"/api/v1/review/items/{item}/audio.wav?start=7.75&end=10.05" in src
    assert page.evaluate("s => fetch(s).then(r => r.status)", src) == 200
    # the transcript says which lines the note used
    expect(page.locator("#seg-4 .used-in")).to_have_text("In the note: Plan, Orders")
    expect(page.locator("#seg-0")).not_to_have_class(re.compile(r"\bused\b"))

    # every sentence with evidence plays its own span with one click
    for sent in page.locator(".sent").all():
        sent.click()
        start = float(sent.get_attribute("data-start") or "nan")
        src = page.eval_on_selector("#player", "a => a.src")
        assert f"start={max(0.0, start - 0.25):.2f}" in src
    # the timeline strip: a block per segment, the used ones marked; a click plays it
    ticks = page.locator("#timeline .tick")
    expect(ticks).to_have_count(5)
    expect(page.locator("#timeline .tick.used")).to_have_count(4)
    ticks.nth(4).click()
    assert "audio.wav?start=7.75&end=10.05" in page.eval_on_selector("#player", "a => a.src")
    # back to the whole visit
    page.get_by_role("button", name="Play the whole visit").click()
    assert page.eval_on_selector("#player", "a => a.src").endswith(f"/items/{item}/audio.wav")


def test_physician_cannot_sign_an_empty_assessment_without_acknowledging_then_amends(
        browser: Browser, server: ServerThread, world: World, tmp_path: Path) -> None:
    _, item = add_encounter(world.db, "exam-1")
    physician = _login(browser, server.http_url, "dr_north")
    physician.goto(f"/items/{item}")
    physician.get_by_role("button", name="Claim").click()
    expect(physician.locator("#state-badge")).to_have_text("claimed")
    for order in ("o1", "o2", "o3"):
        physician.locator(f'fieldset[data-order="{order}"]').get_by_label("Accept").check()
    assessment = physician.get_by_role("region", name="ASSESSMENT")
    assessment.get_by_role("button", name="Edit assessment").click()
    physician.get_by_role("textbox", name="ASSESSMENT").fill("")
    physician.get_by_role("button", name="Review and sign…").click()  # saves first
    dialog = physician.get_by_role("dialog", name="Review and sign")
    checks = dialog.locator("#sign-checks")
    expect(checks).to_contain_text("Assessment is empty")
    expect(checks).to_contain_text("No patient is linked to this visit")
    expect(checks).to_contain_text("Check the cbc order against the audio")
    confirm = dialog.get_by_role("button", name="Sign", exact=True)
    dialog.get_by_label(re.compile("I, Dr North, reviewed this note")).check()
    expect(confirm).to_be_disabled()  # two blockers not acknowledged
    boxes = checks.get_by_label("I acknowledge this and sign anyway")
    expect(boxes).to_have_count(2)
    boxes.nth(0).check()
    expect(confirm).to_be_disabled()
    boxes.nth(1).check()
    expect(confirm).to_be_enabled()
    confirm.click()
    physician.wait_for_url("**/queue")
    stored = UserClient(server.http_url, "dr_north").get(f"/api/v1/review/items/{item}").json()
    assert stored["state"] == "signed"
    assert stored["document"]["sections"][2]["text"] == ""

    physician.goto(f"/items/{item}")
    physician.get_by_role("button", name="Amend…").click()
    reason = physician.get_by_role("dialog", name="Amend the signed note")
    reason.get_by_role("button", name="Start amending").click()
    expect(physician.locator("#toast")).to_have_text("Give the reason for the amendment")
    reason.get_by_label("Reason for the amendment").fill("Assessment was left out")
    reason.get_by_role("button", name="Start amending").click()
    assessment.get_by_role("button", name="Edit assessment").click()
    physician.get_by_role("textbox", name="ASSESSMENT").fill("Hypertension, uncontrolled.")
    physician.get_by_role("button", name="Save amendment").click()
    physician.wait_for_load_state()
    expect(physician.locator(".history")).to_contain_text("amendment · Dr North")
    expect(physician.locator(".history")).to_contain_text("reason: “Assessment was left out”")
    expect(assessment.locator(".sent")).to_have_text(
        ["Hypertension, uncontrolled. added by Dr North"])


def test_session_expiry_mid_edit_recovers_without_losing_text(
        browser: Browser, server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    partner = _claimed(browser, server, item)
    plan = partner.get_by_role("region", name="PLAN")
    plan.get_by_role("button", name="Edit plan").click()
    typed = "Start lisinopril 10 mg daily. Home blood pressure log, bring it in two weeks."
    partner.get_by_role("textbox", name="PLAN").fill(typed)
    # the session ends behind the page's back (expired, or logged out in another tab)
    csrf = partner.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    assert partner.request.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).ok
    partner.get_by_role("button", name="Save", exact=True).click()
    relogin = partner.get_by_role("dialog", name="Log in again")
    expect(relogin).to_be_visible()
    expect(relogin.get_by_label("Username")).to_have_value("alice")
    relogin.get_by_label("Password").fill(PASSWORD)
    relogin.get_by_role("button", name="Log in").click()
    expect(relogin).to_be_hidden()
    expect(partner.get_by_role("textbox", name="PLAN")).to_have_value(typed)  # nothing lost
    partner.get_by_role("button", name="Save", exact=True).click()
    expect(partner.locator("#toast")).to_have_text("Saved as version 2")
    stored = UserClient(server.http_url, "alice").get(f"/api/v1/review/items/{item}").json()
    assert stored["document"]["sections"][3]["text"] == typed


def test_unsaved_text_survives_a_reload_and_logout_clears_it(
        browser: Browser, server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    partner = _claimed(browser, server, item)
    partner.get_by_role("region", name="PLAN").get_by_role("button", name="Edit plan").click()
    partner.get_by_role("textbox", name="PLAN").fill("Typed before the crash.")
    partner.locator('fieldset[data-order="o3"]').get_by_label("Reject").check()
    for _ in range(100):  # the autosave is debounced (wait_for_function would need eval: CSP)
        if partner.evaluate(
                "Object.keys(sessionStorage).some(k => k.startsWith('roomscribe-unsaved:'))"):
            break
        partner.wait_for_timeout(100)
    partner.once("dialog", lambda d: d.accept())  # "leave the page?"
    partner.reload()
    expect(partner.locator("#restore-banner")).to_contain_text("unsaved changes")
    expect(partner.get_by_role("textbox", name="PLAN")).to_have_value("Typed before the crash.")
    expect(partner.locator('fieldset[data-order="o3"]').get_by_label("Reject")).to_be_checked()
    partner.get_by_role("button", name="Log out").click()
    partner.wait_for_url("**/login")
    assert partner.evaluate(
        "Object.keys(sessionStorage).filter(k => k.startsWith('roomscribe'))") == []


def _claim_lapses_and_bob_saves(world: World, server: ServerThread, item: str) -> None:
    """The partner's claim lapses; bob claims the draft and saves a plan of his own."""
    with world.db.session() as s:
        row = s.get(ReviewItem, item)
        assert row is not None
        row.lease_expires_at = utcnow()
    bob = UserClient(server.http_url, "bob")
    assert bob.post(f"/api/v1/review/items/{item}/claim").status_code == 200
    assert bob.put(f"/api/v1/review/items/{item}/note",
                   json={"base_version": 1, "sections": {"plan": "Bob's plan."}}).status_code == 200


def test_second_tab_lease_countdown_and_someone_elses_save(
        browser: Browser, server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    partner = _claimed(browser, server, item)
    expect(partner.locator("#lease-text")).to_contain_text("Your claim ends in 19:")
    partner.get_by_role("button", name="Extend").click()
    expect(partner.locator("#toast")).to_have_text("Claim extended")
    second = partner.context.new_page()
    second.goto(f"/items/{item}")
    expect(second.locator("#tabs-banner")).to_be_visible()
    expect(partner.locator("#tabs-banner")).to_be_visible()
    second.close()
    expect(partner.locator("#tabs-banner")).to_be_hidden()

    # alice types; her claim lapses; bob claims and saves a different plan
    partner.get_by_role("region", name="PLAN").get_by_role("button", name="Edit plan").click()
    partner.get_by_role("textbox", name="PLAN").fill("Alice's plan.")
    _claim_lapses_and_bob_saves(world, server, item)
    box = partner.locator("#banner")
    expect(box).to_contain_text("Bob saved version 2")
    compare = box.locator(".compare")
    expect(compare).to_contain_text("Bob's plan.")
    expect(compare).to_contain_text("Alice's plan.")
    # her text is not reloaded away
    expect(partner.get_by_role("textbox", name="PLAN")).to_have_value("Alice's plan.")
    compare.get_by_role("button", name="Use theirs").click()
    expect(partner.get_by_role("textbox", name="PLAN")).to_have_value("Bob's plan.")


def test_keyboard_next_sentence_play_and_help(browser: Browser, server: ServerThread,
                                              world: World) -> None:
    _, item = add_encounter(world.db, "exam-1", seconds=10)
    page = _claimed(browser, server, item)
    page.locator(".sent").first.focus()
    page.keyboard.press("j")
    expect(page.locator(".sent").nth(1)).to_be_focused()
    expect(page.locator(".inline-ev").nth(1)).to_contain_text("chest tightness when I climb")
    page.keyboard.press("p")
    assert "audio.wav?start=1.75&end=4.05" in page.eval_on_selector("#player", "a => a.src")
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()


def test_tablet_targets_are_at_least_44_px(browser: Browser, server: ServerThread,
                                            world: World) -> None:
    _, item = add_encounter(world.db, "exam-1", seconds=10)
    page = _login(browser, server.http_url, "alice", TABLET)
    page.goto(f"/items/{item}")
    page.get_by_role("button", name="Claim").click()
    expect(page.locator("#state-badge")).to_have_text("claimed")
    small = page.evaluate("""() => [...document.querySelectorAll(
        'button, select, a.button, label.choice, input[data-field]')]
      .filter(e => e.offsetParent !== null && !e.closest('dialog:not([open])'))
      .map(e => [e.textContent.trim().slice(0, 30) || e.outerHTML.slice(0, 60),
                 e.getBoundingClientRect().height])
      .filter(([, h]) => h < 44)""")
    assert small == []
    # the action bar stays on screen at the bottom while scrolling a long page
    bar = page.get_by_role("toolbar", name="actions")
    page.mouse.wheel(0, 600)
    box = bar.bounding_box()
    assert box is not None and box["y"] + box["height"] <= TABLET["height"] + 1
    # evidence does not move the page: the transcript pane scrolls itself
    sentence = page.get_by_role("region", name="PLAN").locator(".sent").nth(1)
    sentence.scroll_into_view_if_needed()
    y = page.evaluate("scrollY")
    sentence.click()
    expect(page.locator("#seg-4")).to_have_class(re.compile(r"\bhit\b"))
    assert page.evaluate("scrollY") == y


def test_a_reviewer_links_the_patient_from_the_schedule(
        browser: Browser, server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")  # nobody was booked: no patient
    _schedule(world, "exam-1", "Ravi Patel", "1990-12-01", "MRN-7", "knee pain")
    page = _claimed(browser, server, item)
    expect(page.locator("#patient-name")).to_have_text("No patient linked")
    page.get_by_role("button", name="Link patient…").click()
    dialog = page.get_by_role("dialog", name="Who was this visit with?")
    dialog.get_by_label(re.compile("Ravi Patel")).check()
    dialog.get_by_role("button", name="Link this patient").click()
    expect(page.locator("#patient-name")).to_have_text("Ravi Patel")
    expect(page.get_by_role("region", name="Patient and visit")).to_contain_text("MRN-7")


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
        # two rooms; never-enrolled devices hidden: exam-1 is one "no device" row
        expect(rows).to_have_count(2)
        expect(rows.filter(has_text=device.device_id)).to_contain_text("listening")
        expect(rows.filter(has_text="Exam 1")).to_contain_text("no-device")
        _shot(admin, tmp_path, "rooms-admin")
        ws.send(encode_event(Status("idle").to_event()))
        # the page refreshes itself every 5 s
        expect(rows.filter(has_text=device.device_id)).to_contain_text("idle")
    expect(rows.filter(has_text=device.device_id)).to_contain_text("offline")
    admin.goto(f"/items/{item}")
    expect(admin.locator("main")).to_contain_text("no access to notes")
    assert admin.locator("nav a").all_inner_texts() == ["Rooms", "Users", "Pools", "Setup",
                                                        "Audit log"]


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
    expect(partner.locator("#seg-3")).to_have_class(re.compile(r"\bhit\b"))
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
    partner.get_by_role("button", name="Edit plan").click()
    section = partner.get_by_role("textbox", name="PLAN")
    section.fill(section.input_value() + " Reviewed by the partner.")
    partner.locator("#save").dblclick()
    expect(partner.locator("#toast")).to_contain_text("Saved as version 2")
    expect(partner.locator("#banner")).to_be_hidden()
    versions = UserClient(server.http_url, "alice").get(
        f"/api/v1/review/items/{item}/versions").json()
    assert [v["number"] for v in versions] == [1, 2]


def test_a_hostile_display_name_is_text_not_script(
        browser: Browser, server: ServerThread, world: World) -> None:
    """Stored XSS (issue 16, finding 5): a user's name reaches other users' pages only as
    text, and the page's CSP would refuse inline script anyway."""
    payload = '<img src=x onerror="window.__xss=1">Bob'
    with world.db.session() as s:
        for user in s.scalars(select(User).where(User.username == "bob")):
            user.display_name = payload
    _, item = add_encounter(world.db, "exam-1")
    partner = _claimed(browser, server, item)
    partner.get_by_role("button", name="Edit plan").click()
    partner.get_by_role("textbox", name="PLAN").fill("Alice's plan.")
    _claim_lapses_and_bob_saves(world, server, item)
    banner = partner.locator("#banner")
    expect(banner).to_contain_text(payload + " saved version 2")
    assert partner.evaluate("window.__xss") is None
    assert banner.locator("img").count() == 0
