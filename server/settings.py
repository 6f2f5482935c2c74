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

    # --- drafting (server/drafting.py)
    #: Draft a note from each finished transcript and queue it for review (needs the NLP
    #: models: `roomscribe models build`). Off: transcripts are stored, nothing is drafted.
    drafting: bool = True
    #: While a visit goes on, prepare its note from the transcript so far at most this
    #: often (seconds), so the draft at the end only computes what is new; 0 = only at
    #: the end (slower drafts, a little less CPU during visits).
    draft_prepare_every_s: float = Field(10.0, ge=0)
    #: The most of the NLP worker's time those preparations may take (the rest is left to
    #: speech recognition); drafts at the end of a visit are not limited.
    draft_prepare_share: float = Field(0.35, gt=0, le=1)
    #: CPU threads for the NLP models' inference; they share the cores with speech
    #: recognition, which keeps the rooms in real time.
    nlp_threads: int = Field(1, ge=1, le=64)
    #: Where a clinic's own note templates live (``<name>.toml``, ``[[section]] key =
    #: ... title = ...``); a clinic picks one by name (PUT
    #: /api/v1/admin/clinics/{clinic}/note-settings). Empty = data_dir/templates.
    note_templates_dir: Path | None = None

    # --- privacy (server/privacy)
    #: Audio of a visit without recorded consent (where the clinic requires consent) is
    #: held, never transcribed, and deleted this many minutes after its last audio.
    consent_grace_min: float = Field(10.0, ge=0)
    #: How often a held visit's consent is checked again from the database (seconds).
    consent_poll_s: float = Field(5.0, gt=0)

    # --- transcription (server/asr, server/modelstore, server/transcripts)
    #: Model manifests (*.toml) and fetched/built model files.
    models_dir: Path = Field(Path("models"), description="models/*.toml and the model files")
    #: auto (vosk when its English model is present, else whisper) | vosk | whisper |
    #: two-pass (vosk partials, whisper finals) | none (audio is stored, not transcribed)
    asr_engine: str = "auto"
    asr_vosk_model: str = "vosk-small-en-us"
    asr_whisper_model: str = "whisper-tiny.en"
    #: One term a line; "" = the bundled server/asr/vocabulary/medical_en.txt, "none" = off.
    asr_vocabulary: str = ""
    #: Worker threads running engines (rooms decoded at once) and CPU threads per decode.
    asr_workers: int = Field(2, ge=1, le=64)
    asr_threads_per_worker: int = Field(1, ge=1, le=16)
    #: Whisper: seconds of new speech between partial decodes of the open utterance (0 = none).
    asr_partial_interval_s: float = Field(1.5, ge=0)
    #: A pause this long ends an utterance (a final segment); longer ones are split.
    asr_min_silence_ms: int = Field(500, ge=100)
    #: tiny.en drops the start of 15–20 s utterances (the demo visit lost its oxycodone
    #: order at 20 s and kept it at 12 s), so long turns are cut at 12 s
    asr_max_segment_s: float = Field(12.0, ge=2)
    #: Whisper, against text from silence and noise (server/asr/whisper_engine.py): an
    #: utterance needs this much audio the VAD calls speech to be decoded ...
    asr_min_speech_ms: int = Field(300, ge=0)
    #: ... and its speech this loud (RMS of the speech windows, dBFS): quieter is background
    #: (a radio in the corridor, the next room); -120 = off. Speech at the device's usual
    #: gain is about -20 dBFS, a soft voice across the room about -38.
    asr_min_speech_dbfs: float = Field(-42.0, le=0)
    #: A final that is only a stock Whisper silence phrase ("Thank you.") is kept only when
    #: the VAD's mean speech probability over it reaches this.
    asr_stock_phrase_vad_prob: float = Field(0.85, ge=0, le=1)
    #: Audio waiting for the engine beyond this many seconds = the room is falling behind.
    asr_behind_threshold_s: float = Field(5.0, gt=0)
    #: Tell voices apart (resemblyzer voice embeddings clustered per visit) so each voice
    #: gets one role from the role model's votes; off, or resemblyzer not installed:
    #: roles from the words alone.
    asr_diarization: bool = True

    # --- review queue and web UI (server/review, server/web)
    #: Signs CSRF tokens. Outside dev it must be set, 32+ characters, not the default.
    secret_key: str = Field("dev-only-insecure-secret-key-change-me", repr=False)
    session_ttl_h: float = Field(12.0, gt=0, le=24 * 30)
    #: Session cookie only over HTTPS (always on in production and with TLS configured).
    session_cookie_secure: bool = False
    #: Where signed notes' FHIR bundles are written; empty = data_dir/fhir-outbox.
    fhir_outbox_dir: Path | None = None

    # --- login hardening (server/review/auth.py, server/review/ratelimit.py)
    #: Wrong passwords in a row that lock an account (the counter is a database column, so
    #: the limit holds across server nodes); each further lock lasts twice as long ...
    login_max_failures: int = Field(10, ge=1, le=1000)
    #: ... starting at this many seconds ...
    login_lockout_s: float = Field(300.0, gt=0)
    #: ... and never longer than this, so a stranger cannot lock an account for good.
    login_lockout_max_s: float = Field(3600.0, gt=0)
    #: Failed logins one client address may make per window (in-process: per server node);
    #: beyond it the address gets 429 with Retry-After, the pause doubling per repeat.
    login_ip_failures: int = Field(30, ge=1)
    login_ip_window_s: float = Field(300.0, gt=0)
    #: Password hashes (argon2id, ~64 MiB each) computed at once, and logins allowed to wait
    #: for one; logins beyond that are refused at once with 503 (memory stays bounded and
    #: the worker threads stay free for everyone else).
    password_hash_concurrency: int = Field(2, ge=1, le=64)
    password_hash_queue: int = Field(8, ge=0, le=1000)
    #: The longest a login waits for a hashing slot before 503.
    password_hash_wait_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _check_review(self) -> Settings:
        if self.environment != "dev" and (
                self.secret_key.startswith("dev-only-") or len(self.secret_key) < 32):
            raise ValueError("set ROOMSCRIBE_SECRET_KEY (32+ random characters) outside dev, "
                             "e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'")
        return self

    @property
    def fhir_outbox(self) -> Path:
        return self.fhir_outbox_dir or self.data_dir / "fhir-outbox"

    @property
    def note_templates(self) -> Path:
        return self.note_templates_dir or self.data_dir / "templates"

    @property
    def secure_cookies(self) -> bool:
        return (self.session_cookie_secure or self.environment == "production"
                or self.ssl_certfile is not None)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.asr_engine not in ("auto", "vosk", "whisper", "two-pass", "none"):
            raise ValueError("ROOMSCRIBE_ASR_ENGINE must be auto, vosk, whisper, two-pass or none")
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
