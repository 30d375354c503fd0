"""Users (admins): where each signs in (local, OpenID Connect, LDAP), their role, the part
of the estate they see, their state; a form per user to change them.

The same stage as ``/api/users`` and ``patchpilot user set`` (``server.accounts``): a local
user's role, scopes and state change here; a directory user's role and scopes come from the
directory map at each sign-in, so their form offers only disabling and enabling, and the
page says where the rest is set.  Not ``scope_aware``: a user limited to part of the estate
manages nobody.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from patchpilot.errors import Conflict, InvalidInput
from patchpilot.server.accounts import list_users, parse_scope, scope_choices, update_user
from patchpilot.server.deps import EngineDep
from patchpilot.server.params import Name200, Text
from patchpilot.server.security import Role
from patchpilot.server.web import i18n
from patchpilot.server.web.render import User, check_csrf, need, render
from patchpilot.server.web.session import WebUser

router = APIRouter(include_in_schema=False)

# The states the form offers (a select, so "unchanged" is never mistaken for "enabled").
STATES = {"enabled": False, "disabled": True}


def _users_response(request: Request, user: WebUser, engine: Engine, *,
                    error: str | None = None, status_code: int = 200) -> HTMLResponse:
    with engine.connect() as conn:
        found = list_users(conn)
        groups, services = scope_choices(conn)
    choices = [("group", g) for g in groups] + [("service", s) for s in services]
    return render(request, "users.html", user.language,
                  {"users": found, "choices": choices, "roles": [r.value for r in Role],
                   "error": error},
                  user, status_code=status_code)


@router.get("/users")
def users_page(request: Request, user: User, engine: EngineDep) -> HTMLResponse:
    """Every user with source, role, scopes and state; the admin's forms to change them."""
    need(user, Role.ADMIN)
    return _users_response(request, user, engine)


@router.post("/users/{name}")
def change_user_form(request: Request, name: Name200, user: User, engine: EngineDep,
                     role: Annotated[Text, Form()] = "",
                     scope: Annotated[list[Text] | None, Form()] = None,
                     scopes_given: Annotated[str, Form()] = "",
                     state: Annotated[str, Form()] = "",
                     csrf: Annotated[str, Form()] = "") -> Response:
    """Change a user (admins), as ``patchpilot user set`` does: ``role`` (empty: keep it),
    ``scope`` (repeated ``group:NAME`` / ``service:NAME``; read only when the form says
    ``scopes_given``, so none selected means the whole estate) and ``state``
    (``enabled`` / ``disabled``; empty: keep it)."""
    check_csrf(request, csrf)
    need(user, Role.ADMIN)
    try:
        if role and role not in {r.value for r in Role}:
            raise InvalidInput(f"role: {role!r} is not one of admin, analyst, viewer",
                               field="role")
        if state and state not in STATES:
            raise InvalidInput(f"state: {state!r} is not enabled or disabled", field="state")
        scopes = ([parse_scope(s) for s in scope or []] if scopes_given == "yes" else None)
        with engine.begin() as conn:
            update_user(conn, user.principal.name, name, role=Role(role) if role else None,
                        scopes=scopes, disabled=STATES.get(state))
    except (InvalidInput, Conflict) as exc:
        lead = i18n.translations(user.language).gettext("The user was not changed:")
        return _users_response(request, user, engine, error=f"{lead} {exc}",
                               status_code=409 if isinstance(exc, Conflict) else 422)
    return RedirectResponse("/users", status.HTTP_303_SEE_OTHER)
