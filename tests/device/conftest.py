"""Fixtures for the device agent's tests; the fakes themselves live in ``fakes``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .fakes import FakeServer


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeServer]:
    server = FakeServer()
    await server.start()
    yield server
    await server.stop()
