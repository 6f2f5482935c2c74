"""Security headers (issue 16, web hardening): what the browser may run, frame and sniff."""

from __future__ import annotations

import httpx

from server.webheaders import CSP
from tests.review.world import UserClient, World, add_encounter
from tests.support import ServerThread


def test_every_page_and_api_answer_carries_the_headers(server: ServerThread,
                                                       world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    alice = UserClient(server.http_url, "alice")
    for path in ("/queue", f"/items/{item}", f"/api/v1/review/items/{item}", "/static/app.js"):
        r = alice.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-security-policy"] == CSP, path
        assert "script-src 'self';" in CSP and "unsafe-inline" not in CSP
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
        assert "strict-transport-security" not in r.headers  # plain HTTP on loopback
    page = alice.get(f"/items/{item}").text
    assert " on" + "click=" not in page and "onsubmit=" not in page and "<script>" not in page
    with httpx.Client(base_url=server.http_url) as anon:  # the login page too
        assert anon.get("/login").headers["content-security-policy"] == CSP
        # the OpenAPI pages are built with inline script by FastAPI: no policy there
        assert "content-security-policy" not in anon.get("/docs").headers


def test_no_inline_handlers_in_the_script() -> None:
    from pathlib import Path

    script = (Path(__file__).parents[2] / "server/web/static/app.js").read_text()
    assert "onclick=" not in script and "javascript:" not in script


def test_secrets_in_urls_are_blanked_in_the_access_log() -> None:
    import logging

    from server.webheaders import RedactSecrets

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET",
                               "/ws/x?room=a&access_token=rsu_secret&ticket=t.1", "1.1", 401),
                               None)
    assert RedactSecrets().filter(record)
    line = record.getMessage()
    assert "rsu_secret" not in line and "t.1" not in line
    assert "room=a&access_token=[redacted]&ticket=[redacted]" in line
