"""Releases side by side, ``current`` switched atomically; the installer behind a seam.

The update directory (``update_dir``, default ``/var/lib/roomscribe/agent``)::

    releases/<version>/     one installed release each (``pip install --no-deps --target``)
    current -> releases/<version>   what the agent runs (absent: the base install)
    downloads/<wheel>       the last wheel fetched
    update.json             the update in progress or its outcome (:class:`UpdateRecord`)

systemd runs the agent with ``PYTHONPATH=<update_dir>/current``, so a release there
shadows the base virtualenv's copy (its dependencies stay the base's: a release must
not need new ones). Switching is one ``rename()`` of a fresh symlink over ``current``:
a power cut leaves the old or the new one, never neither.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from .fsutil import fsync_dir, read_json, write_atomic
from .update import UpdateRecord

__all__ = ["InstallError", "Installer", "PipInstaller", "ReleaseDir"]

log = logging.getLogger(__name__)


class InstallError(Exception):
    """A release could not be installed (pip failed, or the result does not import)."""


class Installer(Protocol):
    def install(self, wheel: Path, target: Path, version: str) -> None:
        """Install ``wheel`` into the empty directory ``target``; raise InstallError."""


class PipInstaller:
    """``pip install --no-deps --no-index --target`` with this interpreter, then a probe:
    a fresh interpreter (``-I``: no PYTHONPATH) imports ``probe_modules`` from the target
    and must find ``distribution`` at ``version`` there."""

    def __init__(self, *, python: str = sys.executable, distribution: str = "roomscribe",
                 probe_modules: Sequence[str] = ("device.agent", "device.update_guard"),
                 timeout_s: float = 600.0) -> None:
        self.python = python
        self.distribution = distribution
        self.probe_modules = tuple(probe_modules)
        self.timeout_s = timeout_s

    def _run(self, argv: list[str], what: str) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s,
                                  check=False, env={**os.environ, "PIP_NO_INPUT": "1",
                                                    "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        except (OSError, subprocess.TimeoutExpired) as err:
            raise InstallError(f"{what}: {err}") from err
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise InstallError(f"{what} exited {done.returncode}: {' | '.join(tail)[:400]}")
        return done.stdout

    def install(self, wheel: Path, target: Path, version: str) -> None:
        self._run([self.python, "-m", "pip", "install", "--no-deps", "--no-index",
                   "--no-cache-dir", "--no-compile", "--target", str(target), str(wheel)],
                  "pip install")
        probe = ("import sys; sys.path.insert(0, sys.argv[1]); import importlib; "
                 "from importlib import metadata; "
                 "[importlib.import_module(m) for m in sys.argv[3:]]; "
                 "print(metadata.version(sys.argv[2]))")
        out = self._run([self.python, "-I", "-c", probe, str(target), self.distribution,
                         *self.probe_modules], "import check")
        found = out.strip().splitlines()[-1] if out.strip() else ""
        if found != version:
            raise InstallError(f"import check: {self.distribution} {found or '?'} is installed, "
                               f"not {version}")


class ReleaseDir:
    """The update directory: releases, the ``current`` link and ``update.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.releases = root / "releases"
        self.current = root / "current"
        self.downloads = root / "downloads"
        self.record_file = root / "update.json"

    def prepare(self) -> None:
        for d in (self.root, self.releases, self.downloads):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)

    def current_name(self) -> str:
        """The release ``current`` points at; "" = none (the base install runs)."""
        try:
            target = os.readlink(self.current)
        except OSError:
            return ""
        return Path(target).name

    def switch(self, name: str) -> None:
        """Point ``current`` at ``releases/<name>`` ("" = remove it), atomically."""
        if not name:
            if self.current.is_symlink():
                self.current.unlink()
                fsync_dir(self.root)
            return
        if not (self.releases / name).is_dir():
            raise InstallError(f"no release {name} in {self.releases}")
        tmp = self.root / ".current.tmp"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(Path("releases") / name, tmp)
        os.replace(tmp, self.current)
        fsync_dir(self.root)

    def install(self, installer: Installer, wheel: Path, version: str) -> str:
        """Install into ``releases/<version>`` (through a partial directory renamed when
        complete); returns the release name. Never touches ``current``."""
        if version == self.current_name():
            raise InstallError(f"release {version} is the one running")
        final = self.releases / version
        partial = self.releases / f".{version}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(mode=0o700, parents=True)
        try:
            installer.install(wheel, partial, version)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(partial, final)
            fsync_dir(self.releases)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return version

    def discard(self, name: str) -> None:
        """Remove a release that is not ``current`` (a failed or superseded one)."""
        if name and name != self.current_name():
            shutil.rmtree(self.releases / name, ignore_errors=True)
            shutil.rmtree(self.releases / f".{name}.partial", ignore_errors=True)

    def prune(self, keep: Sequence[str]) -> None:
        """Remove every release but ``current`` and ``keep`` (the one to roll back to)."""
        wanted = {self.current_name(), *keep}
        for entry in self.releases.iterdir() if self.releases.is_dir() else ():
            if entry.name not in wanted:
                shutil.rmtree(entry, ignore_errors=True)

    def read_record(self) -> UpdateRecord | None:
        raw = read_json(self.record_file)
        return UpdateRecord.from_dict(raw) if raw is not None else None

    def write_record(self, record: UpdateRecord) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(self.record_file, json.dumps(record.as_dict()).encode())
