"""Every endpoint checks role and clinic: over HTTP against the real server."""

from __future__ import annotations

import httpx
import pytest

from server import registry
from tests.review.world import PASSWORD, UserClient, World, add_encounter
from tests.support import ServerThread


@pytest.fixture
def item(world: World) -> str:
    _, item_id = add_encounter(world.db, "exam-1", seconds=2)
    assert item_id
    return item_id


def _paths(item: str) -> list[tuple[str, str]]:
    base = f"/api/v1/review/items/{item}"
    return [("GET", base), ("GET", f"{base}/transcript"), ("GET", f"{base}/audio.wav"),
            ("GET", f"{base}/versions"), ("GET", f"{base}/versions/1"), ("GET", f"{base}/fhir"),
            ("GET", f"{base}/diff"), ("GET", f"{base}/sign-review"),
            ("POST", f"{base}/claim"), ("POST", f"{base}/release"),
            ("POST", f"{base}/send"), ("POST", f"{base}/sign"), ("PUT", f"{base}/note")]


def _call(c: UserClient | httpx.Client, method: str, path: str) -> httpx.Response:
    if method == "PUT":
        return c.put(path, json={"base_version": 1})
    return c.request(method, path)


def test_anonymous_gets_401_everywhere(server: ServerThread, item: str) -> None:
    with httpx.Client(base_url=server.http_url) as c:
        for method, path in [*_paths(item), ("GET", "/api/v1/review/queue"),
                             ("GET", "/api/v1/admin/users"), ("GET", "/api/v1/admin/audit")]:
            assert _call(c, method, path).status_code == 401, path
        assert c.get("/queue", follow_redirects=False).headers["location"].startswith("/login")


def test_other_clinic_never_sees_an_item(server: ServerThread, item: str) -> None:
    for username in ("dr_south", "dave"):
        c = UserClient(server.http_url, username)
        assert c.get("/api/v1/review/queue").json() == []
        for method, path in _paths(item):
            r = _call(c, method, path)
            assert r.status_code == 404, (username, path, r.text)
        assert c.get(f"/items/{item}").status_code == 404


def test_partner_outside_the_pool_and_other_physician_see_nothing(server: ServerThread,
                                                                   item: str) -> None:
    for username in ("carol", "dr_other"):
        c = UserClient(server.http_url, username)
        assert c.get("/api/v1/review/queue").json() == []
        assert c.get(f"/api/v1/review/items/{item}").status_code == 404
        assert c.post(f"/api/v1/review/items/{item}/claim").status_code == 404


def test_admin_cannot_read_notes_transcripts_or_audio(server: ServerThread, item: str) -> None:
    admin = UserClient(server.http_url, "admin_north")
    for method, path in _paths(item):
        r = _call(admin, method, path)
        assert r.status_code == 403, (path, r.text)
    assert admin.get("/api/v1/review/queue").json() == []
    assert admin.get(f"/items/{item}").status_code == 403
    # ... but does manage users and reads the audit log of their clinic.
    assert admin.get("/api/v1/admin/users").status_code == 200
    assert admin.get("/api/v1/admin/audit").status_code == 200


def test_partner_cannot_sign_return_or_amend(server: ServerThread, item: str) -> None:
    alice = UserClient(server.http_url, "alice")
    assert alice.post(f"/api/v1/review/items/{item}/claim").status_code == 200
    r = alice.post(f"/api/v1/review/items/{item}/sign")
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert alice.post(f"/api/v1/review/items/{item}/send").status_code == 200
    r = alice.post(f"/api/v1/review/items/{item}/return", json={"comment": "x"})
    assert r.status_code == 403
    assert alice.post(f"/api/v1/review/items/{item}/sign").status_code == 403


def test_reviewers_cannot_administer(server: ServerThread, item: str) -> None:
    for username in ("alice", "dr_north"):
        c = UserClient(server.http_url, username)
        assert c.get("/api/v1/admin/users").status_code == 403
        assert c.get("/api/v1/admin/audit").status_code == 403
        r = c.post("/api/v1/admin/users", json={"username": "mallory", "password": "x" * 12,
                                                "clinic_id": "north-clinic", "role": "admin"})
        assert r.status_code == 403
        assert c.get("/admin/rooms").status_code == 403


