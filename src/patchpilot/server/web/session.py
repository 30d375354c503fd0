"""Dashboard sessions, kept server-side: the cookie carries a random id, the
``web_sessions`` row is the authority.

A signed-in browser's cookie holds ``{"s": session id}``: 256 random bits, of which only
the SHA-256 is stored, so a copy of the database opens no session.  On every request the
row is read (never written) and must be: not ended, not expired, its user present and
enabled with the role they had at sign-in, and, for a session opened with an API token,
that token neither revoked nor expired.  Logout ends the row; so do revoking the token,
disabling the user, changing their role or password (``security.end_sessions``).  The
session acts with the role it began with, never above the user's current one.

Before sign-in the cookie holds ``{"c": token}``: the login form's CSRF token.  After it,
the CSRF token lives in the row, and a new one is made at sign-in, so a token planted
before login is worthless after it.  The cookie is signed with itsdangerous (HMAC) all the
same (a forged pre-login token is refused without a database read), HttpOnly (no script
reads it), SameSite=Lax (not sent on cross-site POSTs) and Secure over https (behind a
TLS-terminating proxy: when the proxy is in ``PATCHPILOT_TRUSTED_PROXIES`` and says the
client came over https, ``server.app``).  Every POST
form carries the CSRF token in a hidden field (the synchronizer-token pattern, OWASP CSRF
cheat sheet), the login form included.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.engine import Connection

from patchpilot.clock import aware, now_utc
from patchpilot.config import load_settings
from patchpilot.db.tables import api_tokens, users, web_sessions
from patchpilot.server.security import Principal, Role, hash_token, scopes_of

COOKIE = "pp_session"
MAX_AGE = 12 * 3600  # a working day; then log in again
# Ended and expired rows are deleted at a later sign-in once this old.
_KEEP_ENDED = timedelta(days=7)
_CACHE = "pp_web_session"  # request.state attribute: one row read per request


def _secret(request: Request) -> str:
    """The signing key: $PATCHPILOT_SESSION_SECRET (the same on every server behind a load
    balancer), else a random key kept in the data directory (mode 0600)."""
    state = request.app.state
    if getattr(state, "session_secret", None):
        return str(state.session_secret)
    settings = load_settings()
    secret = settings.session_secret
    if not secret:
        path: Path = settings.home / "session.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        secret = path.read_text().strip()
    state.session_secret = secret
    return secret


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_secret(request), salt="patchpilot-session")


def _cookie(request: Request) -> dict[str, Any]:
    """The cookie's signed content; empty when missing, forged or older than MAX_AGE."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return {}
    try:
        data = _serializer(request).loads(raw, max_age=MAX_AGE)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """An open session, as checked against its row for this request."""

    id: int  # web_sessions.id
    principal: Principal
    csrf: str
    language: str | None  # the user's chosen language (None: the browser's)


def lookup(conn: Connection, session_id: str) -> ActiveSession | None:
    """The open session whose cookie id is ``session_id`` (None when unknown, ended,
    expired, or its user, role or token no longer allows it).  Reads only."""
    now = now_utc()
    row = conn.execute(
        select(web_sessions.c.id, web_sessions.c.csrf, web_sessions.c.role,
               web_sessions.c.user_role, web_sessions.c.token_id, web_sessions.c.expires_at,
               web_sessions.c.ended_at, users.c.id.label("user_id"), users.c.name,
               users.c.role.label("current_role"), users.c.disabled, users.c.language,
               api_tokens.c.revoked_at, api_tokens.c.expires_at.label("token_expires"))
        .join(users, users.c.id == web_sessions.c.user_id)
        .outerjoin(api_tokens, api_tokens.c.id == web_sessions.c.token_id)
        .where(web_sessions.c.session_hash == hash_token(session_id))).first()
    if row is None or row.ended_at is not None or row.disabled:
        return None
    expires = aware(row.expires_at)
    if expires is None or expires <= now or row.current_role != row.user_role:
        return None
    if row.token_id is not None:
        token_expires = aware(row.token_expires)
        if row.revoked_at is not None or (token_expires is not None and token_expires <= now):
            return None
    role = Role(row.role).at_most(Role(row.current_role))
    return ActiveSession(row.id, Principal("user", row.user_id, row.name, role,
                                           token_id=row.token_id,
                                           scopes=scopes_of(conn, row.user_id)),
                         row.csrf, row.language)


