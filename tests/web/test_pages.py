"""Server-rendered pages over plain HTTP (the browser test covers the scripts)."""

from __future__ import annotations

import re

import httpx

from tests.review.world import PASSWORD, UserClient, World, add_encounter
from tests.support import ServerThread


def test_login_form_sets_a_safe_cookie_and_refuses_bad_logins(server: ServerThread) -> None:
    with httpx.Client(base_url=server.http_url) as c:
        assert "Log in" in c.get("/login").text
        r = c.post("/login", data={"username": "alice", "password": "wrong"})
        assert r.status_code == 401 and "wrong username or password" in r.text
        r = c.post("/login", data={"username": "alice", "password": PASSWORD},
                   headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and "rs_session" not in r.headers.get("set-cookie", "")
        r = c.post("/login", data={"username": "alice", "password": PASSWORD})
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
        assert c.get("/", follow_redirects=False).headers["location"] == "/queue"
    with httpx.Client(base_url=server.http_url) as c:
        assert 'name="next" value="/queue"' in c.get("/queue", follow_redirects=True).text
        for target, lands in (("/queue", "/queue"), ("//evil.example/x", "/"),
                              ("https://evil.example", "/")):
            r = c.post("/login", data={"username": "alice", "password": PASSWORD,
                                       "next": target})
            assert r.headers["location"] == lands


def test_queue_page_rows_and_admin_pages(server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    alice = UserClient(server.http_url, "alice")
    page = alice.get("/queue").text
    assert f'data-item="{item}"' in page and 'name="csrf-token" content="' in page
    rows = alice.get("/queue/rows", params={"state": "claimed"}).text
    assert "Nothing in the queue" in rows
    alice.post(f"/api/v1/review/items/{item}/claim")
    assert f'data-item="{item}"' in alice.get("/queue/rows", params={"mine": "1"}).text
    editor = alice.get(f"/items/{item}").text
    assert "Send for signature" in editor and 'id="review-sign"' not in editor
    # the name as said with its generic, the words said, the reason, the code, and the alert
    assert "zestril</span> <span class=\"generic\">(lisinopril)" in editor
    assert "zestril 10 mg once a day" in editor and 'value="high blood pressure"' in editor
    assert "DB00722" in editor
    assert "Verify against the audio: the recogniser was unsure it heard &#39;cbc&#39;" in editor
    assert alice.get("/admin/audit").status_code == 403

    admin = UserClient(server.http_url, "admin_north")
    assert admin.get("/", follow_redirects=False).headers["location"] == "/admin/rooms"
    audit = admin.get("/admin/audit", params={"action": "claim"}).text
    assert "alice" in audit and item[:8] in audit
    assert "Exam 2" in admin.get("/admin/rooms/rows").text


def _instruction_rows(page: str) -> dict[str, str]:
    """Each patient instruction's rendered fieldset, by id."""
    pattern = r'<fieldset class="instruction[^"]*" data-instruction="(i\d+)".*?</fieldset>'
    return {m[1]: m[0] for m in re.finditer(pattern, page, re.S)}


def test_item_page_lists_patient_instructions_escaped(server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    alice = UserClient(server.http_url, "alice")
    alice.post(f"/api/v1/review/items/{item}/claim")
    said = 'Call 911 if the <b>chest pain</b> & "tightness" last <script>alert(1)</script>'
    r = alice.put(f"/api/v1/review/items/{item}/note", json={
        "base_version": 1, "orders": [{"id": "o3", "decision": "rejected"}],
        "instructions": [{"id": None, "fields": {"kind": "warning", "text": said}}]})
    assert r.status_code == 200, r.text

    page = alice.get(f"/items/{item}").text
    assert '<h2 id="instructions-h">Patient instructions</h2>' in page
    assert "<script>alert(1)</script>" not in page and "<b>chest pain</b>" not in page
    rows = _instruction_rows(page)
    assert list(rows) == ["i1", "i2", "i3", "i4"]
    labels = [re.search(r'<legend class="kind-label">(.*?)</legend>', c)[1] for c in rows.values()]
    assert labels == ["Medication", "Test", "Referral", "When to get help"]
    assert ("Call 911 if the &lt;b&gt;chest pain&lt;/b&gt; &amp; &#34;tightness&#34; last "
            "&lt;script&gt;alert(1)&lt;/script&gt;</textarea>") in rows["i4"]
    assert "Verify against the audio: the recogniser was unsure it heard &#39;cbc&#39;" \
        in rows["i2"]
    assert 'class="ev" data-start="6.0" data-end="7.8" data-segments="3"' in rows["i1"]
    assert 'class="ev"' not in rows["i4"]  # added by hand: no evidence
    # the referral's order is rejected: its line is shown as left out; the others are not
    assert 'class="instruction left-out"' in rows["i3"]
    assert '<p class="left-out-note" >Left out' in rows["i3"]
    assert all('<p class="left-out-note" hidden>' in rows[i] for i in ("i1", "i2", "i4"))
    assert all('class="remove"' in c and "readonly" not in c for c in rows.values())
    assert 'id="add-instruction"' in page

    # bob (same pool, not holding the claim) reads the same lines and cannot change them
    page = UserClient(server.http_url, "bob").get(f"/items/{item}").text
    rows = _instruction_rows(page)
    assert list(rows) == ["i1", "i2", "i3", "i4"]
    assert all("readonly" in c and 'class="remove"' not in c for c in rows.values())
    assert 'id="add-instruction"' not in page and "<script>alert(1)</script>" not in page


def test_no_page_or_answer_with_phi_may_be_cached(server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    alice = UserClient(server.http_url, "alice")
    for url in ("/queue", "/queue/rows", f"/items/{item}", "/login",
                f"/api/v1/review/items/{item}", f"/api/v1/review/items/{item}/transcript",
                f"/api/v1/review/items/{item}/versions", "/api/v1/review/queue",
                f"/api/v1/review/items/{item}/audio.wav"):
        r = alice.get(url)
        assert r.headers.get("cache-control") == "no-store", (url, r.status_code)
        assert r.headers.get("pragma") == "no-cache"
    # the same for refusals and after logging out: the login redirect is not cached either
    alice.post("/api/v1/auth/logout")
    r = alice.get(f"/items/{item}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["cache-control"] == "no-store"
    assert alice.get(f"/api/v1/review/items/{item}").headers["cache-control"] == "no-store"
    # the script and style sheet carry nothing about a patient: the browser may keep them
    assert "no-store" not in alice.get("/static/app.js").headers.get("cache-control", "")
