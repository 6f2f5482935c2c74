"""``GET /metrics``: this node's metrics in the Prometheus text format (server/metrics.py).

Who may read it: a bearer token equal to ``ROOMSCRIBE_METRICS_TOKEN`` (what Prometheus
sends: ``authorization: {credentials: ...}`` in its scrape config), or the IT admin API
key. Anything else: 401. Nothing in it names a patient or an encounter.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from server.deps import ServicesDep
from server.metrics import ServerCollector, render
from server.registry import verify_api_key
from server.security import secrets_equal
from server.services import Services

__all__ = ["router"]

router = APIRouter(tags=["monitoring"])
_bearer = HTTPBearer(auto_error=False)


def _may_read(services: Services, token: str) -> bool:
    wanted = services.settings.metrics_token
    if wanted and secrets_equal(token, wanted):
        return True
    with services.db.session() as s:
        key = verify_api_key(s, token)
        return key is not None and key.role == "admin"


def _registry(request: Request, services: Services) -> CollectorRegistry:
    """One registry per app, holding its collector (the process metrics are global)."""
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ServerCollector(services))
        request.app.state.metrics_registry = registry
    return registry


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}},
          "description": "This node's metrics, Prometheus text format"}})
def get_metrics(request: Request, services: ServicesDep,
                credentials: Annotated[HTTPAuthorizationCredentials | None,
                                       Depends(_bearer)]) -> Response:
    if credentials is None or not _may_read(services, credentials.credentials):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "send the metrics token or the "
                            "IT API key as a bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    return Response(render(_registry(request, services)), media_type=CONTENT_TYPE_LATEST)
