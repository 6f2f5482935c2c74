"""The data directory holds PHI (the database, its WAL, the FHIR outbox): only the
server's own user may read it.

At start the server sets its umask to 077 (every file it creates from then on
is 0600, every directory 0700: SQLite's database, WAL and journal files
included), and tightens what is already there: the data directory and the
outbox 0700, the files below them 0600 (symlinks are left alone, never
followed). Disk encryption of the volume is the deployment's part (see the
README's security section).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "lock_down", "private_umask"]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_umask() -> int:
    """Make files this process creates private to its user; returns the old umask."""
    return os.umask(0o077)


def _tighten(path: Path, mode: int) -> bool:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) == mode:
        return False
    path.chmod(mode)
    return True


def lock_down(*dirs: Path) -> list[Path]:
    """Create ``dirs`` (0700) and make everything below them private; returns what changed."""
    changed: list[Path] = []
    for top in dirs:
        top.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        if _tighten(top, PRIVATE_DIR):
            changed.append(top)
        for root, subdirs, files in os.walk(top, followlinks=False):
            for name in subdirs:
                if _tighten(Path(root, name), PRIVATE_DIR):
                    changed.append(Path(root, name))
            for name in files:
                if _tighten(Path(root, name), PRIVATE_FILE):
                    changed.append(Path(root, name))
    return changed
