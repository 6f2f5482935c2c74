"""A stranger cannot lock a named account's owner out (issue 16, part 7): OWASP's device
cookie scheme. A browser that logged in before carries a signed device cookie; with it,
its attempts are counted per device, so the account lock (and the per-address limit)
that strangers trigger does not stop it. Without one, or with one for another account,
a forged or blocked one, the attempt is a stranger's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import httpx
import pytest

from server.review import auth
from server.review.models import User
from server.review.routes.auth import DEVICE_COOKIE
from server.settings import Settings
from tests.review.world import PASSWORD, World
from tests.support import ServerThread, running_server

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def make_server(settings: Settings, world: World) -> Iterator[Callable[..., ServerThread]]:
    with ExitStack() as stack:
        yield lambda **overrides: stack.enter_context(
            running_server(settings.model_copy(update=overrides)))


def _user(world: World, username: str) -> User:
    with world.db.session() as s:
        return s.query(User).filter_by(username=username).one()


def _login(c: httpx.Client, username: str, password: str = PASSWORD) -> int:
    return c.post(LOGIN, json={"username": username, "password": password}).status_code


def test_a_stranger_locks_the_account_but_not_its_owners_browser(
        make_server: Callable[..., ServerThread], world: World) -> None:
    server = make_server(login_max_failures=5, login_ip_failures=1000)
    with httpx.Client(base_url=server.http_url) as owner, \
            httpx.Client(base_url=server.http_url) as stranger, \
            httpx.Client(base_url=server.http_url) as new_laptop:
        assert _login(owner, "bob") == 200
        cookie = owner.cookies.get(DEVICE_COOKIE)
        assert cookie and auth.device_nonce(server.settings.secret_key, "bob", cookie)
        assert [_login(stranger, "bob", f"guess {i}") for i in range(6)] == [401] * 6
        bob = _user(world, "bob")
        assert bob.failed_logins == 5 and bob.locked_until is not None
        assert _login(stranger, "bob") == 401  # locked for strangers, right password or not
        assert _login(new_laptop, "bob") == 401  # a browser bob never used is a stranger
        assert _login(owner, "bob") == 200  # his own browser gets in
        assert _user(world, "bob").locked_until is not None  # the lock stays for strangers
        # the device cookie is bound to its account: alice's attempts with it are strangers'
        assert DEVICE_COOKIE in owner.cookies
        assert _login(owner, "alice", "wrong wrong") == 401
        assert _user(world, "alice").failed_logins == 1


def test_a_trusted_device_has_its_own_limit(make_server: Callable[..., ServerThread],
                                            world: World) -> None:
    server = make_server(login_max_failures=3, login_ip_failures=1000)
    with httpx.Client(base_url=server.http_url) as c:
        assert _login(c, "bob") == 200
        assert [_login(c, "bob", "wrong wrong") for _ in range(3)] == [401] * 3
        assert _user(world, "bob").failed_logins == 0  # counted on the device, not bob
        # the device is blocked now: its next attempts are a stranger's, and count
        assert _login(c, "bob", "wrong wrong") == 401
        assert _user(world, "bob").failed_logins == 1
        assert _login(c, "bob") == 200  # not locked (1 of 3): an untrusted good login
        assert _user(world, "bob").failed_logins == 0


def test_forged_device_cookies_are_strangers(make_server: Callable[..., ServerThread],
                                             world: World) -> None:
    server = make_server(login_max_failures=2, login_ip_failures=1000)
    key = server.settings.secret_key
    good = auth.device_cookie(key, "bob")
    nonce = good.split(".")[0]
    for forged in (f"{nonce}.{'0' * 64}", nonce, "a.b.c", "", good + "x",
                   auth.device_cookie("another key", "bob")):
        assert auth.device_nonce(key, "bob", forged) is None, forged
    assert auth.device_nonce(key, "alice", good) is None
    with httpx.Client(base_url=server.http_url,
                      cookies={DEVICE_COOKIE: f"{nonce}.{'0' * 64}"}) as c:
        assert [_login(c, "bob", "wrong wrong") for _ in range(2)] == [401, 401]
        assert _login(c, "bob") == 401  # locked: the forged cookie bought nothing
    with httpx.Client(base_url=server.http_url, cookies={DEVICE_COOKIE: good}) as c:
        assert _login(c, "bob") == 200  # a cookie the server issued for bob


def test_the_device_cookie_is_httponly_strict_and_renewed(
        make_server: Callable[..., ServerThread], world: World) -> None:
    server = make_server()
    with httpx.Client(base_url=server.http_url) as c:
        r = c.post(LOGIN, json={"username": "alice", "password": PASSWORD})
        first = c.cookies.get(DEVICE_COOKIE)
        header = next(h for h in r.headers.get_list("set-cookie")
                      if h.startswith(DEVICE_COOKIE + "="))
        assert "httponly" in header.lower() and "samesite=strict" in header.lower()
        assert "max-age=15552000" in header.lower()
        c.post(LOGIN, json={"username": "alice", "password": PASSWORD})
        assert c.cookies.get(DEVICE_COOKIE) != first  # a new nonce each good login
