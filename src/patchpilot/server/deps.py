"""Request dependencies: the database, and who is calling (authentication, roles)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import Engine

from patchpilot.server.security import AuthError, Principal, Role, authenticate


def get_engine(request: Request) -> Engine:
    """The server's database engine."""
    return request.app.state.engine  # type: ignore[no-any-return]


EngineDep = Annotated[Engine, Depends(get_engine)]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "missing bearer token: send 'Authorization: Bearer TOKEN' "
                            "(create one with `patchpilot token create`)",
                            headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


def current_principal(request: Request, engine: EngineDep) -> Principal:
    """The authenticated caller (401 otherwise)."""
    token = _bearer(request)
    try:
        with engine.begin() as conn:
            return authenticate(conn, token)
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc),
                            headers={"WWW-Authenticate": "Bearer"}) from exc


def require(role: Role, *, agents: bool = False) -> Callable[..., Principal]:
    """A dependency admitting users holding ``role`` (and agents when ``agents``)."""

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.kind == "agent":
            if agents:
                return principal
            raise HTTPException(status.HTTP_403_FORBIDDEN, "agents may not use this route")
        if not principal.may(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"requires the {role.value} role; you are "
                                f"{principal.role.value if principal.role else 'none'}")
        return principal

    return check


def require_agent(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """Admit enrolled agents only."""
    if principal.kind != "agent":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "agent credential required")
    return principal


# Route parameters: ``who: Viewer`` admits viewers and above, and so on.
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
AnalystOrAgent = Annotated[Principal, Depends(require(Role.ANALYST, agents=True))]
Agent = Annotated[Principal, Depends(require_agent)]
