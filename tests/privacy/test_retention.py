"""The retention job deletes only what a policy names, records it, and respects legal
holds; dry runs change nothing; deletion on request; the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from server.db import Database
from server.models import AudioFrameRow, Clinic, Encounter, PrivacyDeletion
from server.privacy import cli
from server.privacy.retention import DeletionReason, LegalHoldError, purge, run_retention
from server.review.models import AuditEvent, NoteVersion, ReviewItem
from server.settings import Settings
from server.transcripts.tables import TranscriptSegmentRow
from tests.review.world import World, add_encounter

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(minutes=10)


def _signed(db: Database, room: str, days_ago: float, seconds: float = 1.0) -> str:
    enc, item_id = add_encounter(db, room, seconds)
    with db.session() as s:
        item = s.get(ReviewItem, item_id)
        assert item is not None
        item.state, item.signed_at = "signed", NOW - timedelta(days=days_ago)
        e = s.get(Encounter, enc)
        assert e is not None
        e.consent_state = "given"
        for n in range(2):
            s.add(TranscriptSegmentRow(encounter_id=enc, segment_id=n, start_s=n, end_s=n + 1,
                                       text="words", speaker="doctor", words=[]))
    return enc


def _frames(db: Database, enc: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(AudioFrameRow)
                        .where(AudioFrameRow.encounter_id == enc)) or 0


def _segments(db: Database, enc: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(TranscriptSegmentRow)
                        .where(TranscriptSegmentRow.encounter_id == enc)) or 0


def test_audio_older_than_the_policy_after_signing_is_deleted_and_nothing_else(
        db: Database, world: World) -> None:
    old = _signed(db, "exam-1", days_ago=31)
    recent = _signed(db, "exam-1", days_ago=29)
    unsigned, _ = add_encounter(db, "exam-2", 1.0)  # never signed: kept
    south_old = _signed(db, "south-1", days_ago=31)
    with db.session() as s:
        s.get(Clinic, "south-clinic").audio_retention_days = 60  # type: ignore[union-attr]
        s.get(Encounter, unsigned).consent_state = "given"  # type: ignore[union-attr]
    with db.session() as s:
        done = run_retention(s, NOW, grace=GRACE)
    assert [(p.encounter_id, p.reason, p.audio_frames) for p in done] == [
        (old, "retention", 10)]
    assert _frames(db, old) == 0
    assert [_frames(db, e) for e in (recent, unsigned, south_old)] == [10, 10, 10]
    assert _segments(db, old) == 2  # transcripts are kept (no transcript policy)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(NoteVersion)) == 4  # notes kept
        row = s.scalars(select(PrivacyDeletion)).one()
        assert (row.encounter_id, row.reason, row.audio_frames, row.audio_bytes) == (
            old, "retention", 10, 32_000)
        audit = s.scalars(select(AuditEvent).where(AuditEvent.action == "delete")).one()
        assert audit.encounter_id == old and "10 audio frames" in audit.detail
        assert s.get(Encounter, old).audio_deleted_at is not None  # type: ignore[union-attr]
    with db.session() as s:  # a second run finds nothing more to do
        assert run_retention(s, NOW, grace=GRACE) == []


def test_transcript_policy_deletes_transcripts_but_never_notes(db: Database,
                                                               world: World) -> None:
    enc = _signed(db, "exam-1", days_ago=8)
    with db.session() as s:
        s.get(Clinic, "north-clinic").transcript_retention_days = 7  # type: ignore[union-attr]
    with db.session() as s:
        done = run_retention(s, NOW, grace=GRACE)
    assert [(p.reason, p.transcript_segments, p.audio_frames) for p in done] == [
        ("transcript_retention", 2, 0)]
    assert _segments(db, enc) == 0 and _frames(db, enc) == 10
    with db.session() as s:
        item = s.scalars(select(ReviewItem).where(ReviewItem.encounter_id == enc)).one()
        assert not item.transcript
        assert s.scalar(select(func.count()).select_from(NoteVersion)
                        .where(NoteVersion.item_id == item.id)) == 1
    with db.session() as s:
        assert run_retention(s, NOW, grace=GRACE) == []


def test_legal_hold_blocks_every_deletion(db: Database, world: World) -> None:
    enc = _signed(db, "exam-1", days_ago=400)
    with db.session() as s:
        e = s.get(Encounter, enc)
        assert e is not None
        e.legal_hold, e.legal_hold_reason = True, "litigation 2026-17"
        s.get(Clinic, "north-clinic").transcript_retention_days = 1  # type: ignore[union-attr]
    with db.session() as s:
        assert run_retention(s, NOW, grace=GRACE) == []
    with db.session() as s, pytest.raises(LegalHoldError, match="litigation"):
        purge(s, s.get(Encounter, enc), DeletionReason.REQUEST, now=NOW)  # type: ignore[arg-type]
    assert _frames(db, enc) == 10 and _segments(db, enc) == 2


def test_dry_run_changes_nothing(db: Database, world: World) -> None:
    enc = _signed(db, "exam-1", days_ago=31)
    with db.session() as s:
        done = run_retention(s, NOW, grace=GRACE, dry_run=True)
    assert [(p.encounter_id, p.audio_frames) for p in done] == [(enc, 10)]
    assert _frames(db, enc) == 10
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(PrivacyDeletion)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEvent)
                        .where(AuditEvent.action == "delete")) == 0
        assert s.get(Encounter, enc).audio_deleted_at is None  # type: ignore[union-attr]


def test_held_audio_past_its_grace_period_is_deleted_by_the_job(db: Database,
                                                                world: World) -> None:
    held, _ = add_encounter(db, "exam-1", 1.0, draft=False)
    ended_at = NOW - timedelta(minutes=11)
    with db.session() as s:
        s.get(Encounter, held).ended_at_us = int(ended_at.timestamp() * 1e6)  # type: ignore[union-attr]
    with db.session() as s:
        assert run_retention(s, NOW - timedelta(minutes=2), grace=GRACE) == []
    with db.session() as s:
        done = run_retention(s, NOW, grace=GRACE)
    assert [(p.reason, p.audio_frames) for p in done] == [("held_expired", 10)]
    assert _frames(db, held) == 0


def test_cli_run_delete_hold_and_log(settings: Settings, db: Database, world: World,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    enc = _signed(db, "exam-1", days_ago=1)
    assert cli.main(["run", "--dry-run"], settings) == 0
    assert json.loads(capsys.readouterr().out) == {"dry_run": True, "deleted": []}
    assert cli.main(["hold", enc, "--reason", "subpoena"], settings) == 0
    assert json.loads(capsys.readouterr().out)["legal_hold"] is True
    assert cli.main(["delete", enc, "--reason", "patient asked"], settings) == 1
    assert "legal hold" in capsys.readouterr().err
    assert cli.main(["hold", enc, "--clear"], settings) == 0
    capsys.readouterr()
    assert cli.main(["delete", enc, "--reason", "patient asked", "--by", "privacy office"],
                    settings) == 0
    deleted = json.loads(capsys.readouterr().out)["deleted"]
    assert (deleted["audio_frames"], deleted["transcript_segments"],
            deleted["note_versions"]) == (10, 2, 1)
    assert _frames(db, enc) == 0 and _segments(db, enc) == 0
    with db.session() as s:
        assert s.scalars(select(ReviewItem).where(ReviewItem.encounter_id == enc)).first() \
            is None
        actions = list(s.scalars(select(AuditEvent.action)
                                 .where(AuditEvent.encounter_id == enc)
                                 .order_by(AuditEvent.id)))
    assert actions[-3:] == ["legal_hold", "legal_hold", "delete"]
    assert cli.main(["log", "--encounter", enc], settings) == 0
    log = json.loads(capsys.readouterr().out)
    assert [(r["reason"], r["actor"]) for r in log] == [("request", "privacy office")]
    assert cli.main(["policy", "north-clinic", "--audio-days", "7", "--transcript-days",
                     "keep", "--consent-required", "off"], settings) == 0
    assert json.loads(capsys.readouterr().out) == {
        "clinic": "north-clinic", "consent_required": False, "audio_retention_days": 7,
        "transcript_retention_days": None}
