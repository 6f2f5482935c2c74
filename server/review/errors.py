"""Every error the review queue raises, in one tree. Routes map them to HTTP.

    ReviewError                 base; the message is safe to show the user
    ├── AuthError               401  not logged in, bad password, bad or expired token
    ├── Forbidden               403  wrong role, or another clinic's / pool's data
    ├── NotFound                404  no such item, user, pool (or not visible to you)
    ├── InvalidInput            422  a malformed edit, an unknown order, an empty comment
    │   └── SignBlocked              sign checks still open (``checks``, ``blocking``)
    └── Conflict                409
        ├── IllegalTransition   the lifecycle refuses this action in this state
        │   └── ClaimHeld       someone else holds the claim
        └── VersionConflict     the edit was based on an older version (nothing overwritten)

Standard library only: the pure lifecycle module raises these too.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "ClaimHeld",
    "Conflict",
    "Forbidden",
    "IllegalTransition",
    "InvalidInput",
    "NotFound",
    "ReviewError",
    "SignBlocked",
    "VersionConflict",
]


class ReviewError(Exception):
    status = 400
    code = "review-error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.message, **self.extra}


class AuthError(ReviewError):
    status = 401
    code = "unauthenticated"


class Forbidden(ReviewError):
    status = 403
    code = "forbidden"


class NotFound(ReviewError):
    status = 404
    code = "not-found"


class InvalidInput(ReviewError):
    status = 422
    code = "invalid-input"


class SignBlocked(InvalidInput):
    """The note fails sign checks not acknowledged: ``checks`` lists every check (as
    dicts), ``blocking`` the ids still in the way."""

    code = "sign-blocked"


class Conflict(ReviewError):
    status = 409
    code = "conflict"


class IllegalTransition(Conflict):
    code = "illegal-transition"


class ClaimHeld(IllegalTransition):
    code = "claim-held"


class VersionConflict(Conflict):
    code = "version-conflict"
