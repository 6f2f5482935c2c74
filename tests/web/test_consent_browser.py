"""Consent in a real browser (chromium under the strict CSP): a physician records the
patient's consent on the review page and withdraws it through the confirm dialog (the
visit's audio, transcript and note are deleted); on the queue page they record consent
for a held visit, or discard one the patient refused. axe-core on both pages.

The harness (browser, login, axe) is tests/web/test_browser.py's."""

from __future__ import annotations

from playwright.sync_api import Browser, expect
from sqlalchemy import func, select

from server.models import AudioFrameRow, ConsentState, Encounter, EncounterStatus, utcnow
from server.review.models import AuditEvent, ReviewItem
from tests.review.world import World, add_encounter
from tests.support import ServerThread
from tests.web.test_browser import _axe, _login, browser

__all__ = ["browser"]


def _frames(world: World, enc: str) -> int:
    with world.db.session() as s:
        return s.scalar(select(func.count()).select_from(AudioFrameRow)
                        .where(AudioFrameRow.encounter_id == enc)) or 0


def _encounter(world: World, enc: str) -> Encounter:
    with world.db.session() as s:
        row = s.get(Encounter, enc)
        assert row is not None
        s.expunge(row)
        return row


def test_physician_records_then_withdraws_consent_on_the_review_page(
        browser: Browser, server: ServerThread, world: World) -> None:
    enc, item = add_encounter(world.db, "exam-1", seconds=2)
    page = _login(browser, server.http_url, "dr_north")
    page.goto(f"/items/{item}")
    panel = page.get_by_role("region", name="Consent to recording")
    expect(panel).to_contain_text("no consent recorded")
    _axe(page, "review page with the consent panel")
    panel.get_by_label("Obtained by").fill("Nurse <b>Kim</b>")
    panel.get_by_role("button", name="Record written consent").click()
    expect(panel).to_contain_text("consent written")
    expect(panel).to_contain_text("Obtained by Nurse <b>Kim</b>")  # text, not markup
    assert panel.locator("b").count() == 0
    expect(panel.get_by_role("button", name="Record verbal consent")).to_have_count(0)
    row = _encounter(world, enc)
    assert (row.consent_state, row.consent_method, row.consent_by, row.consent_source) == (
        ConsentState.GIVEN, "written", "Nurse <b>Kim</b>", "api")

    panel.get_by_role("button", name="Withdraw consent…").click()
    dialog = page.get_by_role("dialog", name="Withdraw the patient's consent?")
    expect(dialog).to_contain_text("audio, transcript and note")
    expect(dialog).to_contain_text("deleted now")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert _encounter(world, enc).consent_state == ConsentState.GIVEN  # nothing happened
    assert _frames(world, enc) == 20

    panel.get_by_role("button", name="Withdraw consent…").click()
    dialog.get_by_label("Reason (optional)").fill("the patient asked")
    dialog.get_by_role("button", name="Withdraw and delete").click()
    page.wait_for_url("**/queue")
    expect(page.locator("#toast")).to_contain_text("audio, transcript and note were deleted")
    assert _encounter(world, enc).consent_state == ConsentState.WITHDRAWN
    assert _frames(world, enc) == 0
    with world.db.session() as s:
        assert s.get(ReviewItem, item) is None
        actions = list(s.scalars(select(AuditEvent.action)
                                 .where(AuditEvent.encounter_id == enc)))
        assert actions.count("consent") == 1 and actions.count("consent_withdrawn") == 1


def _held(world: World) -> str:
    enc, _ = add_encounter(world.db, "exam-1", seconds=1, draft=False)
    with world.db.session() as s:
        row = s.get(Encounter, enc)
        assert row is not None
        row.status, row.ended_at_us, row.last_seq = EncounterStatus.RECORDING, None, None
        row.started_at_us = int(utcnow().timestamp() * 1e6)
    return enc


def test_physician_releases_or_discards_held_visits_from_the_queue(
        browser: Browser, server: ServerThread, world: World) -> None:
    kept, refused = _held(world), _held(world)
    page = _login(browser, server.http_url, "dr_north")
    held = page.get_by_role("region", name="Waiting for the patient's consent")
    expect(held.locator("tr[data-held]")).to_have_count(2)
    _axe(page, "queue with held visits")
    held.locator(f'tr[data-held="{kept}"]').get_by_role(
        "button", name="Record verbal consent").click()
    expect(held.locator(f'tr[data-held="{kept}"]')).to_have_count(0)
    expect(page.locator("#toast")).to_contain_text("Consent recorded")
    row = _encounter(world, kept)
    assert (row.consent_state, row.consent_method, row.consent_by) == (
        ConsentState.GIVEN, "verbal", "Dr North")

    held.locator(f'tr[data-held="{refused}"]').get_by_role("button", name="Discard").click()
    dialog = page.get_by_role("dialog", name="Withdraw the patient's consent?")
    dialog.get_by_role("button", name="Withdraw and delete").click()
    expect(held).to_be_hidden()  # the last one went
    expect(page.locator("#toast")).to_contain_text("audio is deleted")
    assert _encounter(world, refused).consent_state == ConsentState.WITHDRAWN
    assert _frames(world, refused) == 0 and _frames(world, kept) == 10
