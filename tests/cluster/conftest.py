"""Fixtures for the cluster tests: several nodes on PostgreSQL + Redis, on loopback.

Shared by the live/failover tests and the work-queue/worker tests; keep fixtures
additive. Tests that need the real engines skip unless both
``ROOMSCRIBE_TEST_DATABASE_URL`` and ``ROOMSCRIBE_TEST_REDIS_URL`` are set
(CI sets them); the Redis-only bus tests need just the latter.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

TEST_REDIS_URL = os.environ.get("ROOMSCRIBE_TEST_REDIS_URL", "")
TEST_DATABASE_URL = os.environ.get("ROOMSCRIBE_TEST_DATABASE_URL", "")


@pytest.fixture
def redis_url() -> str:
    if not TEST_REDIS_URL:
        pytest.skip("set ROOMSCRIBE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
    return TEST_REDIS_URL


@pytest.fixture
def cluster_urls() -> tuple[str, str]:
    """(database URL, Redis URL) for multi-process tests, or skip."""
    if not (TEST_REDIS_URL and TEST_DATABASE_URL):
        pytest.skip("set ROOMSCRIBE_TEST_DATABASE_URL and ROOMSCRIBE_TEST_REDIS_URL")
    return TEST_DATABASE_URL, TEST_REDIS_URL


@pytest.fixture
def channel_prefix() -> str:
    """A deployment prefix of this test's own: tests running at once never cross."""
    return f"rstest{secrets.token_hex(4)}"


class TcpProxy:
    """A loopback TCP proxy in front of a server that can cut every connection and refuse
    new ones for a while: a Redis restart, without restarting the shared Redis."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.refusing = False
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        """Abort every connection now (as a server that died)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)


@pytest.fixture
async def redis_proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    from urllib.parse import urlsplit

    parts = urlsplit(redis_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    await proxy.start()
    yield proxy
    await proxy.stop()


def via_proxy(redis_url: str, proxy: TcpProxy) -> str:
    """``redis_url`` with its host and port replaced by the proxy's."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(redis_url)
    netloc = f"127.0.0.1:{proxy.port}"
    if "@" in parts.netloc:
        netloc = parts.netloc.rsplit("@", 1)[0] + "@" + netloc
    return urlunsplit(parts._replace(netloc=netloc))


# ------------------------------------------------------------------ web/ingest nodes


class WebNodes:
    """Two ``roomscribe serve`` processes ("web-a", "web-b") on one PostgreSQL database
    (a fresh schema) and one Redis, each a :class:`~server.lab.processes.RoomLab`."""

    def __init__(self, workdir: Path, database_url: str, redis_url: str, prefix: str,
                 names: tuple[str, ...] = ("web-a", "web-b")) -> None:
        from server.lab.processes import RoomLab

        self.labs = {name: RoomLab(workdir / name, database_url=database_url, extra_env={
            "ROOMSCRIBE_REDIS_URL": redis_url, "ROOMSCRIBE_NODE_ID": name,
            "ROOMSCRIBE_BUS_CHANNEL_PREFIX": prefix, "ROOMSCRIBE_ASR_ENGINE": "none",
            "ROOMSCRIBE_DRAFTING": "false"}) for name in names}

    def __getitem__(self, name: str) -> Any:
        return self.labs[name]

    def start(self) -> None:
        for lab in self.labs.values():  # one after the other: the first migrates the schema
            lab.start_server(timeout=60)

    def close(self) -> None:
        for lab in self.labs.values():
            lab.stop_server()


@pytest.fixture
def web_nodes(tmp_path: Path, cluster_urls: tuple[str, str],
              channel_prefix: str) -> Iterator[WebNodes]:
    from tests.support import reset_database

    database_url, redis_url = cluster_urls
    reset_database(database_url)
    nodes = WebNodes(tmp_path, database_url, redis_url, channel_prefix)
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.close()