def test_admin_manages_only_their_clinic(server: ServerThread, item: str) -> None:
    admin = UserClient(server.http_url, "admin_north")
    body = {"username": "erin", "clinic_id": "south-clinic", "role": "partner"}
    assert admin.post("/api/v1/admin/users", json=body).status_code == 403
    # an admin may not choose a partner's password: the account gets a one-time one
    chosen = body | {"clinic_id": "north-clinic", "password": "long enough pw"}
    assert admin.post("/api/v1/admin/users", json=chosen).status_code == 422
    r = admin.post("/api/v1/admin/users", json=body | {"clinic_id": "north-clinic"})
    assert r.status_code == 201
    assert set(r.json()) == {"id", "username", "display_name", "disabled", "memberships",
                             "password"} and len(r.json()["password"]) >= 12
    assert admin.post("/api/v1/admin/pools/south-general/members",
                      json={"username": "erin"}).status_code == 403
    users = admin.get("/api/v1/admin/users").json()
    assert "dave" not in {u["username"] for u in users}  # south's users stay hidden
    assert "password" not in str(users) and "argon2" not in str(users)
    assert admin.get("/api/v1/admin/audit", params={"clinic_id": "south-clinic"}
                     ).status_code == 404


def test_cookie_changes_need_the_csrf_token_api_tokens_do_not(server: ServerThread,
                                                              item: str) -> None:
    alice = UserClient(server.http_url, "alice")
    csrf = alice.http.headers.pop("X-CSRF-Token")
    r = alice.post(f"/api/v1/review/items/{item}/claim")
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    alice.http.headers["X-CSRF-Token"] = csrf[:-1] + ("0" if csrf[-1] != "0" else "1")
    assert alice.post(f"/api/v1/review/items/{item}/claim").status_code == 403
    alice.http.headers["X-CSRF-Token"] = csrf
    token = alice.post("/api/v1/auth/tokens", json={"name": "script"}).json()["token"]
    bot = UserClient(server.http_url, token=token)
    assert bot.get("/api/v1/auth/me").json()["username"] == "alice"
    assert bot.post(f"/api/v1/review/items/{item}/claim").status_code == 200
    bad = UserClient(server.http_url, token=token + "x")
    assert bad.get("/api/v1/review/queue").status_code == 401


def test_login_logout_and_wrong_password(server: ServerThread, item: str,
                                         world: World) -> None:
    with httpx.Client(base_url=server.http_url) as c:
        r = c.post("/api/v1/auth/login", json={"username": "alice", "password": "nope"})
        assert r.status_code == 401
        r = c.post("/api/v1/auth/login", json={"username": "nobody", "password": PASSWORD})
        assert r.status_code == 401 and r.json()["detail"] == "wrong username or password"
    alice = UserClient(server.http_url, "alice")
    cookie = alice.http.cookies.get("rs_session")
    assert cookie and alice.get("/api/v1/auth/me").status_code == 200
    assert alice.post("/api/v1/auth/logout").status_code == 204
    with httpx.Client(base_url=server.http_url, cookies={"rs_session": cookie}) as c:
        assert c.get("/api/v1/auth/me").status_code == 401  # the session is gone server-side
    admin = UserClient(server.http_url, "admin_north")
    actions = [e["action"] for e in admin.get("/api/v1/admin/audit").json()]
    assert {"login", "logout"} <= set(actions)
    # A failed login belongs to no clinic: the IT key (every clinic) sees it.
    with world.db.session() as s:
        key = registry.create_api_key(s, "it")
    it = UserClient(server.http_url, token=key)
    failed = it.get("/api/v1/admin/audit", params={"action": "login_failed"}).json()
    assert sorted(e["actor"] for e in failed) == ["alice", "nobody"]
