"""Builds the FastAPI app from Settings. Thin: routes live in ``server/routes``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from server import __version__
from server.ingest.handoff import EncounterStage
from server.migrate import upgrade
from server.nostore import NoStore
from server.privacy import routes as privacy_routes
from server.review import routes as review_routes
from server.routes import device_ws, encounters, registry
from server.services import Services
from server.settings import Settings
from server.transcripts import routes as transcript_routes
from server.transcripts.resume import resume_unfinished
from server.webheaders import SecurityHeaders

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(settings: Settings, stage: EncounterStage | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.build(settings, stage)
        await services.run_db(upgrade, services.db)
        if services.drafting is not None:  # fail fast: NLP models built?
            await services.run_db(services.drafting.preload)
        await resume_unfinished(services)
        app.state.services = services
        log.info("RoomScribe %s serving; database %s", __version__, services.db.engine.url)
        try:
            yield
        finally:
            await services.aclose()

    app = FastAPI(title="RoomScribe", version=__version__, lifespan=lifespan)
    app.add_middleware(NoStore)  # no PHI in a browser cache
    app.add_middleware(SecurityHeaders, behind_tls=settings.secure_cookies)  # CSP, no framing
    app.include_router(device_ws.router)
    app.include_router(registry.router)
    app.include_router(encounters.router)
    app.include_router(transcript_routes.router)
    app.include_router(privacy_routes.router)  # consent, legal hold, retention
    review_routes.install(app)  # review API, /ws/review, the web UI

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
