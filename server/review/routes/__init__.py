"""The review API's routers, and :func:`install`, which ``server/main.py`` calls."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from server.review.errors import ReviewError
from server.review.routes import admin, auth, items, live, patients, vocabulary

__all__ = ["install"]


async def _review_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ReviewError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def install(app: FastAPI) -> None:
    """Mount the review API, the live socket and the web UI on ``app``."""
    from server.web import routes as web

    app.add_exception_handler(ReviewError, _review_error)
    for router in (auth.router, admin.router, items.router, live.router, patients.router,
                   vocabulary.router):
        app.include_router(router)
    web.install(app)