def active(request: Request, engine: Engine | None = None) -> ActiveSession | None:
    """The request's open session (read once per request, then remembered)."""
    if hasattr(request.state, _CACHE):
        return getattr(request.state, _CACHE)  # type: ignore[no-any-return]
    session_id = _cookie(request).get("s")
    found = None
    if isinstance(session_id, str) and session_id:
        with (engine or request.app.state.engine).connect() as conn:
            found = lookup(conn, session_id)
    setattr(request.state, _CACHE, found)
    return found


def begin(request: Request, response: Response, conn: Connection,
          principal: Principal) -> ActiveSession:
    """Open a session for ``principal`` (signed in by password, or by the API token
    ``principal.token_id``) and set its cookie on ``response``; in the caller's
    transaction."""
    now = now_utc()
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    user_role = conn.execute(select(users.c.role).where(users.c.id == principal.id)
                             ).scalar_one()
    role = principal.role or Role.VIEWER
    conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now - _KEEP_ENDED))
    row_id = conn.execute(insert(web_sessions).values(
        session_hash=hash_token(session_id), user_id=principal.id,
        token_id=principal.token_id, role=str(role), user_role=user_role, csrf=csrf,
        client=(request.client.host if request.client else None),
        created_at=now, expires_at=now + timedelta(seconds=MAX_AGE))
        .returning(web_sessions.c.id)).scalar_one()
    write(request, response, {"s": session_id})
    opened = ActiveSession(int(row_id), principal, csrf, None)
    setattr(request.state, _CACHE, opened)
    return opened


def end(conn: Connection, session: ActiveSession) -> None:
    """End ``session`` (logout): its cookie opens nothing from now on."""
    conn.execute(update(web_sessions).where(web_sessions.c.id == session.id,
                                            web_sessions.c.ended_at.is_(None))
                 .values(ended_at=now_utc()))


def read(request: Request) -> dict[str, Any]:
    """What the request's cookie stands for: ``{"u": user id, "c": CSRF token,
    "session": row id}`` for an open session, ``{"c": token}`` for the login form's
    pre-login cookie, ``{}`` when missing, forged, expired or ended."""
    current = active(request)
    if current is not None:
        return {"u": current.principal.id, "c": current.csrf, "session": current.id}
    data = _cookie(request)
    if "s" not in data and isinstance(data.get("c"), str):
        return {"c": data["c"]}
    return {}


def write(request: Request, response: Response, data: dict[str, Any]) -> None:
    """Set the (signed) session cookie to ``data``."""
    response.set_cookie(COOKIE, _serializer(request).dumps(data), max_age=MAX_AGE,
                        httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")


def write_signed(request: Request, response: Response, name: str, data: dict[str, Any],
                 *, path: str, max_age: int) -> None:
    """Set another signed cookie ``name`` (HttpOnly, SameSite=Lax) for ``path`` only:
    a sign-in under way through an identity provider, read back by :func:`read_signed`."""
    response.set_cookie(name, URLSafeTimedSerializer(_secret(request), salt=name).dumps(data),
                        max_age=max_age, httponly=True, samesite="lax", path=path,
                        secure=request.url.scheme == "https")


def read_signed(request: Request, name: str, *, max_age: int) -> dict[str, Any]:
    """The content of the signed cookie ``name``; empty when missing, forged or older than
    ``max_age`` seconds."""
    raw = request.cookies.get(name)
    if not raw:
        return {}
    try:
        data = URLSafeTimedSerializer(_secret(request), salt=name).loads(raw, max_age=max_age)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def drop_signed(response: Response, name: str, *, path: str) -> None:
    """Drop the signed cookie ``name`` (used once)."""
    response.delete_cookie(name, path=path, httponly=True, samesite="lax")


def clear(response: Response) -> None:
    """Drop the session cookie (logout)."""
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")


def csrf_of(session: dict[str, Any]) -> str:
    """The session's CSRF token (a fresh one when the session has none yet)."""
    token = session.get("c")
    return str(token) if token else secrets.token_urlsafe(24)


def csrf_ok(session: dict[str, Any], sent: str | None) -> bool:
    """Whether a form's token is the session's (constant-time)."""
    expected = session.get("c")
    return bool(expected and sent) and secrets.compare_digest(str(expected), str(sent))


@dataclass(frozen=True, slots=True)
class WebUser:
    """The logged-in user of a page request."""

    principal: Principal
    language: str
    csrf: str
