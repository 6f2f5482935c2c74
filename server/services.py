"""The long-lived objects of one server process, built once from Settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from server.db import Database
from server.ingest.handoff import EncounterStage, Handoff, LoggingStage
from server.ingest.session import ConnectedDevices
from server.ingest.store import AudioStore
from server.settings import Settings

__all__ = ["Services"]

T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    db: Database
    store: AudioStore
    handoff: Handoff
    devices: ConnectedDevices
    executor: ThreadPoolExecutor
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, stage: EncounterStage | None = None) -> Services:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        store = AudioStore(db, capture_gap_tolerance_ms=settings.capture_gap_tolerance_ms)
        executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="db")
        handoff = Handoff(store, stage or LoggingStage(), executor)
        return cls(settings, db, store, handoff, ConnectedDevices(), executor)

    async def run_db(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def aclose(self) -> None:
        await self.handoff.aclose()
        self.executor.shutdown(wait=True)
        self.db.dispose()
