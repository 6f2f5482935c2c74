"""Taking access away, and no self-granted access to patient data (issue 16, parts 3
and 4), against a real server on loopback and through the CLIs.

Disabling a user ends their live session and tokens at once; a password change ends
the other sessions and every token; user tokens and IT API keys are listed (never
shown) and revoked; a membership is dropped; an admin cannot give themselves (or an
admin-only account) a clinical role, nor choose a clinician's password; every admin
change is audited ``old -> new``.
"""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest

from server import registry
from server.cli import main as roomscribe
from server.review.cli import main as review
from server.settings import Settings
from tests.review.world import PASSWORD, UserClient, World
from tests.support import ServerThread

ADMIN = "/api/v1/admin"


@pytest.fixture
def admin(server: ServerThread) -> UserClient:
    return UserClient(server.http_url, "admin_north")


@pytest.fixture
def it_key(world: World) -> str:
    with world.db.session() as s:
        return registry.create_api_key(s, "it")


def _token(client: UserClient, name: str = "script") -> str:
    r = client.post("/api/v1/auth/tokens", json={"name": name})
    assert r.status_code == 201
    return str(r.json()["token"])


def _status(server: ServerThread, *, cookie: str = "", token: str = "") -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    cookies = {"rs_session": cookie} if cookie else {}
    with httpx.Client(base_url=server.http_url, headers=headers, cookies=cookies) as c:
        return c.get("/api/v1/auth/me").status_code


def _login(server: ServerThread, username: str, password: str = PASSWORD) -> int:
    return httpx.post(server.http_url + "/api/v1/auth/login",
                      json={"username": username, "password": password}).status_code


def _audit(admin: UserClient, action: str) -> list[str]:
    r = admin.get(f"{ADMIN}/audit", params={"action": action})
    assert r.status_code == 200
    return [f"{e['actor']}: {e['detail']}" for e in r.json()]


def test_disabling_a_user_ends_their_session_and_tokens_at_once(server: ServerThread,
                                                                admin: UserClient) -> None:
    alice = UserClient(server.http_url, "alice")
    cookie, token = alice.http.cookies["rs_session"], _token(alice)
    assert _status(server, cookie=cookie) == 200 and _status(server, token=token) == 200
    r = admin.post(f"{ADMIN}/users/alice/disable")
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert _status(server, cookie=cookie) == 401 and _status(server, token=token) == 401
    assert _login(server, "alice") == 401
    assert admin.post(f"{ADMIN}/users/admin_north/disable").status_code == 403  # not yourself
    r = admin.post(f"{ADMIN}/users/alice/enable")
    assert r.status_code == 200 and r.json()["disabled"] is False
    assert _login(server, "alice") == 200
    assert _status(server, cookie=cookie) == 401 and _status(server, token=token) == 401
    assert any("enabled -> disabled" in line for line in _audit(admin, "user_disable"))
    assert any("disabled -> enabled" in line for line in _audit(admin, "user_enable"))


def test_a_password_change_ends_the_other_sessions_and_every_token(server: ServerThread,
                                                                   admin: UserClient) -> None:
    here, there = UserClient(server.http_url, "alice"), UserClient(server.http_url, "alice")
    token = _token(here)
    r = here.post("/api/v1/auth/password", json={"old_password": "not it at all",
                                                 "new_password": "a new passphrase 7"})
    assert r.status_code == 401
    r = here.post("/api/v1/auth/password", json={"old_password": PASSWORD,
                                                 "new_password": "a new passphrase 7"})
    assert r.status_code == 200 and r.json()["ended"] == 2  # the other session, the token
    assert here.get("/api/v1/auth/me").status_code == 200  # this session stays
    assert there.get("/api/v1/auth/me").status_code == 401
    assert _status(server, token=token) == 401
    assert _login(server, "alice") == 401
    assert _login(server, "alice", "a new passphrase 7") == 200
    assert any("changed by its user" in line for line in _audit(admin, "password"))


def test_an_admin_reset_gives_a_one_time_password_and_ends_everything(
        server: ServerThread, admin: UserClient) -> None:
    bob = UserClient(server.http_url, "bob")
    r = admin.post(f"{ADMIN}/users/bob/password")
    assert r.status_code == 200
    one_time = r.json()["password"]
    assert bob.get("/api/v1/auth/me").status_code == 401
    assert _login(server, "bob") == 401 and _login(server, "bob", one_time) == 200
    assert admin.post(f"{ADMIN}/users/dave/password").status_code == 404  # another clinic
    assert admin.post(f"{ADMIN}/users/admin_north/password").status_code == 403


