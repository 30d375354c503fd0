"""Sign-in and sign-out, and the user's language.

The login form takes a user's password, or an API token for a user with none (``make
run``'s admin); failed sign-ins are throttled (``server.throttle``) and the session is
kept server-side (``web.session``).  ``/`` leads to the overview.

One form serves local and directory users: a name that belongs to a local user (the
break-glass admins) is checked against the password kept here; any other name, when
``PATCHPILOT_LDAP_URL`` is set, against the LDAP directory (``server.ldap``).  A directory
that does not answer refuses the sign-in saying so; it never falls back to a local
password.

With an OpenID Connect provider configured (``PATCHPILOT_OIDC_ISSUER``), the page also
offers "Sign in with <provider>": ``/auth/oidc/login`` sends the browser to the provider
and ``/auth/oidc/callback`` takes it back (``server.oidc`` checks everything), applies the
directory map (``server.directory``) and opens the same session a password does.  Logging
out a user who came that way also ends the provider's session when it says how.
"""

from __future__ import annotations

import math
from typing import Annotated

import httpx
from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from patchpilot.config import load_settings
from patchpilot.errors import ConfigError, NotFound
from patchpilot.server import ldap, oidc, throttle
from patchpilot.server.deps import EngineDep, scope_aware
from patchpilot.server.directory import DirectoryMap, sign_in_directory_user
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

PENDING_COOKIE = "pp_oidc"  # the OpenID Connect sign-in under way (state, nonce, verifier)
OIDC_PATH = "/auth/oidc"  # the pending cookie is sent to the callback only


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
                      {"csrf": csrf, "next": _safe_next(next), "error": None,
                       "oidc": oidc.client_of(load_settings())})
    if "session" not in data:
        # Signed in already: the session's own cookie stays (its token is the form's).
        session.write(request, response, {"c": csrf})
    return response


def _login_refused(request: Request, csrf: str, next: str, message: str, status_code: int,
                   retry_after: int | None = None) -> HTMLResponse:
    """The login form again with ``message`` (translated) and ``status_code``."""
    lang = i18n.negotiate(request.headers.get("accept-language"))
    response = render(request, "login.html", lang,
                      {"csrf": csrf, "next": _safe_next(next), "error": message,
                       "oidc": oidc.client_of(load_settings())},
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
@scope_aware  # touches only the caller's own session
def logout(request: Request, user: User, engine: EngineDep,
           csrf: Annotated[str, Form()] = "") -> Response:
    """End the session: its row, then the cookie."""
    check_csrf(request, csrf)
    current = session.active(request, engine)
    from_provider = False
    if current is not None:
        with engine.begin() as conn:
            session.end(conn, current)
            from_provider = oidc.is_oidc_user(conn, current.principal.id)
    response: Response = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    client = oidc.client_of(load_settings())
    if from_provider and client is not None:
        # RP-initiated logout: the provider ends its own session and sends the browser
        # back to the login page.  A page that moves on by itself, not a redirect: the
        # pages' CSP (form-action 'self') forbids a form's answer to redirect off-site.
        # The PatchPilot session has ended whatever the provider answers.
        try:
            with httpx.Client() as http:
                provider = oidc.discover(client, http)
            target = oidc.logout_url(provider, client, str(request.url_for("login_page")))
        except oidc.OidcError:
            target = None  # the provider is unreachable: its session lapses on its own
        if target:
            response = render(request, "signed_out.html",
                              i18n.negotiate(request.headers.get("accept-language")),
                              {"provider": client.name, "target": target})
    session.clear(response)
    return response


def _oidc_client() -> oidc.Client:
    client = oidc.client_of(load_settings())
    if client is None:
        raise NotFound("OpenID Connect sign-in is not configured here")
    return client


def _oidc_refused(request: Request, client: oidc.Client, next: str, reason: str,
                  status_code: int) -> HTMLResponse:
    """The login page saying why the provider's sign-in was refused (no session opened)."""
    data = session.read(request)
    csrf = session.csrf_of(data)
    tr = i18n.translations(i18n.negotiate(request.headers.get("accept-language")))
    response = _login_refused(request, csrf, next, tr.gettext(
        "Sign-in through %(provider)s was refused: %(reason)s")
        % {"provider": client.name, "reason": reason}, status_code)
    if "session" not in data:
        session.write(request, response, {"c": csrf})
    session.drop_signed(response, PENDING_COOKIE, path=OIDC_PATH)
    return response


@router.get("/auth/oidc/login")
def oidc_login(request: Request, next: str | None = None) -> Response:
    """Send the browser to the OpenID Connect provider (authorization code + PKCE); the
    state, nonce and verifier wait in a signed cookie for the callback."""
    client = _oidc_client()
    try:
        with httpx.Client() as http:
            provider = oidc.discover(client, http)
    except oidc.OidcError as exc:
        return _oidc_refused(request, client, _safe_next(next), str(exc), 502)
    url, pending = oidc.start(client, provider, str(request.url_for("oidc_callback")),
                              _safe_next(next))
    response = RedirectResponse(url, status.HTTP_303_SEE_OTHER)
    session.write_signed(request, response, PENDING_COOKIE, pending.as_cookie(),
                         path=OIDC_PATH, max_age=oidc.PENDING_SECONDS)
    return response


@router.get("/auth/oidc/callback")
def oidc_callback(request: Request, engine: EngineDep) -> Response:
    """The provider's answer: check it (``server.oidc.finish``), apply the directory map
    and open a session as the password login does; else the login page saying why."""
    client = _oidc_client()
    settings = load_settings()
    pending = oidc.Pending.from_cookie(session.read_signed(
        request, PENDING_COOKIE, max_age=oidc.PENDING_SECONDS))
    next_url = pending.next if pending else "/overview"
    try:
        with engine.connect() as conn:
            secret = oidc.client_secret(conn, settings)
        with httpx.Client() as http:
            provider = oidc.discover(client, http)
            identity = oidc.finish(client, provider, http, secret=secret, pending=pending,
                                   redirect_uri=str(request.url_for("oidc_callback")),
                                   params=dict(request.query_params))
        directory_map = (DirectoryMap.load(settings.directory_map)
                         if settings.directory_map else None)
        response = RedirectResponse(_safe_next(next_url), status.HTTP_303_SEE_OTHER)
        with engine.begin() as conn:
            principal = sign_in_directory_user(
                conn, source=oidc.SOURCE, external_id=identity.external_id,
                name=identity.name, memberships=identity.memberships,
                directory_map=directory_map)
            previous = session.active(request, engine)
            if previous is not None:
                session.end(conn, previous)  # one browser, one session
            session.begin(request, response, conn, principal)
    except (AuthError, ConfigError) as exc:
        return _oidc_refused(request, client, next_url, str(exc), 401)
    session.drop_signed(response, PENDING_COOKIE, path=OIDC_PATH)
    return response


@router.post("/language")
@scope_aware  # touches only the caller's own settings
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
