"""Errors of the model store.

    ModelStoreError
     ├── ManifestError      a models/*.toml file is malformed
     ├── UnknownModel       no manifest entry has that name
     ├── ModelMissing       the model is known but not on this machine (says how to get it)
     ├── FetchFailed        download or unpack failed (network, archive layout)
     └── ChecksumMismatch   the download's sha256 is not the manifest's (nothing unpacked)
"""

from __future__ import annotations

__all__ = [
    "ChecksumMismatch",
    "FetchFailed",
    "ManifestError",
    "ModelMissing",
    "ModelStoreError",
    "UnknownModel",
]


class ModelStoreError(Exception):
    """Base of every model store error."""


class ManifestError(ModelStoreError):
    pass


class UnknownModel(ModelStoreError):
    pass


class ModelMissing(ModelStoreError):
    """A known model that is not present; ``command`` is what fetches or installs it."""

    def __init__(self, name: str, command: str, detail: str = "") -> None:
        self.name = name
        self.command = command
        extra = f" ({detail})" if detail else ""
        super().__init__(f"model {name!r} is not installed{extra}; get it with: {command}")


class FetchFailed(ModelStoreError):
    pass


class ChecksumMismatch(ModelStoreError):
    pass
