"""The server's one settings object, read from ``ROOMSCRIBE_*`` variables or ``.env``.

Built once at the entry point (``roomscribe serve``, ``roomscribe admin``) and
passed down; nothing else reads the environment.
"""

from __future__ import annotations

import os
import socket
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
    #: A connection must finish sending a request's line and headers within this many
    #: seconds of opening (or of its previous response) or it is closed (slowloris).
    http_header_timeout_s: float = Field(10.0, gt=0, le=600)
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    # --- several nodes (server/bus; README "Running on several machines")
    #: Redis for live events between nodes and workers (``redis://host:6379/0``); empty =
    #: one process, nothing leaves it.
    redis_url: str = Field("", repr=False)
    #: This process's name in the cluster (logs, device hand-over); empty = hostname-pid.
    node_id: str = ""
    #: Prefix of this deployment's Redis channels (two deployments can share one Redis).
    bus_channel_prefix: str = Field("roomscribe", pattern=r"^[A-Za-z0-9_.-]+$")
    #: Live events waiting for Redis (while it restarts) before new ones are dropped.
    bus_outbox: int = Field(10_000, ge=1)

    # --- monitoring (server/metrics.py, GET /metrics)
    #: Bearer token Prometheus sends to read /metrics (16+ characters); empty = only the
    #: IT admin API key may read it.
    metrics_token: str = Field("", repr=False, pattern=r"^(|.{16,})$")
    #: How long the admin API waits for a device's answer (diagnostics, config change).
    device_answer_timeout_s: float = Field(10.0, gt=0, le=120)

    # --- stages in worker processes (server/work; `roomscribe worker`)
    #: The stages `roomscribe serve` runs itself: all (the one-process default) | none
    #: (an ingest/web node: visits are queued for `roomscribe worker` processes) | a
    #: comma list of transcription, drafting.
    run_stages: str = Field("all", pattern=r"^[a-z, ]*$")
    #: A worker's lease on a visit lasts this long after its last renewal: a worker that
    #: died is replaced this many seconds after its last heartbeat (seconds).
    stage_lease_s: float = Field(15.0, gt=1)
    #: Leases are renewed this often (well under stage_lease_s).
    stage_heartbeat_s: float = Field(2.0, gt=0)
    #: Queued visits, and audio stored by another node, are looked for this often (s).
    stage_poll_s: float = Field(0.5, gt=0)
    #: Visits one process transcribes or drafts at once (its ASR workers share the cores).
    stage_capacity: int = Field(64, ge=1, le=10_000)

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
    #: The longest audio is held without consent while its visit has not ended (a device
    #: left recording, an end that never came): then it is deleted like expired held
    #: audio, counted from when the server first heard of the visit (minutes).
    consent_hold_max_min: float = Field(60.0, gt=0)

    # --- the fleet: device health and alerts (server/fleet; rules in server/fleet/rules.py)
    #: How often every device's health is judged and alerts raised or resolved (seconds).
    fleet_evaluate_every_s: float = Field(15.0, gt=0)
    #: Status reports kept per device for this many hours (pruned as new ones arrive).
    fleet_history_h: float = Field(24.0, gt=0)
    #: When the clinics are open, in each clinic's own time zone: comma-separated
    #: ``<days> <HH:MM>-<HH:MM>`` (``Mon-Fri 07:00-19:00, Sat 08:00-12:00``); "" = never.
    fleet_clinic_hours: str = "Mon-Fri 07:00-19:00"
    #: Offline during clinic hours: warning / failing after this many minutes; after
    #: hours a warning only, after the third.
    fleet_offline_warn_min: float = Field(2.0, ge=0)
    fleet_offline_fail_min: float = Field(5.0, ge=0)
    fleet_offline_after_hours_warn_min: float = Field(720.0, ge=0)
    #: Listening with the input peak at or below this level (dBFS) is silence ...
    fleet_silence_dbfs: float = Field(-60.0, le=0)
    #: ... a warning / failing (mic unplugged or muted) after this many minutes.
    fleet_silent_warn_min: float = Field(2.0, ge=0)
    fleet_silent_fail_min: float = Field(5.0, ge=0)
    #: Spool use (% of the device's cap) for a warning / failing.
    fleet_spool_warn_pct: float = Field(50.0, ge=0, le=100)
    fleet_spool_fail_pct: float = Field(80.0, ge=0, le=100)
    #: Age of the oldest audio the server has not acknowledged (s) for a warning / failing.
    fleet_unacked_warn_s: float = Field(120.0, ge=0)
    fleet_unacked_fail_s: float = Field(600.0, ge=0)
    #: Capture errors within this many minutes: any is a warning, this many failing.
    fleet_capture_window_min: float = Field(10.0, gt=0)
    fleet_capture_errors_fail: int = Field(3, ge=1)
    #: A device clock further than this from the server's (s) is failing.
    fleet_clock_offset_max_s: float = Field(2.0, gt=0)
    #: Free disk on the device's spool volume (%) for a warning / failing.
    fleet_disk_warn_pct: float = Field(10.0, ge=0, le=100)
    fleet_disk_fail_pct: float = Field(3.0, ge=0, le=100)
    fleet_cpu_temp_warn_c: float = Field(80.0)
    #: A room's transcription backlog (audio stored, not yet decoded) over this many
    #: seconds is a warning, and failing (an alert) once it has stayed over for the second;
    #: judged by the node whose process transcribes the room.
    fleet_backlog_max_s: float = Field(60.0, gt=0)
    fleet_backlog_for_s: float = Field(60.0, ge=0)
    #: Alerts are POSTed as JSON to each of these URLs (comma-separated; "" = none), with
    #: this many attempts, the pause doubling from the back-off (s).
    fleet_webhook_urls: str = Field("", repr=False)
    fleet_webhook_attempts: int = Field(5, ge=1, le=20)
    fleet_webhook_backoff_s: float = Field(2.0, gt=0)
    #: Alerts are also emailed (server/fleet/email.py), one message per alert raised and
    #: one when it resolves, through this SMTP server ("" = no email) ...
    fleet_smtp_host: str = ""
    fleet_smtp_port: int = Field(587, ge=1, le=65535)
    #: ... upgraded with STARTTLS (a server that does not offer it is refused; off only
    #: for a relay on the same host), its certificate checked against the system's CAs
    #: or this CA file ...
    fleet_smtp_starttls: bool = True
    fleet_smtp_ca_file: Path | None = None
    #: ... logging in as this user ("" = no login) with this password, or the password
    #: in this file (a container secret); never logged.
    fleet_smtp_user: str = ""
    fleet_smtp_password: str = Field("", repr=False)
    fleet_smtp_password_file: Path | None = None
    #: The sender, and the recipients: comma-separated addresses, each told of every
    #: clinic's alerts or, written ``<clinic-id>=<address>``, of that clinic's only.
    fleet_email_from: str = ""
    fleet_email_to: str = ""
    #: Attempts per message, the pause doubling from the back-off (s).
    fleet_email_attempts: int = Field(5, ge=1, le=20)
    fleet_email_backoff_s: float = Field(2.0, gt=0)

    # --- transcription (server/asr, server/modelstore, server/transcripts)
    #: Model manifests (*.toml) and fetched/built model files.
    models_dir: Path = Field(Path("models"), description="models/*.toml and the model files")
    #: auto (vosk when its English model is present, else whisper) | vosk | whisper |
    #: two-pass (vosk partials, whisper finals) | none (audio is stored, not transcribed)
    asr_engine: str = "auto"
    asr_vosk_model: str = "vosk-small-en-us"
    asr_whisper_model: str = "whisper-tiny.en"
    #: Where Whisper runs: cpu, or cuda on a GPU worker (faster-whisper's CTranslate2 CUDA
    #: build and the NVIDIA libraries it needs, cuBLAS and cuDNN, must be installed) ...
    asr_whisper_device: str = Field("cpu", pattern=r"^(cpu|cuda|auto)$")
    #: ... which GPU, and the CTranslate2 compute type ("" = int8 on cpu, float16 on cuda).
    asr_whisper_device_index: int = Field(0, ge=0)
    asr_whisper_compute_type: str = Field("", pattern=r"^[a-z0-9_]*$")
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
        from server.pipeline.events import parse_stages

        try:
            parse_stages(self.run_stages)
        except ValueError as err:
            raise ValueError(f"ROOMSCRIBE_RUN_STAGES: {err}") from err
        if self.stage_heartbeat_s * 2 >= self.stage_lease_s:
            raise ValueError("ROOMSCRIBE_STAGE_HEARTBEAT_S must be under half of "
                             "ROOMSCRIBE_STAGE_LEASE_S")
        return self

    @model_validator(mode="after")
    def _check_email(self) -> Settings:
        if not self.fleet_smtp_host:
            return self
        from server.fleet.email import Recipients, check_address

        try:
            check_address(self.fleet_email_from, "sender")
            if not Recipients.parse(self.fleet_email_to):
                raise ValueError("no recipients")
        except ValueError as err:
            raise ValueError(f"alert email (ROOMSCRIBE_FLEET_EMAIL_FROM / _TO): {err}"
                             ) from None
        if self.fleet_smtp_password and self.fleet_smtp_password_file is not None:
            raise ValueError("set ROOMSCRIBE_FLEET_SMTP_PASSWORD or "
                             "ROOMSCRIBE_FLEET_SMTP_PASSWORD_FILE, not both")
        if self.fleet_smtp_user and not self.fleet_smtp_starttls:
            raise ValueError("ROOMSCRIBE_FLEET_SMTP_USER needs STARTTLS: a password is not "
                             "sent in the clear")
        return self

    @property
    def resolved_node_id(self) -> str:
        return self.node_id or f"{socket.gethostname()}-{os.getpid()}"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'roomscribe.db').resolve()}"
