"""Server-rendered pages over plain HTTP (the browser test covers the scripts)."""

from __future__ import annotations

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
    assert "Send for signature" in editor and "Sign</button>" not in editor
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