def test_user_tokens_are_listed_without_secrets_and_revoked(server: ServerThread,
                                                            admin: UserClient) -> None:
    alice = UserClient(server.http_url, "alice")
    first, second = _token(alice, "ehr"), _token(alice, "backup")
    mine = alice.get("/api/v1/auth/tokens").json()
    assert [t["name"] for t in mine] == ["backup", "ehr"]
    assert first not in str(mine) and "hash" not in str(mine)
    assert alice.delete(f"/api/v1/auth/tokens/{mine[1]['id']}").status_code == 204
    assert _status(server, token=first) == 401 and _status(server, token=second) == 200
    listed = admin.get(f"{ADMIN}/users/alice/tokens").json()
    assert {t["name"]: t["revoked_at"] is not None for t in listed} == {"ehr": True,
                                                                        "backup": False}
    assert admin.delete(f"{ADMIN}/users/alice/tokens/{mine[0]['id']}").status_code == 204
    assert _status(server, token=second) == 401
    assert admin.get(f"{ADMIN}/users/dave/tokens").status_code == 404  # another clinic
    assert len(_audit(admin, "token_revoke")) == 2


def test_it_api_keys_are_listed_and_revoked(server: ServerThread, world: World,
                                            it_key: str) -> None:
    with world.db.session() as s:
        spare = registry.create_api_key(s, "spare")
    it = httpx.Client(base_url=server.http_url, headers={"Authorization": f"Bearer {it_key}"})
    keys = it.get("/api/v1/api-keys").json()
    assert [k["name"] for k in keys] == ["it", "spare"]
    assert it_key not in str(keys) and spare not in str(keys) and "hash" not in str(keys)
    r = it.post(f"/api/v1/api-keys/{keys[1]['id']}/revoke")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    with httpx.Client(base_url=server.http_url,
                      headers={"Authorization": f"Bearer {spare}"}) as c:
        assert c.get("/api/v1/clinics").status_code == 401
        assert c.get(f"{ADMIN}/users").status_code == 401
    assert it.get("/api/v1/clinics").status_code == 200
    trail = it.get(f"{ADMIN}/audit", params={"action": "api_key_revoke"}).json()
    assert [e["actor"] for e in trail] == ["api-key:it"]
    assert it.post("/api/v1/api-keys/999/revoke").status_code == 404
    it.close()


def test_dropping_a_membership_takes_the_clinic_away_at_once(server: ServerThread,
                                                             admin: UserClient) -> None:
    alice = UserClient(server.http_url, "alice")
    assert alice.get("/api/v1/auth/me").json()["roles"] == {"north-clinic": "partner"}
    assert admin.delete(f"{ADMIN}/users/alice/memberships/north-clinic").status_code == 204
    assert alice.get("/api/v1/auth/me").json()["roles"] == {}
    assert alice.get("/api/v1/review/queue").json() == []
    assert admin.delete(f"{ADMIN}/users/alice/memberships/north-clinic").status_code == 404
    assert admin.delete(f"{ADMIN}/users/dave/memberships/south-clinic").status_code == 403
    assert any("partner -> none" in line for line in _audit(admin, "membership_remove"))


def test_an_admin_cannot_grant_themselves_patient_data(server: ServerThread,
                                                       admin: UserClient) -> None:
    for role in ("physician", "partner"):
        r = admin.post(f"{ADMIN}/memberships", json={"username": "admin_north",
                                                     "clinic_id": "north-clinic", "role": role})
        assert r.status_code == 403, r.text
    # ... nor through an admin-only account whose password they chose
    r = admin.post(f"{ADMIN}/users", json={"username": "sock", "password": "my own choice 1",
                                           "clinic_id": "north-clinic", "role": "admin"})
    assert r.status_code == 201 and r.json()["password"] is None
    r = admin.post(f"{ADMIN}/memberships", json={"username": "sock",
                                                 "clinic_id": "north-clinic",
                                                 "role": "physician"})
    assert r.status_code == 403
    # ... nor by choosing a new clinician's password
    body = {"username": "dr_new", "clinic_id": "north-clinic", "role": "physician"}
    assert admin.post(f"{ADMIN}/users", json=body | {"password": "i know this 1"}
                      ).status_code == 422
    r = admin.post(f"{ADMIN}/users", json=body)
    assert r.status_code == 201 and len(r.json()["password"]) >= 12
    assert _login(server, "dr_new", r.json()["password"]) == 200
    assert _login(server, "admin_north") == 200
    me = UserClient(server.http_url, "admin_north").get("/api/v1/auth/me").json()
    assert me["roles"] == {"north-clinic": "admin"}
    # a clinician may be given another clinical role (carol: partner -> physician)
    r = admin.post(f"{ADMIN}/memberships", json={"username": "carol",
                                                 "clinic_id": "north-clinic",
                                                 "role": "physician"})
    assert r.status_code == 201


