from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from server.db import Database
from server.review import auth
from server.settings import Settings
from tests.review.world import World, build_world
from tests.support import ServerThread, running_server


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with test-sized cost (the real one takes ~0.3 s a hash on CI's CPU).

    test_auth.py checks the production parameters separately."""
    quick = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(auth, "_hasher", quick)
    monkeypatch.setattr(auth, "_DUMMY_HASH", quick.hash("not a real password"))


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture
def server(settings: Settings, world: World) -> Iterator[ServerThread]:
    with running_server(settings) as srv:
        yield srv
