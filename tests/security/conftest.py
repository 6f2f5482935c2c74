"""Fixtures for the security tests: the review world on a real loopback server, and one
set of credentials per principal (bearer tokens made in the database, so no login, and
so no login throttling, stands between a test and the routes it checks).

Principals (``tests/review/world.py`` builds the users):

    anonymous        no credentials
    physician        dr_north, owns room exam-1 of North Clinic
    partner          alice, in pool north-general of North Clinic
    admin            admin_north, the admin role in North Clinic
    it_key           the IT API key (``rsk_…``: every clinic, registry and admin routes)
    other_physician  dr_south, South Clinic
    other_partner    dave, South Clinic
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from server import registry
from server.db import Database
from server.review import auth, directory
from server.settings import Settings
from tests.review.world import World, build_world
from tests.support import ServerThread, running_server

PRINCIPALS = ("anonymous", "physician", "partner", "admin", "it_key", "other_physician",
              "other_partner")
USERNAMES = {"physician": "dr_north", "partner": "alice", "admin": "admin_north",
             "other_physician": "dr_south", "other_partner": "dave"}


@pytest.fixture
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with test-sized cost, as in tests/review (not autouse here: a test of the
    production parameters in this folder must not get it by accident)."""
    quick = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(auth, "_hasher", quick)
    monkeypatch.setattr(auth, "_DUMMY_HASH", quick.hash("not a real password"))


@pytest.fixture
def world(db: Database, quick_password_hashing: None) -> World:
    return build_world(db)


@pytest.fixture
def server(settings: Settings, world: World) -> Iterator[ServerThread]:
    with running_server(settings) as srv:
        yield srv


@pytest.fixture
def credentials(world: World) -> dict[str, dict[str, str]]:
    """Request headers per principal (see the module docstring)."""
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    with world.db.session() as s:
        for principal, username in USERNAMES.items():
            user = directory.get_user(s, username)
            token = auth.create_user_token(s, user.id, f"security-{principal}")
            headers[principal] = {"Authorization": f"Bearer {token}"}
        headers["it_key"] = {"Authorization": f"Bearer {registry.create_api_key(s, 'it')}"}
    assert set(headers) == set(PRINCIPALS)
    return headers