def test_every_admin_change_is_audited_old_to_new(server: ServerThread,
                                                  admin: UserClient) -> None:
    admin.post(f"{ADMIN}/users", json={"username": "pat", "clinic_id": "north-clinic",
                                       "role": "partner"})
    admin.post(f"{ADMIN}/memberships", json={"username": "carol", "clinic_id": "north-clinic",
                                             "role": "admin"})
    admin.post(f"{ADMIN}/pools", json={"clinic_id": "north-clinic", "name": "Cardio"})
    admin.post(f"{ADMIN}/pools/north-clinic-cardio/members", json={"username": "pat"})
    admin.delete(f"{ADMIN}/pools/north-clinic-cardio/members/pat")
    admin.post(f"{ADMIN}/routing-rules", json={"pool_id": "north-clinic-cardio",
                                               "room_id": "exam-2", "priority": 5})
    admin.post(f"{ADMIN}/room-physicians", json={"room_id": "exam-2", "username": "dr_north"})
    expected = {
        "user_add": "admin_north: user pat in north-clinic: none -> partner (one-time password)",
        "membership": "admin_north: user carol in north-clinic: partner -> admin",
        "pool": "admin_north: pool north-clinic-cardio: none -> 'Cardio'",
        "pool_member": "admin_north: pool north-clinic-cardio member pat: in -> out",
        "routing_rule": "-> pool north-clinic-cardio, priority 5, room exam-2",
        "room_physician": "admin_north: room exam-2 physician: dr_other -> dr_north",
    }
    for action, text in expected.items():
        trail = _audit(admin, action)
        assert trail and text in trail[0], (action, trail)


def _cli(capsys: pytest.CaptureFixture[str], settings: Settings, *argv: str) -> Any:
    assert review(list(argv), settings) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_the_clis_take_access_away(world: World, settings: Settings,
                                   capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from server.review import auth, directory

    with world.db.session() as s:
        auth.create_user_token(s, directory.get_user(s, "bob").id, "ehr")
    assert _cli(capsys, settings, "user", "disable", "bob")["disabled"] is True
    assert _cli(capsys, settings, "user", "enable", "bob")["disabled"] is False
    tokens = _cli(capsys, settings, "user", "token", "list", "bob")
    assert [t["revoked_at"] is not None for t in tokens] == [True]
    token = _cli(capsys, settings, "user", "token", "bob", "--name", "new")["token"]
    assert str(token).startswith("rsu_")
    revoked = _cli(capsys, settings, "user", "token", "revoke", "bob", "--name", "new")
    assert [t["name"] for t in revoked] == ["new"]
    monkeypatch.setattr("sys.stdin", io.StringIO("bobs new password\n"))
    assert "password" not in _cli(capsys, settings, "user", "password", "bob",
                                  "--password-stdin")
    assert _cli(capsys, settings, "member", "remove", "bob", "--clinic", "north-clinic")
    audit = _cli(capsys, settings, "audit", "--clinic", "north-clinic", "--limit", "5")
    assert [e["action"] for e in audit][:2] == ["membership_remove", "password"]
    assert all(e["actor"] == "cli" for e in audit[:2])

    monkeypatch.setenv("ROOMSCRIBE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ROOMSCRIBE_DATABASE_URL", settings.database_url)
    with world.db.session() as s:
        registry.create_api_key(s, "old")
    assert roomscribe(["admin", "apikey", "list"]) == 0
    assert [k["name"] for k in json.loads(capsys.readouterr().out)] == ["old"]
    assert roomscribe(["admin", "apikey", "revoke", "old"]) == 0
    assert json.loads(capsys.readouterr().out)["revoked_at"] is not None
    with world.db.session() as s:
        assert registry.list_api_keys(s)[0].revoked_at is not None
