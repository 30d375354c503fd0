"""Dashboard sessions: a signed cookie naming the user, with a CSRF token.

The cookie holds ``{"u": user id, "c": csrf token}`` signed with itsdangerous (HMAC), so it
cannot be forged or altered; it is HttpOnly (no script reads it), SameSite=Lax (not sent
on cross-site POSTs) and Secure when the request came over https.  The user's role is
read from the database on every request, so a demoted or disabled user loses access at
once.  Every POST form carries the session's CSRF token in a hidden field (the
synchronizer-token pattern, OWASP CSRF cheat sheet), the login form included.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from patchpilot.config import load_settings
from patchpilot.server.security import Principal

COOKIE = "pp_session"
MAX_AGE = 12 * 3600  # a working day; then log in again
SECRET_ENV = "PATCHPILOT_SESSION_SECRET"


def _secret(request: Request) -> str:
    """The signing key: $PATCHPILOT_SESSION_SECRET (the same on every server behind a load
    balancer), else a random key kept in the data directory (mode 0600)."""
    state = request.app.state
    if getattr(state, "session_secret", None):
        return str(state.session_secret)
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        path: Path = load_settings().home / "session.key"
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


def read(request: Request) -> dict[str, Any]:
    """The session's content; empty when missing, forged or expired."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return {}
    try:
        data = _serializer(request).loads(raw, max_age=MAX_AGE)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def write(request: Request, response: Response, data: dict[str, Any]) -> None:
    """Set the session cookie to ``data``."""
    response.set_cookie(COOKIE, _serializer(request).dumps(data), max_age=MAX_AGE,
                        httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")


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
