"""Login hardening (issue 16, part 2 and 7) against a real server on loopback.

Parallel guesses lock after exactly N password checks; every refusal reads the same;
an address that fails too often gets 429 with Retry-After; a lock expires and grows;
a flood of logins is queued and refused (bounded hashing) while authenticated requests
go on. Timings are printed, never asserted.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import timedelta

import httpx
import pytest
from argon2 import PasswordHasher

from server.models import utcnow
from server.review import auth, ratelimit
from server.review.errors import AuthError
from server.review.models import User
from server.settings import Settings
from tests.review.world import PASSWORD, UserClient, World
from tests.support import ServerThread, running_server

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def make_server(settings: Settings, world: World) -> Iterator[Callable[..., ServerThread]]:
    """A server on the test database with some login settings changed."""
    with ExitStack() as stack:
        yield lambda **overrides: stack.enter_context(
            running_server(settings.model_copy(update=overrides)))


@pytest.fixture
def real_checks(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts password verifications: "real" against a user's hash, "dummy" otherwise,
    and the most running at once ("peak")."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    running = [0]
    verify = auth.verify_password

    def counting(password_hash: str, password: str) -> bool:
        with lock:
            counts["dummy" if password_hash == auth._DUMMY_HASH else "real"] += 1
            running[0] += 1
            counts["peak"] = max(counts["peak"], running[0])
        try:
            return verify(password_hash, password)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(auth, "verify_password", counting)
    return counts


def _user(world: World, username: str) -> User:
    with world.db.session() as s:
        return s.query(User).filter_by(username=username).one()


def _post_all(url: str, bodies: list[dict[str, str]]) -> list[httpx.Response]:
    """Every body POSTed at once (a barrier releases the threads together)."""
    barrier = threading.Barrier(len(bodies))

    def one(body: dict[str, str]) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=60) as c:
            barrier.wait(timeout=30)
            return c.post(LOGIN, json=body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, bodies))


def test_parallel_wrong_passwords_lock_after_exactly_n(make_server: Callable[..., ServerThread],
                                                       world: World,
                                                       real_checks: Counter[str]) -> None:
    server = make_server(login_max_failures=10, login_ip_failures=1000,
                         password_hash_queue=100)
    responses = _post_all(server.http_url, [{"username": "bob", "password": f"guess {i}"}
                                            for i in range(40)])
    assert {r.status_code for r in responses} == {401}
    assert {r.json()["detail"] for r in responses} == {auth.WRONG_LOGIN}
    assert real_checks["real"] == 10  # exactly N guesses were checked; 30 found the lock
    bob = _user(world, "bob")
    assert bob.failed_logins == 10 and bob.locked_until is not None
    # locked: even the right password is refused, with the same answer
    r = httpx.post(server.http_url + LOGIN, json={"username": "bob", "password": PASSWORD})
    assert r.status_code == 401 and r.json()["detail"] == auth.WRONG_LOGIN
    assert real_checks["real"] == 10


def test_unknown_user_wrong_password_locked_and_disabled_answer_alike(
        make_server: Callable[..., ServerThread], world: World,
        real_checks: Counter[str]) -> None:
    server = make_server(login_max_failures=3, login_ip_failures=1000)
    with world.db.session() as s:
        s.query(User).filter_by(username="carol").one().disabled_at = utcnow()
    with httpx.Client(base_url=server.http_url) as c:
        for _ in range(3):
            c.post(LOGIN, json={"username": "bob", "password": "wrong wrong"})
        cases = {"unknown user": {"username": "nobody", "password": PASSWORD},
                 "wrong password": {"username": "alice", "password": "wrong wrong"},
                 "locked account": {"username": "bob", "password": PASSWORD},
                 "disabled account": {"username": "carol", "password": PASSWORD}}
        answers, times = {}, {}
        for name, body in cases.items():
            started = time.perf_counter()
            r = c.post(LOGIN, json=body)
            times[name] = time.perf_counter() - started
            answers[name] = (r.status_code, r.json(), r.headers.get("www-authenticate"))
    assert len(set(map(repr, answers.values()))) == 1, answers
    assert answers["unknown user"][0] == 401
    assert answers["unknown user"][1]["detail"] == "wrong username or password"
    print("\nrefusal times (ms):", {k: round(v * 1000, 1) for k, v in times.items()})
    # every refusal cost one argon2 verification (a dummy one where no hash is checked)
    assert real_checks["real"] + real_checks["dummy"] == 3 + 4


def test_an_address_that_fails_too_often_gets_429_with_retry_after(
        make_server: Callable[..., ServerThread], world: World) -> None:
    server = make_server(login_ip_failures=3, login_ip_window_s=60)
    with httpx.Client(base_url=server.http_url) as c, \
            httpx.Client(base_url=server.http_url) as stranger:
        for _ in range(5):  # good logins do not count against the address
            assert c.post(LOGIN, json={"username": "alice", "password": PASSWORD}
                          ).status_code == 200
        for user in ("alice", "nobody", "bob"):
            assert stranger.post(LOGIN, json={"username": user, "password": "wrong wrong"}
                                 ).status_code == 401
        r = stranger.post(LOGIN, json={"username": "alice", "password": PASSWORD})
        assert r.status_code == 429 and r.json()["error"] == "rate-limited"
        first = int(r.headers["retry-after"])
        assert 0 < first <= 60
        r = stranger.post(LOGIN, json={"username": "alice", "password": PASSWORD})
        assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= first
        # alice's own browser (her device cookie) behind the same address gets in
        assert c.post(LOGIN, json={"username": "alice", "password": PASSWORD}
                      ).status_code == 200
    # the 429s never reached the account; her trusted login leaves the stranger's one
    # failure where it is (it clears only what an untrusted good login would)
    assert _user(world, "alice").failed_logins == 1


def test_the_address_window_backs_off_and_forgets() -> None:
    window = ratelimit.FailureWindow(limit=2, window_s=10, max_block_s=35)
    assert window.attempt("a", 0) is None and window.attempt("a", 1) is None
    assert window.attempt("a", 2) == 10  # first strike: one window
    assert window.attempt("b", 2) is None  # other addresses are not affected
    assert window.attempt("a", 11.5) == pytest.approx(0.5)
    assert window.attempt("a", 12) is None and window.attempt("a", 12.5) is None
    assert window.attempt("a", 13) == 20  # second strike: twice as long
    window.succeeded("b", 2)  # a good login hands its reservation back
    assert window.attempt("b", 3) is None and window.attempt("b", 3) is None
    assert window.attempt("a", 60) is None  # a quiet window later: strikes forgotten
    assert ratelimit.lock_duration(1, 300, 3600) == timedelta(seconds=300)
    assert ratelimit.lock_duration(3, 300, 3600) == timedelta(seconds=1200)
    assert ratelimit.lock_duration(9, 300, 3600) == timedelta(seconds=3600)


def test_a_lock_expires_grows_and_a_good_password_then_works(world: World) -> None:
    policy = auth.LockPolicy(max_failures=3, lockout_s=60, lockout_max_s=150)
    now, ttl = utcnow(), timedelta(hours=1)

    def attempt(at: timedelta, password: str = "wrong wrong") -> bool:
        with world.db.session() as s:
            try:
                auth.login(s, "bob", password, now + at, ttl, policy=policy)
            except AuthError:
                return False
            return True

    assert not any(attempt(timedelta(0)) for _ in range(3))
    assert _user(world, "bob").locked_until == now + timedelta(seconds=60)
    assert not attempt(timedelta(seconds=59), PASSWORD)  # still locked
    assert not any(attempt(timedelta(seconds=60)) for _ in range(3))  # a stranger again
    assert _user(world, "bob").locked_until == now + timedelta(seconds=60 + 120)
    assert not any(attempt(timedelta(seconds=180)) for _ in range(3))
    assert _user(world, "bob").locked_until == now + timedelta(seconds=180 + 150)  # capped
    assert attempt(timedelta(seconds=330), PASSWORD)  # the lock always ends
    bob = _user(world, "bob")
    assert bob.failed_logins == 0 and bob.locked_until is None


def test_a_locked_account_unlocks_over_http(make_server: Callable[..., ServerThread],
                                            world: World) -> None:
    server = make_server(login_max_failures=3, login_lockout_s=1.0, login_ip_failures=1000)
    with httpx.Client(base_url=server.http_url) as c:
        for _ in range(3):
            assert c.post(LOGIN, json={"username": "bob", "password": "x" * 9}
                          ).status_code == 401
        assert c.post(LOGIN, json={"username": "bob", "password": PASSWORD}).status_code == 401
        time.sleep(1.2)
        assert c.post(LOGIN, json={"username": "bob", "password": PASSWORD}).status_code == 200


def test_a_login_flood_is_bounded_and_signed_in_users_carry_on(
        make_server: Callable[..., ServerThread], world: World,
        real_checks: Counter[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """60 concurrent bad logins (production-cost argon2 for unknown users) while a
    signed-in client keeps reading: every read succeeds, at most ``concurrency``
    hashes run at once, the rest of the flood is queued or refused."""
    monkeypatch.setattr(auth, "_DUMMY_HASH", PasswordHasher().hash("not a real password"))
    server = make_server(password_hash_concurrency=2, password_hash_queue=8,
                         login_ip_failures=1000)
    alice = UserClient(server.http_url, "alice")
    stop = threading.Event()
    reads: list[tuple[int, float]] = []

    def keep_reading() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            status = alice.get("/api/v1/auth/me").status_code
            reads.append((status, time.perf_counter() - started))

    reader = threading.Thread(target=keep_reading)
    reader.start()
    try:
        started = time.perf_counter()
        flood = _post_all(server.http_url, [{"username": f"nobody{i}" if i % 3 else "bob",
                                             "password": f"guess {i}"} for i in range(60)])
        flood_s = time.perf_counter() - started
    finally:
        stop.set()
        reader.join(timeout=30)
        alice.close()
    statuses = Counter(r.status_code for r in flood)
    assert set(statuses) <= {401, 503}, statuses
    assert all(int(r.headers["retry-after"]) >= 1 for r in flood if r.status_code == 503)
    assert reads and all(status == 200 for status, _ in reads)
    assert real_checks["peak"] <= 2
    latencies = sorted(t for _, t in reads)
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
    print(f"\nlogin flood: {dict(statuses)} in {flood_s:.2f} s; {len(reads)} reads meanwhile, "
          f"median {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")


def test_refused_logins_never_reach_a_worker_thread(
        make_server: Callable[..., ServerThread], world: World,
        real_checks: Counter[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """429 (address over its limit) and 503 (no place in the hashing queue) are answered
    on the event loop: no worker thread, no database session, no hash."""
    from server.review.routes import auth as auth_routes

    threaded: list[str] = []
    admitted = auth_routes._login_admitted

    def counting(*args: object) -> object:
        threaded.append("login")
        return admitted(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(auth_routes, "_login_admitted", counting)
    server = make_server(login_ip_failures=3, password_hash_concurrency=1,
                         password_hash_queue=0, password_hash_wait_s=0.5)
    with httpx.Client(base_url=server.http_url) as c:
        codes = [c.post(LOGIN, json={"username": "nobody", "password": "wrong wrong"}
                        ).status_code for _ in range(8)]
    assert codes == [401] * 3 + [429] * 5
    assert len(threaded) == 3 and real_checks["dummy"] == 3
    threaded.clear()
    flood = _post_all(make_server(login_ip_failures=1000, password_hash_concurrency=1,
                                  password_hash_queue=0).http_url,
                      [{"username": "nobody", "password": f"guess {i}"} for i in range(20)])
    statuses = Counter(r.status_code for r in flood)
    assert set(statuses) <= {401, 503} and statuses[503] > 0, statuses
    assert len(threaded) == statuses[401]  # each thread a login that was checked
