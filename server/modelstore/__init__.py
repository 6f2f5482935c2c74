"""Model manifests (``models/*.toml``), fetching with checksum verification, lookup.

    manifest.py   ModelSpec, load_manifests(), find_model()
    fetch.py      fetch_model() (download, sha256, unpack), resolve_model_dir()
    errors.py     ModelStoreError tree
    cli.py        roomscribe models fetch NAME | list | build ...
"""

from server.modelstore.errors import (
    ChecksumMismatch,
    FetchFailed,
    ManifestError,
    ModelMissing,
    ModelStoreError,
    UnknownModel,
)
from server.modelstore.fetch import fetch_model, resolve_model_dir
from server.modelstore.manifest import ModelSpec, find_model, load_manifests

__all__ = [
    "ChecksumMismatch",
    "FetchFailed",
    "ManifestError",
    "ModelMissing",
    "ModelSpec",
    "ModelStoreError",
    "UnknownModel",
    "fetch_model",
    "find_model",
    "load_manifests",
    "resolve_model_dir",
]
