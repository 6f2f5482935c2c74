"""Probes for a load balancer or an orchestrator: no login, nothing about patients.

- ``GET /healthz``: the process is alive and serving (liveness). Always 200.
- ``GET /readyz``: this node can do its work now (readiness): the database answers,
  its schema is at the migrations' head, and Redis answers when one is configured.
  200 ``{"status": "ready", "checks": {...}}``, else 503 ``{"status": "not-ready",
  "reason": ..., "checks": {...}}``. Reasons are fixed phrases, never an exception's
  text (which could carry a database URL).

``/readyz`` stays out of the OpenAPI document (an operational probe, not API).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import cache

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from server import __version__
from server.db import Database
from server.migrate import alembic_config

__all__ = ["check_database", "redis_answers", "router"]

log = logging.getLogger(__name__)
router = APIRouter()

#: The longest one check may take before the node counts as not ready.
CHECK_TIMEOUT_S = 3.0


@cache
def _head_revisions() -> frozenset[str]:
    """The migrations' head revision(s), read once from the scripts."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def check_database(db: Database) -> str:
    """``ok``, ``migrations pending`` or ``migrations ahead`` (raises if unreachable)."""
    with db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        current = frozenset(MigrationContext.configure(conn).get_current_heads())
    heads = _head_revisions()
    if current == heads:
        return "ok"
    if current and not current & heads and _is_newer(current):
        return "migrations ahead"
    return "migrations pending"


def _is_newer(current: frozenset[str]) -> bool:
    """A revision this code does not know: a newer release migrated the database."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    known = {rev.revision for rev in script.walk_revisions()}
    return not current <= known


async def redis_answers(url: str) -> bool:
    try:
        import redis.asyncio as aioredis
    except ImportError:
        log.error("ROOMSCRIBE_REDIS_URL is set but the redis package is not installed")
        return False
    client = aioredis.Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_S,
                                     socket_timeout=CHECK_TIMEOUT_S)
    try:
        return bool(await asyncio.wait_for(client.ping(), CHECK_TIMEOUT_S))
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()


@router.get("/healthz", tags=["ops"])
async def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", tags=["ops"], include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    services = request.app.state.services
    checks: dict[str, str] = {}
    reason = ""
    try:
        state = await asyncio.wait_for(services.run_db(check_database, services.db),
                                       CHECK_TIMEOUT_S)
    except Exception as err:  # unreachable, refused, timed out: the class name is enough
        log.warning("readiness: database check failed: %s", type(err).__name__)
        state = "unreachable"
    checks["database"] = "ok" if state != "unreachable" else "unreachable"
    checks["migrations"] = state if state != "unreachable" else "unknown"
    if state != "ok":
        reason = "database unreachable" if state == "unreachable" else state
    redis_url = services.settings.redis_url
    if not redis_url:
        checks["redis"] = "not configured"
    elif await redis_answers(redis_url):
        checks["redis"] = "ok"
    else:
        checks["redis"] = "unreachable"
        reason = reason or "redis unreachable"
    if reason:
        return JSONResponse({"status": "not-ready", "reason": reason, "checks": checks},
                            status_code=503)
    return JSONResponse({"status": "ready", "version": __version__, "checks": checks})
