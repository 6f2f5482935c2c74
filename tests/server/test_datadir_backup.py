"""PHI on disk (issue 16): a private data directory, and a backup a clinic can restore."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from server.backup import BackupError, backup, restore
from server.datadir import lock_down
from server.db import Database
from server.lab.processes import BIN, RoomLab
from server.migrate import upgrade


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_lock_down_tightens_what_is_there_and_leaves_links(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "fhir-outbox").mkdir(parents=True, mode=0o755)
    for f in (data / "roomscribe.db", data / "roomscribe.db-wal", data / "fhir-outbox" / "a.json"):
        f.write_text("x")
        f.chmod(0o644)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not ours")
    elsewhere.chmod(0o644)
    (data / "link").symlink_to(elsewhere)
    changed = lock_down(data, data / "fhir-outbox")
    assert _mode(data) == 0o700 and _mode(data / "fhir-outbox") == 0o700
    assert all(_mode(f) == 0o600 for f in data.rglob("*") if f.is_file() and not f.is_symlink())
    assert _mode(elsewhere) == 0o644  # a link is never followed
    assert len(changed) == 5
    assert lock_down(data) == []  # idempotent


def test_the_server_keeps_its_files_private(tmp_path: Path) -> None:
    lab = RoomLab(tmp_path / "lab", extra_env={"ROOMSCRIBE_ASR_ENGINE": "none",
                                               "ROOMSCRIBE_DRAFTING": "false"})
    data = tmp_path / "lab" / "server"
    data.mkdir(parents=True, mode=0o755)
    data.chmod(0o755)
    old = data / "left-by-an-old-version.log"
    old.write_text("x")
    old.chmod(0o644)
    lab.start_server(timeout=60)
    try:
        lab.roomscribe("admin", "clinic", "add", "Private Clinic")  # a write: db + WAL
        files = [f for f in data.rglob("*") if f.is_file()]
        assert any(f.name == "roomscribe.db" for f in files)
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert _mode(data) == 0o700
    finally:
        lab.stop_server()


def _database(path: Path) -> str:
    url = f"sqlite:///{path}"
    db = Database(url)
    upgrade(db)
    db.dispose()
    return url


def test_backup_while_in_use_and_restore(tmp_path: Path) -> None:
    url = _database(tmp_path / "live.db")
    live = sqlite3.connect(tmp_path / "live.db")
    live.execute("INSERT INTO clinics (id, name, created_at) VALUES ('c1', 'One', '2026-01-01')")
    live.commit()
    live.execute("BEGIN")  # a writer mid-transaction: the backup holds the committed state
    live.execute("INSERT INTO clinics (id, name, created_at) VALUES ('c2', 'Two', '2026-01-01')")
    report = backup(url, tmp_path / "backups" / "night.db")
    live.rollback()
    live.close()
    assert report.rows["clinics"] == 1 and report.schema
    assert _mode(tmp_path / "backups" / "night.db") == 0o600

    target = tmp_path / "restored" / "roomscribe.db"
    restored = restore(f"sqlite:///{target}", tmp_path / "backups" / "night.db")
    assert restored.rows == report.rows
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT name FROM clinics").fetchall() == [("One",)]
    with pytest.raises(BackupError, match="exists"):  # never over a database by accident
        restore(f"sqlite:///{target}", tmp_path / "backups" / "night.db")
    Path(f"{target}-wal").write_bytes(b"stale")
    restore(f"sqlite:///{target}", tmp_path / "backups" / "night.db", force=True)
    assert not Path(f"{target}-wal").exists()


def test_a_damaged_or_foreign_file_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(BackupError, match="not a RoomScribe database"):
        restore(f"sqlite:///{tmp_path / 'x.db'}", foreign)
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(8192))
    with pytest.raises((BackupError, sqlite3.DatabaseError)):
        restore(f"sqlite:///{tmp_path / 'y.db'}", junk)
    with pytest.raises(BackupError, match="no backup"):
        restore(f"sqlite:///{tmp_path / 'z.db'}", tmp_path / "missing.db")


def test_the_cli_backs_up_and_restores(tmp_path: Path) -> None:
    env = {**os.environ, "ROOMSCRIBE_DATA_DIR": str(tmp_path / "data")}
    run = [str(BIN / "roomscribe")]
    subprocess.run([*run, "admin", "clinic", "add", "CLI Clinic"], env=env, check=True,
                   capture_output=True)
    out = subprocess.run([*run, "db", "backup", str(tmp_path / "b.db")], env=env, check=True,
                         capture_output=True, text=True)
    assert '"clinics": 1' in out.stdout
    refused = subprocess.run([*run, "db", "restore", str(tmp_path / "b.db")], env=env,
                             capture_output=True, text=True)
    assert refused.returncode == 1 and "--force" in refused.stderr
    done = subprocess.run([*run, "db", "restore", str(tmp_path / "b.db"), "--force"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
