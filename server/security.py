"""Secrets for devices and API keys.

Tokens are 256-bit random strings, so a fast keyed hash (SHA-256) is enough to
store them: unlike passwords they cannot be guessed from a dictionary. The
server keeps only hashes; the plain value is shown once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["hash_secret", "new_enrolment_code", "new_token", "normalise_code", "secrets_equal"]

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed on a Pi


def new_token(prefix: str = "rsd") -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def new_enrolment_code() -> str:
    """A one-time code an IT admin types on the device: 4 groups of 4, ~80 bits."""
    chars = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(16))
    return "-".join(chars[i : i + 4] for i in range(0, 16, 4))


def normalise_code(code: str) -> str:
    return code.strip().upper().replace(" ", "").replace("-", "")


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def secrets_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
