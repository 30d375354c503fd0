"""Who is calling: users with roles, API tokens, agent credentials.

Tokens are random (256 bits) and stored only as SHA-256 hashes: a high-entropy secret
needs no slow hash, and a stolen database reveals no usable token.  Passwords (for the
dashboard) use argon2.  A token is shown once, when created.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection

from patchpilot.db.tables import agents, api_tokens, enrolment_tokens, users
from patchpilot.errors import PatchPilotError

USER_TOKEN_PREFIX = "pp_"
AGENT_TOKEN_PREFIX = "ppa_"
ENROL_TOKEN_PREFIX = "ppe_"


class Role(StrEnum):
    """What a user may do; each role may do everything the ones below it may."""

    VIEWER = "viewer"  # read findings, assets, reports
    ANALYST = "analyst"  # triage findings, start sweeps and scans, upload inventories
    ADMIN = "admin"  # manage users, tokens, agents, groups, schedules

    @property
    def rank(self) -> int:
        """Viewer 1, analyst 2, admin 3."""
        return {"viewer": 1, "analyst": 2, "admin": 3}[self.value]


class AuthError(PatchPilotError):
    """A missing, unknown, revoked or expired credential, or a role too low."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    kind: str  # "user" or "agent"
    id: int  # users.id or agents.id
    name: str
    role: Role | None  # None for agents

    def may(self, role: Role) -> bool:
        """Whether this caller holds at least ``role``."""
        return self.role is not None and self.role.rank >= role.rank


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str) -> str:
    """A fresh random token with a recognisable prefix (secret scanners can spot it)."""
    return prefix + secrets.token_urlsafe(32)


def _now() -> datetime:
    return datetime.now(UTC)


def ensure_user(conn: Connection, name: str, role: Role) -> int:
    """The id of user ``name``, created with ``role`` if missing."""
    found = conn.execute(select(users.c.id).where(users.c.name == name)).scalar()
    if found is not None:
        return int(found)
    return int(conn.execute(insert(users).values(
        name=name, role=str(role), created_at=_now(), disabled=False)
        .returning(users.c.id)).scalar_one())


def create_api_token(engine: Engine, *, user: str, role: Role, name: str = "cli",
                     ttl_days: int | None = None) -> tuple[str, int]:
    """A new API token for ``user`` (created with ``role`` if new); (token, token id).

    The token itself is returned once and never stored.
    """
    token = new_token(USER_TOKEN_PREFIX)
    with engine.begin() as conn:
        user_id = ensure_user(conn, user, role)
        token_id = conn.execute(insert(api_tokens).values(
            user_id=user_id, name=name, role=str(role), prefix=token[:10],
            token_hash=hash_token(token),
            created_at=_now(),
            expires_at=_now() + timedelta(days=ttl_days) if ttl_days else None)
            .returning(api_tokens.c.id)).scalar_one()
    return token, int(token_id)


def create_enrolment_token(engine: Engine, *, created_by: str, group_id: int | None = None,
                           uses: int | None = None, ttl_hours: int = 24 * 7) -> str:
    """A token agents enrol with (shown once)."""
    token = new_token(ENROL_TOKEN_PREFIX)
    with engine.begin() as conn:
        conn.execute(insert(enrolment_tokens).values(
            token_hash=hash_token(token), group_id=group_id, created_by=created_by,
            created_at=_now(), expires_at=_now() + timedelta(hours=ttl_hours),
            uses_left=uses))
    return token


def authenticate(conn: Connection, token: str) -> Principal:
    """The caller a bearer token belongs to; AuthError when it is not valid."""
    digest = hash_token(token)
    now = _now()
    if token.startswith(AGENT_TOKEN_PREFIX):
        agent = conn.execute(select(agents.c.id, agents.c.name, agents.c.revoked_at)
                             .where(agents.c.credential_hash == digest)).first()
        if agent is None or agent.revoked_at is not None:
            raise AuthError("unknown or revoked agent credential")
        conn.execute(update(agents).where(agents.c.id == agent.id).values(last_seen=now))
        return Principal("agent", agent.id, agent.name, None)
    row = conn.execute(
        select(api_tokens.c.id, api_tokens.c.expires_at, api_tokens.c.revoked_at,
               users.c.id.label("user_id"), users.c.name, users.c.role, users.c.disabled)
        .join(users, users.c.id == api_tokens.c.user_id)
        .where(api_tokens.c.token_hash == digest)).first()
    if row is None:
        raise AuthError("unknown token")
    if row.revoked_at is not None:
        raise AuthError("token revoked")
    expires = row.expires_at
    if expires is not None and (expires if expires.tzinfo else expires.replace(tzinfo=UTC)) < now:
        raise AuthError("token expired")
    if row.disabled:
        raise AuthError("user disabled")
    conn.execute(update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=now))
    return Principal("user", row.user_id, row.name, Role(row.role))


# argon2id with the library's defaults (RFC 9106 "second recommended" parameters).
_hasher = PasswordHasher()
# Verified against when the user is unknown, so a wrong name costs as long as a wrong
# password and login timing does not reveal which names exist.
_DUMMY_HASH = _hasher.hash("patchpilot-no-such-user")


def set_password(engine: Engine, name: str, role: Role, password: str) -> int:
    """Create user ``name`` with ``role`` and ``password`` (or reset both); the user id."""
    if len(password) < 8:
        raise AuthError("a password needs at least 8 characters")
    with engine.begin() as conn:
        user_id = ensure_user(conn, name, role)
        conn.execute(update(users).where(users.c.id == user_id).values(
            role=str(role), password_hash=_hasher.hash(password), disabled=False))
    return user_id


def check_password(conn: Connection, name: str, password: str) -> Principal:
    """The user ``name`` if ``password`` is theirs; AuthError (one message) otherwise."""
    row = conn.execute(select(users.c.id, users.c.name, users.c.role, users.c.password_hash,
                              users.c.disabled).where(users.c.name == name)).first()
    stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, InvalidHashError):
        raise AuthError("wrong user name or password") from None
    if row is None or not row.password_hash or row.disabled:
        raise AuthError("wrong user name or password")
    return Principal("user", row.id, row.name, Role(row.role))


def user_principal(conn: Connection, user_id: int) -> Principal | None:
    """The enabled user ``user_id`` as a Principal (None when gone or disabled): a session
    re-reads the role on every request, so a demotion takes effect at once."""
    row = conn.execute(select(users.c.id, users.c.name, users.c.role, users.c.disabled)
                       .where(users.c.id == user_id)).first()
    if row is None or row.disabled:
        return None
    return Principal("user", row.id, row.name, Role(row.role))
