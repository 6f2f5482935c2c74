"""Backup and restore a clinic can run: ``roomscribe db backup FILE`` / ``db restore FILE``.

SQLite (the embedded default): the backup is SQLite's online backup API, so it
is consistent while the server keeps writing; the copy is checked with
``PRAGMA integrity_check``, written 0600 next to its destination and renamed
into place. A restore checks the file the same way (and that it is a RoomScribe
database: it has an ``alembic_version``), refuses to replace an existing
database without ``force``, copies it in with the same API and removes the old
WAL and shared-memory files. Stop the server before a restore; start it after
(it migrates an older backup to the current schema on start).

PostgreSQL: ``pg_dump --format=custom`` / ``pg_restore --clean --if-exists``
(the PostgreSQL client tools must be installed); or the server's own backups
(base backup + WAL archiving) for point-in-time recovery.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ["BackupError", "BackupReport", "backup", "restore"]


class BackupError(Exception):
    """A backup or restore that cannot be done, in words an IT admin can act on."""


@dataclass
class BackupReport:
    path: str
    bytes: int
    schema: str  # the alembic revision the file holds
    rows: dict[str, int] = field(default_factory=dict)


def _sqlite_path(database_url: str) -> Path | None:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory database cannot be backed up")
    return Path(url.database)


def _check(conn: sqlite3.Connection, what: str) -> BackupReport:
    verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
    if verdict != "ok":
        raise BackupError(f"{what} is damaged: {verdict}")
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    if "alembic_version" not in tables:
        raise BackupError(f"{what} is not a RoomScribe database (no alembic_version)")
    schema = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    rows = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in sorted(tables)}
    return BackupReport(path="", bytes=0, schema=schema[0] if schema else "", rows=rows)


def _copy(src: sqlite3.Connection, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.part")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # PHI: owner only
    os.close(fd)
    out = sqlite3.connect(tmp)
    try:
        src.backup(out)
    finally:
        out.close()
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    tmp.replace(dest)


def _libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL as the PostgreSQL tools take it (no ``+psycopg`` driver)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


def _run(cmd: list[str]) -> None:
    if shutil.which(cmd[0]) is None:
        raise BackupError(f"{cmd[0]} is not installed: install the PostgreSQL client tools "
                          "(Debian: postgresql-client) or back up with the server's own tools")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{cmd[0]} failed: {done.stderr.strip()[-500:]}")


def backup(database_url: str, dest: Path) -> BackupReport:
    """Copy the live database to ``dest`` (overwrites ``dest``)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = _sqlite_path(database_url)
    if source is None:
        _run(["pg_dump", "--format=custom", f"--file={dest}", _libpq_url(database_url)])
        dest.chmod(0o600)
        return BackupReport(path=str(dest), bytes=dest.stat().st_size, schema="")
    if not source.exists():
        raise BackupError(f"there is no database at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        _copy(src, dest)
    finally:
        src.close()
    copy = sqlite3.connect(f"file:{dest}?mode=ro", uri=True)
    try:
        report = _check(copy, f"the backup {dest}")
    finally:
        copy.close()
    report.path, report.bytes = str(dest), dest.stat().st_size
    return report


def restore(database_url: str, src: Path, *, force: bool = False) -> BackupReport:
    """Replace the database with the backup ``src`` (the server must be stopped)."""
    if not src.exists():
        raise BackupError(f"there is no backup at {src}")
    target = _sqlite_path(database_url)
    if target is None:
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner",
              f"--dbname={_libpq_url(database_url)}", str(src)])
        return BackupReport(path=str(src), bytes=src.stat().st_size, schema="")
    backup_db = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    try:
        report = _check(backup_db, f"the backup {src}")
        if target.exists() and not force:
            raise BackupError(f"{target} exists: stop the server, then restore with --force "
                              "to replace it")
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _copy(backup_db, target)
    finally:
        backup_db.close()
    for suffix in ("-wal", "-shm", "-journal"):  # the old database's, not the backup's
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    report.path, report.bytes = str(target), target.stat().st_size
    return report
