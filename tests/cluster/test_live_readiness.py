"""/healthz and /readyz: what a load balancer probes (no login, no patient data)."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import text

from server.db import Database
from server.routes.health import check_database
from tests.support import make_settings, migrated_database, running_server


def test_ready_on_the_one_process_default(tmp_path: Path) -> None:
    with running_server(make_settings(tmp_path / "server", database_url="")) as server:
        alive = httpx.get(f"{server.http_url}/healthz", timeout=10)
        ready = httpx.get(f"{server.http_url}/readyz", timeout=10)
        assert alive.status_code == 200 and alive.json()["status"] == "ok"
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "migrations": "ok",
                                          "redis": "not configured"}
        assert "no-store" in ready.headers.get("cache-control", "")
        schema = httpx.get(f"{server.http_url}/openapi.json", timeout=10).json()
        assert "/healthz" in schema["paths"] and "/readyz" not in schema["paths"]

        # the database goes away under the running node
        services = server.services
        real = services.db
        services.db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
        try:
            down = httpx.get(f"{server.http_url}/readyz", timeout=10)
        finally:
            services.db.dispose()
            services.db = real
        assert down.status_code == 503
        assert down.json()["reason"] == "database unreachable"
        assert "127.0.0.1:1" not in down.text and "nobody" not in down.text  # no URL leaks


def test_not_ready_while_redis_is_unreachable(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "server", database_url="",
                             redis_url="redis://127.0.0.1:1/0")  # nothing listens there
    with running_server(settings) as server:
        alive = httpx.get(f"{server.http_url}/healthz", timeout=10)
        ready = httpx.get(f"{server.http_url}/readyz", timeout=10)
    assert alive.status_code == 200  # alive: a restart would not help
    assert ready.status_code == 503
    assert ready.json() == {"status": "not-ready", "reason": "redis unreachable",
                            "checks": {"database": "ok", "migrations": "ok",
                                       "redis": "unreachable"}}


def test_schema_behind_or_ahead_of_this_release(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "server", database_url="")
    db = migrated_database(settings)
    try:
        assert check_database(db) == "ok"
        with db.engine.begin() as conn:
            head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        assert head != "0001"
        assert check_database(db) == "migrations pending"
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeedbeef'"))
        assert check_database(db) == "migrations ahead"
    finally:
        db.dispose()
