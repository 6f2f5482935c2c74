"""``roomscribe worker --stages transcription,drafting``: the stages with no HTTP.

The same composition as ``roomscribe serve`` (server/services.py) less the web: it
takes visits from the durable queue by lease, renews each lease while it works, and
takes over a visit whose worker died once that worker's lease lapses, continuing its
transcript from what is stored. SIGTERM / SIGINT: stop taking jobs, give the held
ones back (another worker takes them at once), exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Collection

from server.asr.engine import SpeechEngine
from server.migrate import upgrade
from server.pipeline.events import Stage
from server.services import Services
from server.settings import Settings

__all__ = ["run_worker", "serve_worker"]

log = logging.getLogger(__name__)


async def serve_worker(settings: Settings, stages: Collection[Stage],
                       engine: SpeechEngine | None = None,
                       stop: asyncio.Event | None = None) -> int:
    """Run until ``stop`` is set (or SIGTERM / SIGINT). ``engine``: instead of the
    configured one (tests, benchmarks)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    services = Services.build(settings, engine=engine, stages=frozenset(stages))
    try:
        if services.runner is None:
            log.error("nothing to run: stages %s need transcription configured "
                      "(ROOMSCRIBE_ASR_ENGINE) or drafting on (ROOMSCRIBE_DRAFTING)",
                      ",".join(sorted(stages)) or "none")
            return 2
        await services.run_db(upgrade, services.db)
        if services.drafting is not None:  # fail fast: NLP models built?
            await services.run_db(services.drafting.preload)
        await services.start()
        log.info("worker %s taking %s jobs; database %s", services.runner.owner,
                 ",".join(services.runner.kinds), services.db.engine.url)
        await stop.wait()
        log.info("worker %s stopping: giving back %d job(s)", services.runner.owner,
                 len(services.runner.held))
        return 0
    finally:
        await services.aclose()


def run_worker(settings: Settings, stages: Collection[Stage],
               engine: SpeechEngine | None = None) -> int:
    return asyncio.run(serve_worker(settings, stages, engine))
