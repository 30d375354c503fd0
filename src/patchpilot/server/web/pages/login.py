"""Sign-in and sign-out, and the user's language.

The login form takes a user's password, or an API token for a user with none (``make
run``'s admin); failed sign-ins are throttled (``server.throttle``) and the session is
kept server-side (``web.session``).  ``/`` leads to the overview.

One form serves local and directory users: a name that belongs to a local user (the
break-glass admins) is checked against the password kept here; any other name, when
``PATCHPILOT_LDAP_URL`` is set, against the LDAP directory (``server.ldap``).  A directory
that does not answer refuses the sign-in saying so; it never falls back to a local
password.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from patchpilot.config import load_settings
from patchpilot.errors import ConfigError
from patchpilot.server import ldap, throttle
from patchpilot.server.deps import EngineDep
from patchpilot.server.params import Name200
from patchpilot.server.security import (
    AuthError,
    HashingBusy,
    Principal,
    authenticate,
    set_user_language,
    stored_password,
    verify_password,
)
from patchpilot.server.web import i18n, session
from patchpilot.server.web.render import User, check_csrf, render

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only paths on this server: never an open redirect to another site.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/overview"


@router.get("/")
def root() -> RedirectResponse:
    """Where ``make run``'s URL leads: the overview (via the login page)."""
    return RedirectResponse("/overview", status.HTTP_303_SEE_OTHER)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    """The login form; before sign-in the cookie carries the form's CSRF token."""
    data = session.read(request)
    csrf = session.csrf_of(data)
    lang = i18n.negotiate(request.headers.get("accept-language"))
    response = render(request, "login.html", lang,
                      {"csrf": csrf, "next": _safe_next(next), "error": None})
    if "session" not in data:
        # Signed in already: the session's own cookie stays (its token is the form's).
        session.write(request, response, {"c": csrf})
    return response


def _login_refused(request: Request, csrf: str, next: str, message: str, status_code: int,
                   retry_after: int | None = None) -> HTMLResponse:
    """The login form again with ``message`` (translated) and ``status_code``."""
    lang = i18n.negotiate(request.headers.get("accept-language"))
    response = render(request, "login.html", lang,
                      {"csrf": csrf, "next": _safe_next(next), "error": message},
                      status_code=status_code)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@router.post("/login")
def login(request: Request, engine: EngineDep, username: Annotated[Name200, Form()] = "",
          password: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/overview") -> Response:
    """Check the password (or an API token, for a user with none: ``make run``'s admin)
    and start a session.

    Failed sign-ins are counted per user name and client address (``throttle``): a locked
    name or address is answered 429 with Retry-After before any password is hashed, and
    at most ``security.HASHING_SLOTS`` passwords are hashed at once (503 when no slot
    frees up in time).
    """
    check_csrf(request, csrf)
    tr = i18n.translations(i18n.negotiate(request.headers.get("accept-language")))
    name = username.strip()
    by_token = password.startswith("pp_") and not name
    client = request.client.host if request.client else None
    keys = throttle.keys_for(None if by_token else name, client)
    principal: Principal
    try:
        throttle.ensure_open(engine, keys)
        if by_token:
            with engine.begin() as conn:
                principal = authenticate(conn, password)
        else:
            with engine.connect() as conn:
                stored = stored_password(conn, name)
            settings = load_settings()
            if (stored.user_id is not None and stored.source == "local") or not (
                    ldap.configured(settings)):
                # Checked again once a hashing slot is free: attempts queued behind a
                # burst are refused, not hashed, once the burst has locked the name.
                principal = verify_password(stored, password,
                                            admit=lambda: throttle.ensure_open(engine, keys))
            else:
                principal = ldap.sign_in(engine, settings, name, password)
    except throttle.Locked as exc:
        return _login_refused(request, csrf, next, tr.gettext(
            "Too many failed logins. Try again in %(minutes)s min.")
            % {"minutes": math.ceil(exc.retry_after / 60)}, 429, exc.retry_after)
    except HashingBusy:
        return _login_refused(request, csrf, next, tr.gettext(
            "The server is busy checking other logins. Try again in a moment."), 503,
            throttle.BUSY_RETRY)
    except (ldap.DirectoryUnavailable, ConfigError) as exc:
        # The directory could not be asked: no password was judged, nothing is counted.
        return _login_refused(request, csrf, next, str(exc), 503)
    except ldap.DirectoryRefused as exc:
        # The directory knew the password, but the directory map grants nothing (or the
        # account is disabled here): the reason is the user's to read.
        throttle.record_success(engine, name)
        return _login_refused(request, csrf, next, str(exc), 403)
    except AuthError:
        throttle.record_failure(engine, keys, client)
        return _login_refused(request, csrf, next,
                              tr.gettext("Wrong user name or password."), 401)
    if not by_token:
        throttle.record_success(engine, name)
    response = RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)
    with engine.begin() as conn:
        previous = session.active(request, engine)
        if previous is not None:
            session.end(conn, previous)  # one browser, one session
        session.begin(request, response, conn, principal)
    return response


@router.post("/logout")
def logout(request: Request, user: User, engine: EngineDep,
           csrf: Annotated[str, Form()] = "") -> Response:
    """End the session: its row, then the cookie."""
    check_csrf(request, csrf)
    current = session.active(request, engine)
    if current is not None:
        with engine.begin() as conn:
            session.end(conn, current)
    response = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    session.clear(response)
    return response


@router.post("/language")
def set_language(request: Request, user: User, engine: EngineDep,
                 lang: Annotated[str, Form()], csrf: Annotated[str, Form()] = "",
                 next: Annotated[str, Form()] = "/overview") -> Response:
    """Remember the user's language."""
    check_csrf(request, csrf)
    if lang not in i18n.LANGUAGES:
        raise HTTPException(422, f"language must be one of {', '.join(i18n.LANGUAGES)}")
    with engine.begin() as conn:
        set_user_language(conn, user.principal.id, lang)
    return RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)
