"""The server's one settings object, read from ``ROOMSCRIBE_*`` variables or ``.env``.

Built once at the entry point (``roomscribe serve``, ``roomscribe admin``) and
passed down; nothing else reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from protocol import MAX_AUDIO_PAYLOAD

__all__ = ["Settings"]

DEFAULT_DATA_DIR = Path("var")


class Settings(BaseSettings):
    """Everything the server needs to run. Frozen: build a new one to change it."""

    model_config = SettingsConfigDict(env_prefix="ROOMSCRIBE_", env_file=".env", frozen=True,
                                      extra="ignore")

    environment: str = Field("dev", description="dev | production")
    data_dir: Path = Field(DEFAULT_DATA_DIR, description="SQLite file, outbox, exports")
    database_url: str = Field("", description="SQLAlchemy URL; empty = SQLite in data_dir")
    host: str = "127.0.0.1"
    port: int = 8000
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    # Device uplink limits
    max_audio_payload: int = Field(MAX_AUDIO_PAYLOAD, gt=0, le=MAX_AUDIO_PAYLOAD)
    hello_timeout_s: float = 10.0
    ping_interval_s: float = 10.0
    enrolment_code_ttl_h: float = 24.0
    #: Per-connection backlog of received-but-unstored frames before reads pause.
    ingest_queue_frames: int = 256
    #: A capture-time jump larger than this between consecutive frames is a gap.
    capture_gap_tolerance_ms: int = 250

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.environment not in ("dev", "production"):
            raise ValueError("ROOMSCRIBE_ENVIRONMENT must be dev or production")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError(
                "set both ROOMSCRIBE_SSL_CERTFILE and ROOMSCRIBE_SSL_KEYFILE, or neither")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'roomscribe.db').resolve()}"
