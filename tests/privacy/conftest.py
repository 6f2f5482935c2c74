from __future__ import annotations

from collections.abc import Iterator

import pytest

from server.db import Database
from server.settings import Settings
from tests.review.conftest import quick_password_hashing  # noqa: F401 - autouse fixture
from tests.review.world import World, build_world
from tests.support import ServerThread, running_server


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture
def server(settings: Settings, world: World) -> Iterator[ServerThread]:
    with running_server(settings) as srv:
        yield srv
