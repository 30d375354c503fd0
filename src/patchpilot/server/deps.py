"""Request dependencies: the database, and who is calling (authentication, roles, scope).

A user limited to part of the estate (``Principal.scopes``, issue 18) may use only the
routes marked :func:`scope_aware` -- those whose every answer and action is narrowed to
the user's assets.  Every other route refuses such a user (403), so a route added without
thinking about scopes fails closed, never showing the whole estate to a plant-1 team.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import Engine

from patchpilot.server.security import AuthError, Principal, Role, authenticate

F = TypeVar("F", bound=Callable[..., Any])
SCOPE_AWARE = "__patchpilot_scope_aware__"


def scope_aware(endpoint: F) -> F:
    """Mark a route (API or page) as narrowing everything it shows and does to the
    caller's scope, so users limited to part of the estate may call it."""
    setattr(endpoint, SCOPE_AWARE, True)
    return endpoint


def check_scope(request: Request, principal: Principal) -> None:
    """403 for a scoped user on a route not marked :func:`scope_aware`."""
    if not principal.scoped:
        return
    route = request.scope.get("route")
    if route is not None and getattr(getattr(route, "endpoint", None), SCOPE_AWARE, False):
        return
    raise HTTPException(status.HTTP_403_FORBIDDEN,
                        "not available to users limited to part of the estate (you see "
                        f"{principal.scope_text()}); ask an administrator")


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

    def check(request: Request,
              principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.kind == "agent":
            if agents:
                return principal
            raise HTTPException(status.HTTP_403_FORBIDDEN, "agents may not use this route")
        if not principal.may(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"requires the {role.value} role; you are "
                                f"{principal.role.value if principal.role else 'none'}")
        check_scope(request, principal)
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
