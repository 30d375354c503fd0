"""Users (admin): their source (local, OIDC, LDAP), role, scopes and state, and changes to
them.

Thin: each route calls one function of ``server.accounts``; its errors by kind become 404
(no such user), 409 (a directory user's role or scopes, the last admin) or 422 (a scope
naming no group or service) in the app's one handler.  Not ``scope_aware``: a user limited
to part of the estate manages nobody, whatever their role.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from patchpilot.server.accounts import UserView, get_user, list_users, update_user
from patchpilot.server.deps import Admin, EngineDep
from patchpilot.server.params import Name200
from patchpilot.server.security import Role

router = APIRouter(tags=["users"])


class ScopeIn(BaseModel):
    """One part of the estate: an asset group or a business service, by name."""

    kind: Literal["group", "service"]
    name: Name200 = Field(min_length=1)


class UserOut(BaseModel):
    """A user as an administrator sees them."""

    name: str
    source: str  # local, oidc or ldap
    role: Role
    scopes: list[ScopeIn]  # empty: the whole estate
    disabled: bool
    created_at: datetime
    last_sign_in: datetime | None  # the latest dashboard sign-in still recorded
    tokens: int  # API tokens neither revoked nor expired


class UserChange(BaseModel):
    """What to change (an omitted field stays).  ``role`` and ``scopes`` of a directory
    user are the directory map's: changing them is refused (409)."""

    role: Role | None = None
    scopes: list[ScopeIn] | None = Field(None, max_length=200)  # []: the whole estate
    disabled: bool | None = None


def _out(view: UserView) -> UserOut:
    return UserOut.model_validate(view.as_dict())


@router.get("/users", response_model=list[UserOut])
def users_list(who: Admin, engine: EngineDep) -> list[UserOut]:
    """Every user by name, with source, role, scopes, state, last sign-in and tokens."""
    with engine.connect() as conn:
        return [_out(v) for v in list_users(conn)]


@router.get("/users/{name}", response_model=UserOut)
def users_get(name: Name200, who: Admin, engine: EngineDep) -> UserOut:
    """One user (404 when nobody has the name)."""
    with engine.connect() as conn:
        return _out(get_user(conn, name))


@router.patch("/users/{name}", response_model=UserOut)
def users_update(name: Name200, body: UserChange, who: Admin, engine: EngineDep) -> UserOut:
    """Change a user's role, scopes or disabled state; audited (``user.update``, each
    field's from and to), and the user's dashboard sessions end."""
    with engine.begin() as conn:
        scopes = None if body.scopes is None else [(s.kind, s.name) for s in body.scopes]
        return _out(update_user(conn, who.name, name, role=body.role, scopes=scopes,
                                disabled=body.disabled))
