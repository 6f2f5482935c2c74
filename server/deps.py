"""FastAPI dependencies as ``Annotated`` aliases, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from server.models import ApiKey
from server.registry import verify_api_key
from server.services import Services

__all__ = ["AdminKey", "ServicesDep", "SessionDep"]

_bearer = HTTPBearer(auto_error=False)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    try:
        with services.db.session() as session:
            yield session
    except OperationalError as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "database unavailable; nothing was changed") from err


#: scope="function": the session commits when the endpoint returns, *before* the response
#: is sent, so a client acting on a response always finds its change in the database.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def require_admin(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer API key",
                            headers={"WWW-Authenticate": "Bearer"})
    key = verify_api_key(session, credentials.credentials)
    if key is None or key.role != "admin":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API key",
                            headers={"WWW-Authenticate": "Bearer"})
    return key


AdminKey = Annotated[ApiKey, Depends(require_admin)]
