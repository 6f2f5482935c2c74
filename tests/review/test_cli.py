"""``roomscribe review``: the admin's path from nothing to a queue, on the real database."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from server.cli import main as roomscribe
from server.db import Database
from server.review.cli import main as review
from server.settings import Settings
from tests.review.world import add_encounter, make_draft, make_transcript


def run(capsys: pytest.CaptureFixture[str], settings: Settings, *argv: str) -> object:
    assert review(list(argv), settings) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_setup_a_clinic_and_import_a_draft(settings: Settings, db: Database, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from server import registry
    from server.models import Device

    with db.session() as s:
        registry.create_clinic(s, "Main Street Clinic")
        registry.create_room(s, "main-street-clinic", "Exam 3", "exam-3")
        s.add(Device(id="dev-exam-3", room_id="exam-3"))
    out = run(capsys, settings, "user", "add", "drjones", "--clinic", "main-street-clinic",
              "--role", "physician", "--name", "Dr Jones")
    assert out["roles"] == {"main-street-clinic": "physician"} and len(out["password"]) >= 12
    monkeypatch.setattr("sys.stdin", io.StringIO("partner password\n"))
    out = run(capsys, settings, "user", "add", "pat", "--clinic", "main-street-clinic",
              "--role", "partner", "--password-stdin")
    assert "password" not in out
    run(capsys, settings, "pool", "add", "General", "--clinic", "main-street-clinic",
        "--turnaround-h", "8")
    run(capsys, settings, "pool", "member", "add", "main-street-clinic-general", "pat")
    run(capsys, settings, "rule", "add", "--pool", "main-street-clinic-general")
    run(capsys, settings, "room-physician", "exam-3", "drjones")
    assert run(capsys, settings, "pool", "list")[0]["members"] == ["pat"]  # type: ignore[index]

    enc, _ = add_encounter(db, "exam-3", draft=False)
    (tmp_path / "draft.json").write_text(json.dumps(make_draft(enc).to_dict()))
    (tmp_path / "t.json").write_text(json.dumps(make_transcript(enc).to_dict()))
    out = run(capsys, settings, "draft", "import", enc, str(tmp_path / "draft.json"),
              "--transcript", str(tmp_path / "t.json"))
    assert out["pool_id"] == "main-street-clinic-general" and out["state"] == "ready"
    queue = run(capsys, settings, "queue", "--as", "pat")
    assert [q["state"] for q in queue] == ["ready"]  # type: ignore[union-attr]
    token = run(capsys, settings, "user", "token", "pat", "--name", "ehr")
    assert token["token"].startswith("rsu_")  # type: ignore[index]
    audit = run(capsys, settings, "audit", "--clinic", "main-street-clinic")
    assert [a["action"] for a in audit][:2] == ["view_queue", "intake"]  # type: ignore[index]
    assert audit[0]["detail"] == "1 entries"  # type: ignore[index]
    assert run(capsys, settings, "outbox", "flush")["written"] == []  # type: ignore[index]


def test_errors_are_one_clear_line(settings: Settings, db: Database,
                                   capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert review(["user", "add", "x", "--clinic", "nope", "--role", "partner"], settings) == 1
    assert capsys.readouterr().err.strip() == "roomscribe review: no clinic 'nope'"
    assert review(["queue", "--as", "ghost"], settings) == 1
    assert "no user 'ghost'" in capsys.readouterr().err
    # The top-level CLI hands `review ...` over to this module.
    monkeypatch.setenv("ROOMSCRIBE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ROOMSCRIBE_DATABASE_URL", settings.database_url)
    assert roomscribe(["review", "user", "list"]) == 0
