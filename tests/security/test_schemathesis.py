"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis 4).

A real server runs on loopback with the review world; schemathesis generates requests
for every operation of the OpenAPI document and sends them to it. The check is
``not_a_server_error``: whatever a client sends, the answer is never a 5xx. A failure
prints the request as a curl command.

Each operation is fuzzed as a principal that gets past its access check, so generated
bodies reach the route's own validation instead of stopping at 401/403:

- North's admin: ``/api/v1/admin/…`` and an encounter's legal hold (``ADMIN_OPS``);
- the IT API key: clinics, rooms, devices, API keys, encounter metadata, transcription
  metrics (``IT_KEY_OPS``);
- the physician (dr_north): every other operation (review, auth, consent, deletion,
  encounter audio and transcript).

Path ids are replaced by real ones (a North draft, a North encounter without a draft,
clinic, pool, device, user bob), so requests reach the database rather than stopping
at "no such item"; everything else is generated.

The schema comes from the app object (the same document ``/openapi.json`` serves,
checked below): schemathesis' lazy ``from_fixture`` loader fails under pytest 9
(``'Function' object has no attribute '_nodeid'``). Left out, because they end the
credentials the rest of the run uses: ``POST /api/v1/auth/password`` (ends every token
of the user), ``DELETE /api/v1/auth/tokens/{token_id}`` (a generated small id is the
caller's own token) and ``POST /api/v1/api-keys/{key_id}/revoke`` (the IT key's own).
Bounded for CI: ``max_examples=15``, derandomised, no deadline; about 4 minutes on two
cores for the three passes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from argon2 import PasswordHasher
from hypothesis import HealthCheck, settings
from schemathesis import BaseSchema
from schemathesis.checks import not_a_server_error

from server import registry
from server.main import create_app
from server.review import auth, directory
from tests.review.world import add_encounter, build_world
from tests.security.conftest import USERNAMES
from tests.support import (
    TEST_DATABASE_URL,
    ServerThread,
    make_settings,
    migrated_database,
    reset_database,
    running_server,
)

#: Operations that would end the credentials the rest of the run uses.
CREDENTIAL_ENDING = [
    ("POST", "/api/v1/auth/password"),
    ("DELETE", "/api/v1/auth/tokens/{token_id}"),
    ("POST", "/api/v1/api-keys/{key_id}/revoke"),
]

# The document the server serves at /openapi.json (the same app object, built without
# starting it); the requests go to the live server below.
_SPEC = create_app(make_settings(Path(tempfile.gettempdir()) / "roomscribe-openapi")).openapi()


def _schema() -> BaseSchema:
    schema: BaseSchema = schemathesis.openapi.from_dict(_SPEC)
    for method, path in CREDENTIAL_ENDING:
        schema = schema.exclude(method=method, path=path)
    return schema


#: Who fuzzes what: each operation once, as a principal its access check lets in.
ADMIN_OPS = r"^/api/v1/(admin/|encounters/\{encounter_id\}/legal-hold$)"
IT_KEY_OPS = (r"^/api/v1/(clinics|rooms|devices|api-keys|transcription/|agent-releases|encounters$"
              r"|encounters/\{encounter_id\}$)")
physician_schema = _schema().exclude(path_regex=ADMIN_OPS).exclude(path_regex=IT_KEY_OPS)
admin_schema = _schema().include(path_regex=ADMIN_OPS)
it_key_schema = _schema().include(path_regex=IT_KEY_OPS)
BOUNDED = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))


@dataclass
class Live:
    """The server, each principal's headers, and the real ids path parameters take."""

    server: ServerThread
    headers: dict[str, dict[str, str]]
    ids: dict[str, str]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One server and world for the whole module (a fresh one per operation would cost
    more than the fuzzing)."""
    if TEST_DATABASE_URL:
        reset_database(TEST_DATABASE_URL)
    settings_ = make_settings(tmp_path_factory.mktemp("fuzz") / "server")
    db = migrated_database(settings_)
    with pytest.MonkeyPatch.context() as mp:
        quick = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        mp.setattr(auth, "_hasher", quick)
        mp.setattr(auth, "_DUMMY_HASH", quick.hash("not a real password"))
        world = build_world(db)
        _, item = add_encounter(db, "exam-1", seconds=2)
        encounter, _ = add_encounter(db, "exam-1", seconds=2, draft=False)
        headers = {}
        with db.session() as s:
            for principal in ("physician", "admin"):
                user = directory.get_user(s, USERNAMES[principal])
                token = auth.create_user_token(s, user.id, f"fuzz-{principal}")
                headers[principal] = {"Authorization": f"Bearer {token}"}
            headers["it_key"] = {"Authorization": f"Bearer {registry.create_api_key(s, 'it')}"}
        assert item
        ids = {"item_id": item, "encounter_id": encounter, "number": "1",
               "clinic_id": world.north, "pool_id": "north-general", "username": "bob",
               "device_id": "dev-exam-1"}
        with running_server(settings_) as server:
            yield Live(server, headers, ids)
    db.dispose()


def test_the_fuzzed_document_is_the_served_one(live: Live) -> None:
    served = httpx.get(f"{live.server.http_url}/openapi.json", timeout=10).json()
    assert served == _SPEC


def _check(case: Any, live: Live, principal: str) -> None:
    for name in case.path_parameters or {}:
        if name in live.ids:  # real ids, so requests reach the route's own logic
            case.path_parameters[name] = live.ids[name]
    case.call_and_validate(base_url=live.server.http_url, headers=live.headers[principal],
                           checks=[not_a_server_error], timeout=30)


@physician_schema.parametrize()
@BOUNDED
def test_no_server_error_as_the_physician(case: Any, live: Live) -> None:
    _check(case, live, "physician")


@admin_schema.parametrize()
@BOUNDED
def test_no_server_error_as_the_admin(case: Any, live: Live) -> None:
    _check(case, live, "admin")


@it_key_schema.parametrize()
@BOUNDED
def test_no_server_error_as_the_it_key(case: Any, live: Live) -> None:
    _check(case, live, "it_key")
