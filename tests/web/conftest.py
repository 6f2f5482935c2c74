from __future__ import annotations

# The review tests' world, server and test-sized password hashing serve the UI tests too.
from tests.review.conftest import quick_password_hashing, server, world

__all__ = ["quick_password_hashing", "server", "world"]
