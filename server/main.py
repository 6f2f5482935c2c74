"""Builds the FastAPI app from Settings. Thin: routes live in ``server/routes``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from server import __version__
from server.asr.engine import SpeechEngine
from server.fleet import FleetMonitor
from server.ingest.handoff import EncounterStage
from server.migrate import upgrade
from server.nostore import NoStore
from server.pipeline.events import OnEvent, log_event
from server.privacy import routes as privacy_routes
from server.review import routes as review_routes
from server.routes import (
    agent_releases,
    device_actions,
    device_ws,
    encounters,
    health,
    metrics,
    registry,
)
from server.services import Services
from server.settings import Settings
from server.transcripts import routes as transcript_routes
from server.webheaders import SecurityHeaders

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(settings: Settings, stage: EncounterStage | None = None, *,
               engine: SpeechEngine | None = None, on_event: OnEvent = log_event) -> FastAPI:
    """``stage`` / ``engine``: a test's own stage, or the real stages around its engine
    (server/services.py); ``on_event``: where pipeline events go (default: the log)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.build(settings, stage, engine=engine, on_event=on_event)
        await services.run_db(upgrade, services.db)
        if services.drafting is not None:  # fail fast: NLP models built?
            await services.run_db(services.drafting.preload)
        await services.start()  # bus, interrupted visits, the stages' job runner
        # device health and alerts: judged by the nodes that serve HTTP, not by workers
        fleet = FleetMonitor.from_settings(
            settings, services.db, services.devices.is_connected,
            services.transcription.monitor if services.transcription is not None else None)
        fleet.start()
        app.state.services = services
        log.info("RoomScribe %s serving; database %s", __version__, services.db.engine.url)
        try:
            yield
        finally:
            await fleet.aclose()
            await services.aclose()

    app = FastAPI(title="RoomScribe", version=__version__, lifespan=lifespan)
    app.add_middleware(NoStore)  # no PHI in a browser cache
    app.add_middleware(SecurityHeaders, behind_tls=settings.secure_cookies)  # CSP, no framing
    app.include_router(health.router)  # /healthz, /readyz: load balancer probes
    app.include_router(metrics.router)  # /metrics: Prometheus (token or IT key)
    app.include_router(device_ws.router)
    app.include_router(registry.router)
    app.include_router(device_actions.router)  # diagnostics, live config: IT key
    app.include_router(agent_releases.router)  # agent updates: IT key / device token
    app.include_router(encounters.router)
    app.include_router(transcript_routes.router)
    app.include_router(privacy_routes.router)  # consent, legal hold, retention
    review_routes.install(app)  # review API, /ws/review, the web UI

    return app
