"""Is a downloaded wheel the release IT signed? sha256, Ed25519 signature, its version.

The signature is Ed25519 over the wheel file's bytes, made with IT's release key
(``roomscribe agent-release sign``); the device holds only the public key (PEM),
installed at provisioning (``update_public_key`` in room.toml). The server is not
trusted: it only carries the wheel and the signature. ``cryptography`` is imported
here and only here.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .update import Offer

__all__ = ["check_wheel", "load_public_key", "wheel_metadata"]


def load_public_key(path: Path) -> Any:
    """The Ed25519 public key in ``path`` (PEM); :class:`ConfigError` if unusable."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(path.read_bytes())
    except OSError as err:
        raise ConfigError(f"update_public_key: cannot read {path}: {err.strerror}") from err
    except ValueError as err:
        raise ConfigError(f"update_public_key: {path} is not a PEM public key") from err
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"update_public_key: {path} is not an Ed25519 key")
    return key


def wheel_metadata(data: bytes) -> tuple[str, str]:
    """(name, version) from the wheel's ``*.dist-info/METADATA``; ValueError if none."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = [n for n in zf.namelist()
                     if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if len(names) != 1:
                raise ValueError("the wheel has no single .dist-info/METADATA")
            meta = HeaderParser().parsestr(zf.read(names[0]).decode("utf-8", "replace"))
    except zipfile.BadZipFile as err:
        raise ValueError("not a wheel (zip) file") from err
    name, version = meta.get("Name", ""), meta.get("Version", "")
    if not name or not version:
        raise ValueError("the wheel's METADATA has no Name or Version")
    return name, version


def check_wheel(offer: Offer, data: bytes, public_key: Any,
                distribution: str = "roomscribe") -> str:
    """Why ``data`` must not be installed ("" = it is the signed release offered)."""
    from cryptography.exceptions import InvalidSignature

    if len(data) != offer.size:
        return f"size {len(data)} bytes, the offer says {offer.size}"
    digest = hashlib.sha256(data).hexdigest()
    if digest != offer.sha256:
        return f"sha256 mismatch: got {digest}, the offer says {offer.sha256}"
    try:
        public_key.verify(offer.signature, data)
    except InvalidSignature:
        return "bad signature: the wheel was not signed with this device's release key"
    try:
        name, version = wheel_metadata(data)
    except ValueError as err:
        return f"signed but unusable: {err}"
    if name.lower().replace("_", "-") != distribution:
        return f"signed wheel is {name}, not {distribution}"
    if version != offer.version:
        return f"signed wheel is version {version}, the offer says {offer.version}"
    return ""
