"""Migration 0006 up and down on the real engine: existing rows get the defaults
(consent required, 30 days of audio, transcripts kept; no consent, no hold)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from server.db import Database
from server.migrate import alembic_config, upgrade
from server.settings import Settings
from tests.support import TEST_DATABASE_URL, reset_database


def _downgrade(db: Database, revision: str) -> None:
    cfg = alembic_config(db.url)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def _columns(db: Database, table: str) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns(table)}


def test_0006_up_fills_defaults_and_down_removes_it(settings: Settings) -> None:
    if TEST_DATABASE_URL:
        reset_database(TEST_DATABASE_URL)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        upgrade(db, "0005")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO clinics (id, name, created_at) "
                              "VALUES ('c', 'C', CURRENT_TIMESTAMP)"))
            conn.execute(text("INSERT INTO rooms (id, clinic_id, name, created_at) "
                              "VALUES ('r', 'c', 'R', CURRENT_TIMESTAMP)"))
            conn.execute(text("INSERT INTO devices (id, room_id, name, agent_version, "
                              "reported_state, created_at) VALUES ('d', 'r', '', '', '', "
                              "CURRENT_TIMESTAMP)"))
            conn.execute(text(
                "INSERT INTO encounters (id, device_id, room_id, status, started_at_us, "
                "next_seq, audio_bytes, last_frame_us, created_at, updated_at) VALUES "
                "('e', 'd', 'r', 'recording', 0, 0, 0, 0, CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP)"))
        upgrade(db)
        with db.engine.connect() as conn:
            clinic = conn.execute(text(
                "SELECT consent_required, audio_retention_days, transcript_retention_days "
                "FROM clinics")).one()
            enc = conn.execute(text("SELECT consent_state, legal_hold, audio_deleted_at "
                                    "FROM encounters")).one()
        assert (bool(clinic[0]), clinic[1], clinic[2]) == (True, 30, None)
        assert (enc[0], bool(enc[1]), enc[2]) == ("", False, None)
        assert "privacy_deletions" in inspect(db.engine).get_table_names()
        _downgrade(db, "0005")
        assert "consent_state" not in _columns(db, "encounters")
        assert "consent_required" not in _columns(db, "clinics")
        assert "privacy_deletions" not in inspect(db.engine).get_table_names()
        upgrade(db)  # and up again
        assert "legal_hold" in _columns(db, "encounters")
    finally:
        db.dispose()
