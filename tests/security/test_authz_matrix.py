"""The authorisation matrix: every OpenAPI operation called as every principal.

The server's ``/openapi.json`` lists the operations; :data:`MATRIX` says, for each one,
what each principal (see ``conftest.py``) must get:

- ``OK``: the request got past authentication and authorisation: 2xx, or 409 / 422
  (a state conflict or invalid input, decided after the caller was let in);
- ``NO``: refused: 401, 403 or 404 (another clinic's data does not exist for you).

Any other status (a 5xx above all) is a failure of its own. An operation the server
lists but the matrix lacks fails the test ("add <method> <path> to the matrix"), and
so does an entry the server no longer lists. Path parameters come from
:func:`path_values`, keyed by name: a new name fails the test until someone says which
real object of North Clinic it names. Bodies are valid (:data:`BODIES`), so a 422 is
never FastAPI refusing the body before the route's own access check ran. Users send
bearer user tokens (same principal as a cookie; CSRF is tests/review's business).

State: each principal gets a fresh world and server (one principal's changes never
decide another's outcome). Reads use long-lived objects (a note dr_north signed, so
FHIR and the diff exist; its encounter; user bob); each change (claim, sign, consent,
deletion, disable...) gets a fresh draft / encounter / user, and a password change,
which ends the caller's tokens, runs last.

:func:`test_the_matrix_keeps_the_policy` checks the table itself against the rules,
so the table cannot be loosened to make a regression pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from protocol import Hello, encode_event
from server import registry
from server.models import ApiKey
from server.review import auth, directory
from server.review.models import UserToken
from server.security import hash_secret
from tests.review.world import PASSWORD, World, add_encounter
from tests.security.conftest import PRINCIPALS, USERNAMES
from tests.support import ServerThread

OK = "ok"
NO = "denied"
Row = tuple[str, str, str, str, str, str, str]

#                   anonymous physician partner admin it_key other_physician other_partner
EVERYONE: Row = (OK, OK, OK, OK, OK, OK, OK)
IT_KEY_ONLY: Row = (NO, NO, NO, NO, OK, NO, NO)
NOBODY: Row = (NO, NO, NO, NO, NO, NO, NO)
#: any logged-in user, of any clinic (their own data: the queue, /me, their tokens)
USERS: Row = (NO, OK, OK, OK, NO, OK, OK)
#: the IT key (every clinic) and North's admin
OPERATORS: Row = (NO, NO, NO, OK, OK, NO, NO)
#: who may see and work on a North draft of room exam-1: its physician and pool partners
REVIEWERS: Row = (NO, OK, OK, NO, NO, NO, NO)
PHYSICIAN_ONLY: Row = (NO, OK, NO, NO, NO, NO, NO)

ITEM = "/api/v1/review/items/{item_id}"
MATRIX: dict[tuple[str, str], Row] = {
    # registry: the IT API key only (admin users manage people, not devices)
    ("GET", "/api/v1/clinics"): IT_KEY_ONLY,
    ("POST", "/api/v1/clinics"): IT_KEY_ONLY,
    ("GET", "/api/v1/rooms"): IT_KEY_ONLY,
    ("POST", "/api/v1/rooms"): IT_KEY_ONLY,
    ("GET", "/api/v1/devices"): IT_KEY_ONLY,
    ("POST", "/api/v1/devices"): IT_KEY_ONLY,
    ("POST", "/api/v1/devices/{device_id}/enrolment-code"): IT_KEY_ONLY,
    ("POST", "/api/v1/devices/{device_id}/revoke"): IT_KEY_ONLY,
    ("POST", "/api/v1/devices/{device_id}/command"): IT_KEY_ONLY,
    ("POST", "/api/v1/devices/{device_id}/diagnostics"): IT_KEY_ONLY,
    ("POST", "/api/v1/devices/{device_id}/config"): IT_KEY_ONLY,
    ("POST", "/api/v1/devices/enroll"): EVERYONE,  # public: the one-time code is the secret
    # agent releases: published and offered with the IT key, fetched with a device token
    ("POST", "/api/v1/agent-releases"): IT_KEY_ONLY,
    ("GET", "/api/v1/agent-releases"): IT_KEY_ONLY,
    ("PUT", "/api/v1/agent-releases/offer"): IT_KEY_ONLY,
    ("GET", "/api/v1/agent/offer"): NOBODY,  # a device's own token only
    ("GET", "/api/v1/agent/releases/{version}/wheel"): NOBODY,
    ("GET", "/api/v1/api-keys"): IT_KEY_ONLY,
    ("POST", "/api/v1/api-keys/{key_id}/revoke"): IT_KEY_ONLY,
    # encounters: metadata for the IT key; audio and transcript are PHI (clinicians only)
    ("GET", "/api/v1/encounters"): IT_KEY_ONLY,
    ("GET", "/api/v1/encounters/{encounter_id}"): IT_KEY_ONLY,
    ("GET", "/api/v1/encounters/{encounter_id}/audio.wav"): REVIEWERS,
    ("GET", "/api/v1/encounters/{encounter_id}/transcript"): REVIEWERS,
    ("GET", "/api/v1/transcription/rooms"): IT_KEY_ONLY,
    # privacy: consent is the room's business, legal hold and policy the operators'
    ("GET", "/api/v1/encounters/{encounter_id}/consent"): (NO, OK, NO, OK, OK, NO, NO),
    ("POST", "/api/v1/encounters/{encounter_id}/consent"): PHYSICIAN_ONLY,
    ("POST", "/api/v1/encounters/{encounter_id}/consent/withdraw"): PHYSICIAN_ONLY,
    ("POST", "/api/v1/encounters/{encounter_id}/deletion"): (NO, OK, NO, OK, OK, NO, NO),
    ("PUT", "/api/v1/encounters/{encounter_id}/legal-hold"): OPERATORS,
    ("GET", "/api/v1/admin/clinics/{clinic_id}/privacy"): OPERATORS,
    ("PUT", "/api/v1/admin/clinics/{clinic_id}/privacy"): OPERATORS,
    ("POST", "/api/v1/admin/retention/run"): OPERATORS,
    # auth
    ("POST", "/api/v1/auth/login"): EVERYONE,  # public
    ("POST", "/api/v1/auth/logout"): USERS,
    ("GET", "/api/v1/auth/me"): USERS,
    ("POST", "/api/v1/auth/password"): USERS,
    ("POST", "/api/v1/auth/tokens"): USERS,
    ("GET", "/api/v1/auth/tokens"): USERS,
    ("DELETE", "/api/v1/auth/tokens/{token_id}"): USERS,  # one's own token
    # admin: users, pools, routing, settings, audit, the schedule
    ("GET", "/api/v1/admin/users"): OPERATORS,
    ("POST", "/api/v1/admin/users"): OPERATORS,
    ("POST", "/api/v1/admin/users/{username}/disable"): OPERATORS,
    ("POST", "/api/v1/admin/users/{username}/enable"): OPERATORS,
    ("POST", "/api/v1/admin/users/{username}/password"): OPERATORS,
    ("GET", "/api/v1/admin/users/{username}/tokens"): OPERATORS,
    ("DELETE", "/api/v1/admin/users/{username}/tokens/{token_id}"): OPERATORS,
    ("DELETE", "/api/v1/admin/users/{username}/memberships/{clinic_id}"): OPERATORS,
    ("POST", "/api/v1/admin/memberships"): OPERATORS,
    ("GET", "/api/v1/admin/pools"): OPERATORS,
    ("POST", "/api/v1/admin/pools"): OPERATORS,
    ("POST", "/api/v1/admin/pools/{pool_id}/members"): OPERATORS,
    ("DELETE", "/api/v1/admin/pools/{pool_id}/members/{username}"): OPERATORS,
    ("GET", "/api/v1/admin/routing-rules"): OPERATORS,
    ("POST", "/api/v1/admin/routing-rules"): OPERATORS,
    ("GET", "/api/v1/admin/clinics/{clinic_id}/note-settings"): OPERATORS,
    ("PUT", "/api/v1/admin/clinics/{clinic_id}/note-settings"): OPERATORS,
    ("POST", "/api/v1/admin/room-physicians"): OPERATORS,
    ("GET", "/api/v1/admin/rooms"): OPERATORS,
    ("GET", "/api/v1/admin/audit"): OPERATORS,
    ("POST", "/api/v1/admin/clinics/{clinic_id}/schedule"): OPERATORS,
    ("GET", "/api/v1/admin/clinics/{clinic_id}/timezone"): OPERATORS,
    ("PUT", "/api/v1/admin/clinics/{clinic_id}/timezone"): OPERATORS,
    # the queue: every user gets 200 with what they may see (an admin: nothing)
    ("GET", "/api/v1/review/queue"): USERS,
    ("GET", "/api/v1/review/turnaround"): USERS,
    ("GET", "/api/v1/review/suggest"): USERS,  # order names, no patient data
    ("POST", "/api/v1/review/tickets"): REVIEWERS,  # for North's encounter
    # one North item: PHI
    ("GET", ITEM): REVIEWERS,
    ("PUT", f"{ITEM}/note"): REVIEWERS,
    ("POST", f"{ITEM}/claim"): REVIEWERS,
    ("POST", f"{ITEM}/release"): REVIEWERS,
    ("POST", f"{ITEM}/send"): REVIEWERS,
    ("POST", f"{ITEM}/return"): PHYSICIAN_ONLY,
    ("POST", f"{ITEM}/sign"): PHYSICIAN_ONLY,
    ("GET", f"{ITEM}/sign-review"): REVIEWERS,
    ("GET", f"{ITEM}/versions"): REVIEWERS,
    ("GET", f"{ITEM}/versions/{{number}}"): REVIEWERS,
    ("GET", f"{ITEM}/transcript"): REVIEWERS,
    ("GET", f"{ITEM}/audio.wav"): REVIEWERS,
    ("GET", f"{ITEM}/fhir"): REVIEWERS,
    ("GET", f"{ITEM}/diff"): REVIEWERS,
    ("GET", f"{ITEM}/appointments"): REVIEWERS,
    ("PUT", f"{ITEM}/patient"): REVIEWERS,
    ("GET", "/healthz"): EVERYONE,
    ("GET", "/metrics"): IT_KEY_ONLY,  # or the scrape token (ROOMSCRIBE_METRICS_TOKEN)
}

#: Routes open to anyone (the matrix must say so, and only for these).
PUBLIC = {("POST", "/api/v1/auth/login"), ("POST", "/api/v1/devices/enroll"),
          ("GET", "/healthz")}
#: Public routes FastAPI keeps out of the OpenAPI document.
PUBLIC_UNLISTED = ("/openapi.json", "/docs", "/redoc")
#: Patient data: notes, transcripts, audio, FHIR, versions, diff, appointments, patient.
PHI = re.compile(r"^/api/v1/review/items/\{item_id\}|^/api/v1/encounters/\{encounter_id\}/"
                 r"(audio\.wav|transcript)$")
#: Paths whose parameters name the caller's own things, not North Clinic's.
OWN = {("DELETE", "/api/v1/auth/tokens/{token_id}")}
#: What only the responsible physician may do to a note.
PHYSICIAN_ACTIONS = {("POST", f"{ITEM}/sign"), ("POST", f"{ITEM}/return")}

SCHEDULE_CSV = ("room,start,duration_min,name,dob,mrn,reason\n"
                "exam-1,2026-03-02 09:00,20,Maria Lopez,1961-04-12,A-1001,chest tightness\n")


@dataclass
class Fixtures:
    """The real objects the requests name (North Clinic's, unless said otherwise)."""

    world: World
    caller: str  # the username whose own things (tokens) a request names: dr_north if none
    signed_item: str  # signed by dr_north: several versions, a FHIR export, the diff
    encounter: str  # the signed item's encounter (2 s of audio)
    enrolment_code: str  # for device dev-matrix of exam-2
    made: int = 0

    def fresh_draft(self) -> str:
        return self.fresh_visit()[1]

    def fresh_visit(self) -> tuple[str, str]:
        """A new encounter of exam-1 (1 s of audio) and its draft, in pool north-general."""
        encounter, item_id = add_encounter(self.world.db, "exam-1", seconds=1)
        assert item_id
        return encounter, item_id

    def fresh_user(self) -> str:
        """A new North partner in pool north-general: none of the principals."""
        self.made += 1
        name = f"matrix_{self.made}"
        with self.world.db.session() as s:
            directory.add_user(s, name, PASSWORD, self.world.north, "partner")
            directory.add_pool_member(s, "north-general", name)
        return name

    def fresh_token_id(self, username: str) -> str:
        with self.world.db.session() as s:
            user = directory.get_user(s, username)
            token = auth.create_user_token(s, user.id, "matrix-spare")
            row = s.scalars(select(UserToken).where(
                UserToken.token_hash == hash_secret(token))).one()
            return str(row.id)

    def fresh_key_id(self) -> str:
        """A spare IT key (revoking the caller's own would end the it_key principal)."""
        with self.world.db.session() as s:
            key = registry.create_api_key(s, "matrix-spare")
            return str(s.scalars(select(ApiKey).where(
                ApiKey.key_hash == hash_secret(key))).one().id)


#: Valid bodies: JSON, or ("text/csv", text). A request that needs a body and has none
#: here fails the test.
BODIES: dict[tuple[str, str], Callable[[Fixtures], Any]] = {
    ("POST", "/api/v1/clinics"): lambda f: {"name": "Matrix Clinic"},
    ("POST", "/api/v1/rooms"): lambda f: {"clinic_id": f.world.north, "name": "Exam 9",
                                          "id": "exam-9"},
    ("POST", "/api/v1/devices"): lambda f: {"room_id": "exam-2", "name": "another Pi"},
    ("POST", "/api/v1/devices/{device_id}/command"): lambda f: {"action": "mute"},
    ("POST", "/api/v1/devices/{device_id}/config"): lambda f: {
        "changes": {"log_interval_s": 30}},
    ("POST", "/api/v1/devices/enroll"): lambda f: {"code": f.enrolment_code},
    ("POST", "/api/v1/auth/login"): lambda f: {"username": "dr_north", "password": PASSWORD},
    ("POST", "/api/v1/auth/tokens"): lambda f: {"name": "matrix"},
    ("POST", "/api/v1/admin/users"): lambda f: {
        "username": "matrix_user", "password": "long enough pw", "clinic_id": f.world.north,
        "role": "partner"},
    ("POST", "/api/v1/admin/memberships"): lambda f: {
        "username": "carol", "clinic_id": f.world.north, "role": "partner"},
    ("POST", "/api/v1/admin/pools"): lambda f: {"clinic_id": f.world.north,
                                                "name": "Matrix Pool"},
    ("POST", "/api/v1/admin/pools/{pool_id}/members"): lambda f: {"username": "carol"},
    ("POST", "/api/v1/admin/routing-rules"): lambda f: {"pool_id": "north-general"},
    ("PUT", "/api/v1/admin/clinics/{clinic_id}/note-settings"): lambda f: {"style": "concise"},
    ("POST", "/api/v1/admin/room-physicians"): lambda f: {"room_id": "exam-1",
                                                          "username": "dr_north"},
    ("POST", "/api/v1/admin/clinics/{clinic_id}/schedule"): lambda f: ("text/csv",
                                                                       SCHEDULE_CSV),
    ("PUT", "/api/v1/admin/clinics/{clinic_id}/timezone"): lambda f: {
        "timezone": "America/Chicago"},
    ("PUT", f"{ITEM}/note"): lambda f: {"base_version": 1,
                                        "sections": {"plan": "Start lisinopril 10 mg daily."}},
    ("POST", f"{ITEM}/return"): lambda f: {"comment": "please check the plan"},
    ("POST", f"{ITEM}/sign"): lambda f: {"attest": True, "acknowledged": ["no-patient"]},
    ("PUT", f"{ITEM}/patient"): lambda f: {"name": "Maria Lopez", "dob": "1961-04-12",
                                           "mrn": "A-1001"},
    ("POST", "/api/v1/review/tickets"): lambda f: {"purpose": "encounter-audio",
                                                   "resource": f.encounter},
    ("POST", "/api/v1/auth/password"): lambda f: {"old_password": PASSWORD,
                                                  "new_password": "another long passphrase 9"},
    ("POST", "/api/v1/encounters/{encounter_id}/consent"): lambda f: {"method": "verbal"},
    ("POST", "/api/v1/encounters/{encounter_id}/consent/withdraw"): lambda f: {
        "reason": "the patient changed their mind"},
    ("POST", "/api/v1/encounters/{encounter_id}/deletion"): lambda f: {
        "reason": "the patient asked"},
    ("PUT", "/api/v1/encounters/{encounter_id}/legal-hold"): lambda f: {
        "hold": True, "reason": "litigation"},
    ("PUT", "/api/v1/admin/clinics/{clinic_id}/privacy"): lambda f: {
        "consent_required": True, "audio_retention_days": 30},
    ("POST", "/api/v1/admin/retention/run"): lambda f: {"dry_run": True},
    ("POST", "/api/v1/agent-releases"): lambda f: _release_upload(),
    ("PUT", "/api/v1/agent-releases/offer"): lambda f: {"version": None, "clinic_id": ""},
}


def _release_upload() -> tuple[str, bytes]:
    """A multipart agent release (a real tiny wheel; the server stores the signature, the
    devices check it)."""
    from tests.device.update_fakes import make_wheel

    name, data = make_wheel("0.0.1")
    b = "matrixboundary"
    head = (f'--{b}\r\nContent-Disposition: form-data; name="signature"\r\n\r\n'
            f'{"A" * 86}==\r\n--{b}\r\nContent-Disposition: form-data; name="wheel"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n')
    return f"multipart/form-data; boundary={b}", head.encode() + data + f"\r\n--{b}--\r\n".encode()

#: Operations that end the caller's own credentials (a password change ends every token
#: of the user): they run last.
LAST = {("POST", "/api/v1/auth/password")}

#: Required query parameters, by name.
QUERY_VALUES = {"kind": "lab"}


def path_values(method: str, path: str, f: Fixtures) -> dict[str, str]:
    """The real ids a path's parameters name, by parameter name; an unknown name fails
    with what to do. Reads name the long-lived objects; changes get fresh ones, so one
    change (a deletion, a disabled user) never decides the outcome of the next."""
    fresh = method != "GET"
    values: dict[str, str] = {}
    for name in re.findall(r"\{(\w+)\}", path):
        if name == "item_id":
            values[name] = f.fresh_draft() if fresh else f.signed_item
        elif name == "encounter_id":
            values[name] = f.fresh_visit()[0] if fresh else f.encounter
        elif name == "number":
            values[name] = "1"
        elif name == "clinic_id":
            values[name] = f.world.north
        elif name == "pool_id":
            values[name] = "north-general"
        elif name == "username":  # a North partner who is none of the principals
            values[name] = f.fresh_user() if fresh else "bob"
        elif name == "token_id":  # the named user's, else the caller's own
            values[name] = f.fresh_token_id(values.get("username", f.caller))
        elif name == "device_id":
            values[name] = "dev-exam-1"
        elif name == "key_id":
            values[name] = f.fresh_key_id()
        elif name == "version":  # an agent release
            values[name] = "0.0.1"
        else:
            pytest.fail(f"{method} {path}: unknown path parameter {name!r}; say which North "
                        "Clinic object it names in path_values() of tests/security/"
                        "test_authz_matrix.py")
    return values


def outcome(status: int) -> str:
    if 200 <= status < 300 or status in (409, 422):
        return OK
    if status in (401, 403, 404):
        return NO
    return f"HTTP {status}"


def _signed_item(http: httpx.Client, world: World, doctor: dict[str, str]) -> tuple[str, str]:
    encounter, item = add_encounter(world.db, "exam-1", seconds=2)
    assert item
    base = f"/api/v1/review/items/{item}"
    assert http.post(f"{base}/claim", headers=doctor).status_code == 200
    decided = [{"id": o, "decision": "accepted"} for o in ("o1", "o2", "o3")]
    r = http.put(f"{base}/note", headers=doctor, json={"base_version": 1, "orders": decided})
    assert r.status_code == 200, r.text
    r = http.post(f"{base}/sign", headers=doctor, json={"attest": True, "acknowledged": []})
    if r.status_code == 422 and r.json().get("error") == "sign-blocked":
        r = http.post(f"{base}/sign", headers=doctor,
                      json={"attest": True, "acknowledged": r.json()["blocking"]})
    assert r.status_code == 200, r.text
    return encounter, item


def _fixtures(http: httpx.Client, world: World, doctor: dict[str, str],
              principal: str) -> Fixtures:
    encounter, item = _signed_item(http, world, doctor)
    with world.db.session() as s:
        device = registry.create_device(s, "exam-2", "matrix Pi")
        code = registry.issue_enrolment_code(s, device.id, timedelta(hours=1))
    return Fixtures(world, USERNAMES.get(principal, "dr_north"), item, encounter, code)


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return [(m.upper(), path, op) for path, ops in spec["paths"].items()
            for m, op in ops.items() if m in methods]


def _request(http: httpx.Client, method: str, path: str, op: dict[str, Any], f: Fixtures,
             headers: dict[str, str]) -> httpx.Response:
    url = path
    for name, value in path_values(method, path, f).items():
        url = url.replace(f"{{{name}}}", value)
    params: dict[str, str] = {}
    for p in op.get("parameters", []):
        if p["in"] != "path" and p.get("required"):
            if p["in"] != "query" or p["name"] not in QUERY_VALUES:
                pytest.fail(f"{method} {path}: required {p['in']} parameter {p['name']!r}; "
                            "add a value to QUERY_VALUES")
            params[p["name"]] = QUERY_VALUES[p["name"]]
    kwargs: dict[str, Any] = {"params": params, "headers": dict(headers)}
    if (method, path) in BODIES:
        body = BODIES[(method, path)](f)
        if isinstance(body, tuple):
            kwargs["headers"]["Content-Type"], kwargs["content"] = body
        else:
            kwargs["json"] = body
    elif op.get("requestBody", {}).get("required"):
        pytest.fail(f"{method} {path} needs a body: add a valid one to BODIES")
    return http.request(method, url, **kwargs)


def test_the_matrix_keeps_the_policy() -> None:
    """The table itself follows the rules, whatever the server does."""
    column = dict(zip(PRINCIPALS, range(len(PRINCIPALS)), strict=True))
    for (method, path), row in MATRIX.items():
        where = f"{method} {path}"
        assert len(row) == len(PRINCIPALS) and set(row) <= {OK, NO}, where
        assert (row[column["anonymous"]] == OK) == ((method, path) in PUBLIC), where
        if "{" in path and (method, path) not in OWN:  # names a North Clinic object
            assert row[column["other_physician"]] == row[column["other_partner"]] == NO, where
        if PHI.search(path):
            assert row[column["admin"]] == row[column["it_key"]] == NO, where
        if (method, path) in PHYSICIAN_ACTIONS:
            assert row[column["partner"]] == NO, where
    assert set(MATRIX) >= PUBLIC
    assert set(MATRIX) >= PHYSICIAN_ACTIONS


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_every_operation_as(principal: str, server: ServerThread, world: World,
                            credentials: dict[str, dict[str, str]]) -> None:
    with httpx.Client(base_url=server.http_url, timeout=10) as http:
        spec = http.get("/openapi.json").json()
        operations = _operations(spec)
        listed = {(m, p) for m, p, _ in operations}
        missing = sorted(listed - set(MATRIX))
        assert not missing, "\n".join(f"add {m} {p} to the matrix" for m, p in missing)
        stale = sorted(set(MATRIX) - listed)
        assert not stale, "\n".join(f"remove {m} {p} from the matrix (gone from the API)"
                                    for m, p in stale)
        f = _fixtures(http, world, credentials["physician"], principal)
        operations.sort(key=lambda o: (o[0], o[1]) in LAST)
        column = PRINCIPALS.index(principal)
        wrong = []
        for method, path, op in operations:
            r = _request(http, method, path, op, f, credentials[principal])
            http.cookies.clear()  # the login operation's session must not carry over
            got, want = outcome(r.status_code), MATRIX[(method, path)][column]
            if got != want:
                wrong.append(f"{method} {path}: expected {want}, got {got} "
                             f"(HTTP {r.status_code} {r.text[:160]!r})")
        if principal == "anonymous":
            for path in PUBLIC_UNLISTED:
                r = http.get(path)
                if r.status_code != 200:
                    wrong.append(f"GET {path}: public, got HTTP {r.status_code}")
    assert not wrong, f"{principal}: {len(wrong)} of {len(operations)} operations\n" + \
        "\n".join(wrong)


def test_a_partner_cannot_amend_a_signed_note(server: ServerThread, world: World,
                                               credentials: dict[str, dict[str, str]]) -> None:
    with httpx.Client(base_url=server.http_url, timeout=10) as http:
        _, item = _signed_item(http, world, credentials["physician"])
        version = http.get(f"/api/v1/review/items/{item}",
                           headers=credentials["physician"]).json()["version"]
        body = {"base_version": version, "sections": {"plan": "changed"}, "reason": "typo"}
        r = http.put(f"/api/v1/review/items/{item}/note", json=body,
                     headers=credentials["partner"])
        assert r.status_code == 403, r.text
        r = http.put(f"/api/v1/review/items/{item}/note", json=body,
                     headers=credentials["physician"])
        assert r.status_code == 200, r.text  # the same amendment by the physician passes


# --- websockets (not in OpenAPI) ----------------------------------------------------------

def _socket(url: str, headers: dict[str, str], first: str | None = None) -> str:
    """'refused (…)' or 'open (first message …)'."""
    try:
        with connect(url, additional_headers=headers, open_timeout=10,
                     close_timeout=2) as ws:
            if first is not None:
                ws.send(first)
            try:
                message = ws.recv(timeout=10)
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                return f"refused (close {code})"
            except TimeoutError:
                return "open (silent)"
            return f"open (first message {str(message)[:80]!r})"
    except InvalidStatus as err:
        return f"refused (HTTP {err.response.status_code})"


def test_websockets_refuse_who_may_not_listen(server: ServerThread, world: World,
                                              credentials: dict[str, dict[str, str]]) -> None:
    ws_base = f"ws://127.0.0.1:{server.port}"
    encounter, _ = add_encounter(world.db, "exam-1", seconds=1)
    live = f"{ws_base}/ws/encounters/{encounter}/live"
    bogus_hello = encode_event(Hello("dev-exam-1", "rsd_not-the-token", "exam-1").to_event())
    with httpx.Client(base_url=server.http_url, timeout=10) as http:
        r = http.post("/api/v1/auth/login", json={"username": "dr_north", "password": PASSWORD})
        assert r.status_code == 200, r.text
        cookie = {"Cookie": f"rs_session={r.cookies['rs_session']}"}
    # Controls: the sockets do open for who may use them.
    assert _socket(f"{ws_base}/ws/review", cookie).startswith("open"), "review socket"
    assert _socket(live, credentials["physician"]).startswith("open"), "live transcript"
    checks = [("anonymous", f"{ws_base}/ws/review", {}, None),
              ("anonymous", live, {}, None),
              ("anonymous", f"{ws_base}/ws/device", {}, bogus_hello),
              ("it_key (review socket takes the cookie only)", f"{ws_base}/ws/review",
               credentials["it_key"], None)]
    checks += [(who, live, credentials[who], None)
               for who in ("admin", "it_key", "other_physician", "other_partner")]
    opened = [f"{who} {url}: {got}" for who, url, headers, first in checks
              if not (got := _socket(url, headers, first)).startswith("refused")]
    assert not opened, "\n".join(opened)
