"""Shared test helpers: a real server on a loopback port, database reset, enrolment."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import uvicorn
from sqlalchemy import MetaData, create_engine

from server import registry
from server.cli import WS_MAX_MESSAGE
from server.db import Database
from server.lab.processes import free_port
from server.main import create_app
from server.migrate import upgrade
from server.settings import Settings

TEST_DATABASE_URL = os.environ.get("ROOMSCRIBE_TEST_DATABASE_URL", "")


def reset_database(url: str) -> None:
    """Drop every table so each test starts from an empty schema (PostgreSQL runs)."""
    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    engine.dispose()


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    # asr_engine "none": tests that want transcription pass a stage or set an engine.
    values: dict[str, object] = {"data_dir": data_dir, "environment": "dev",
                                 "asr_engine": "none"}
    if TEST_DATABASE_URL:
        values["database_url"] = TEST_DATABASE_URL
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Enrolled:
    device_id: str
    room_id: str
    token: str


def enrol_device(db: Database, room_id: str = "exam-1", clinic: str = "Test Clinic") -> Enrolled:
    """Clinic + room (if missing) + device, enrolled through the real code exchange."""
    with db.session() as s:
        from server.models import Clinic, Room

        if s.get(Room, room_id) is None:
            clinic_row = s.query(Clinic).filter_by(name=clinic).first()
            if clinic_row is None:
                clinic_row = registry.create_clinic(s, clinic)
            registry.create_room(s, clinic_row.id, room_id, room_id)
        device = registry.create_device(s, room_id)
        code = registry.issue_enrolment_code(s, device.id, timedelta(hours=1))
    with db.session() as s:
        enrolment = registry.enroll_device(s, code)
    return Enrolled(enrolment.device_id, enrolment.room_id, enrolment.token)


class ServerThread:
    """The real app under uvicorn on 127.0.0.1, in a thread of this process."""

    def __init__(self, settings: Settings, port: int | None = None, **app_kwargs: object) -> None:
        self.settings = settings
        self.port = port or free_port()
        self.app = create_app(settings, **app_kwargs)  # type: ignore[arg-type]
        ssl = {}
        if settings.ssl_certfile:
            ssl = {"ssl_certfile": str(settings.ssl_certfile),
                   "ssl_keyfile": str(settings.ssl_keyfile)}
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                ws_max_size=WS_MAX_MESSAGE, lifespan="on", **ssl)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def ws_url(self) -> str:
        scheme = "wss" if self.settings.ssl_certfile else "ws"
        return f"{scheme}://127.0.0.1:{self.port}/ws/device"

    @property
    def http_url(self) -> str:
        scheme = "https" if self.settings.ssl_certfile else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)

    @property
    def services(self):  # type: ignore[no-untyped-def]
        return self.app.state.services


@contextlib.contextmanager
def running_server(settings: Settings, **app_kwargs: object) -> Iterator[ServerThread]:
    server = ServerThread(settings, **app_kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def migrated_database(settings: Settings) -> Database:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    upgrade(db)
    return db
