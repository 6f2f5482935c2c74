from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.db import Database
from server.settings import Settings
from tests.support import (
    TEST_DATABASE_URL,
    make_settings,
    migrated_database,
    reset_database,
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    if TEST_DATABASE_URL:
        reset_database(TEST_DATABASE_URL)
    return make_settings(tmp_path / "server")


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = migrated_database(settings)
    yield database
    database.dispose()
