"""Passwords, sessions, lockout: the auth module on the real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from server.models import utcnow
from server.review import auth
from server.review.errors import AuthError
from server.review.lifecycle import Role
from server.review.models import User
from tests.review.world import PASSWORD, World


def test_production_hash_is_argon2id_with_library_defaults() -> None:
    real = PasswordHasher()
    digest = real.hash("correct horse battery")
    assert digest.startswith("$argon2id$") and f"m={real.memory_cost}" in digest
    assert real.verify(digest, "correct horse battery")
    with pytest.raises(ValueError, match="8 characters"):
        auth.hash_password("short")


def test_session_login_expiry_and_logout(world: World) -> None:
    now = utcnow()
    with world.db.session() as s:
        token, who = auth.login(s, "alice", PASSWORD, now, timedelta(hours=1))
        assert who.roles == {"north-clinic": Role.PARTNER} and who.via == "session"
        row = s.query(User).filter_by(username="alice").one()
        assert token not in str(row.__dict__)  # only hashes are stored
    with world.db.session() as s:
        assert auth.principal_from_session(s, token, now + timedelta(minutes=59)) is not None
        assert auth.principal_from_session(s, token, now + timedelta(minutes=61)) is None
        auth.logout(s, token, now)
    with world.db.session() as s:
        assert auth.principal_from_session(s, token, now) is None


def test_lockout_after_repeated_failures(world: World) -> None:
    now = utcnow()
    for _ in range(auth.MAX_FAILURES):
        with world.db.session() as s, pytest.raises(AuthError, match="wrong"):
            auth.login(s, "bob", "wrong password", now, timedelta(hours=1))
    with world.db.session() as s, pytest.raises(AuthError, match="wrong"):  # locked, the
        auth.login(s, "bob", PASSWORD, now, timedelta(hours=1))  # same answer as a bad guess
    with world.db.session() as s:  # the lock lifts after a few minutes
        auth.login(s, "bob", PASSWORD, now + auth.LOCKOUT, timedelta(hours=1))


def test_csrf_token_is_bound_to_session_and_secret() -> None:
    a = auth.csrf_token("k" * 40, "session-1")
    assert a == auth.csrf_token("k" * 40, "session-1")
    assert a != auth.csrf_token("k" * 40, "session-2")
    assert a != auth.csrf_token("j" * 40, "session-1")


def test_default_secret_refused_outside_dev(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from server.settings import Settings

    with pytest.raises(ValidationError, match="ROOMSCRIBE_SECRET_KEY"):
        Settings(environment="production", data_dir=tmp_path)
    with pytest.raises(ValidationError, match="ROOMSCRIBE_SECRET_KEY"):
        Settings(environment="production", data_dir=tmp_path, secret_key="short")
    ok = Settings(environment="production", data_dir=tmp_path, secret_key="x" * 48)
    assert ok.secure_cookies and ok.fhir_outbox == tmp_path / "fhir-outbox"
    assert not Settings(environment="dev", data_dir=tmp_path).secure_cookies
