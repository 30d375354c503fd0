"""Who is calling: users with roles, API tokens, agent credentials.

Tokens are random (256 bits) and stored only as SHA-256 hashes: a high-entropy secret
needs no slow hash, and a stolen database reveals no usable token.  Passwords (for the
dashboard) use argon2.  A token is shown once, when created.

A token carries its own role and acts with the lower of it and its user's current role:
a viewer token of an admin reads, and demoting the user demotes every token of theirs.
A token is never created above its user's role (``TokenRoleError``), and creating one never
changes the user.

Authenticating reads; it writes ``last_used_at`` / ``last_seen`` at most once a minute per
credential, best-effort, so a database locked by another writer does not fail reads
(issue 10, item 11).  Each argon2 verification takes ~64 MiB: at most
``HASHING_SLOTS`` run at once in a process (``verify_password``), so a flood of logins
cannot exhaust memory (item 5).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from patchpilot.assets.groups import Reach, reach_ids
from patchpilot.audit import audit
from patchpilot.clock import aware
from patchpilot.db.tables import (
    agents,
    api_tokens,
    enrolment_tokens,
    user_scopes,
    users,
    web_sessions,
)
from patchpilot.errors import Conflict, PatchPilotError

log = logging.getLogger(__name__)
T = TypeVar("T")

USER_TOKEN_PREFIX = "pp_"
AGENT_TOKEN_PREFIX = "ppa_"
ENROL_TOKEN_PREFIX = "ppe_"

# A credential's last use is recorded at most this often: a read needs no write the rest
# of the time, and a dashboard polling every few seconds does not hold the write lock.
TOUCH_EVERY = timedelta(minutes=1)
# How long recording a use may wait for SQLite's write lock before it is skipped.
_TOUCH_BUSY_MS = 100


class Role(StrEnum):
    """What a user may do; each role may do everything the ones below it may."""

    VIEWER = "viewer"  # read findings, assets, reports
    ANALYST = "analyst"  # triage findings, start sweeps and scans, upload inventories
    ADMIN = "admin"  # manage users, tokens, agents, groups, schedules

    @property
    def rank(self) -> int:
        """Viewer 1, analyst 2, admin 3."""
        return {"viewer": 1, "analyst": 2, "admin": 3}[self.value]

    def at_most(self, other: Role) -> Role:
        """The lower of this role and ``other``."""
        return self if self.rank <= other.rank else other


class AuthError(PatchPilotError):
    """A missing, unknown, revoked or expired credential, or a role too low."""


class TokenRoleError(Conflict):
    """A token was asked for with a role above its user's (409: it clashes with the stored
    role)."""


class EnrolmentRefused(AuthError):
    """An enrolment token that is unknown, expired, revoked or used up."""


class UnknownUser(PatchPilotError):
    """No user has the name given."""


class HashingBusy(PatchPilotError):
    """Every password-hashing slot stayed busy for as long as a login may wait."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    kind: str  # "user" or "agent"
    id: int  # users.id or agents.id
    name: str
    role: Role | None  # None for agents; for a token, the lower of its role and the user's
    token_id: int | None = None  # the API token it authenticated with (None: a password)
    # The part of the estate the user may see: (kind, name) pairs, kind "group" or
    # "service"; empty for the whole estate (and for agents).  A token carries its user's.
    scopes: tuple[tuple[str, str], ...] = ()

    def may(self, role: Role) -> bool:
        """Whether this caller holds at least ``role``."""
        return self.role is not None and self.role.rank >= role.rank

    @property
    def scoped(self) -> bool:
        """Whether this caller sees only part of the estate."""
        return bool(self.scopes)

    def scope_text(self) -> str:
        """The scopes for messages: "group plant1, service payroll"."""
        return ", ".join(f"{kind} {name}" for kind, name in self.scopes)


def scopes_of(conn: Connection, user_id: int) -> tuple[tuple[str, str], ...]:
    """The scopes of user ``user_id``, sorted (empty: the whole estate)."""
    return tuple(sorted((r.kind, r.name) for r in conn.execute(
        select(user_scopes.c.kind, user_scopes.c.name)
        .where(user_scopes.c.user_id == user_id))))


def reach(conn: Connection, principal: Principal) -> Reach:
    """The asset ids ``principal`` may see (None: the whole estate), resolved now."""
    return reach_ids(conn, principal.scopes)


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str) -> str:
    """A fresh random token with a recognisable prefix (secret scanners can spot it)."""
    return prefix + secrets.token_urlsafe(32)


def _now() -> datetime:
    return datetime.now(UTC)


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "database is locked" (another writer held the lock for
    longer than the busy timeout)."""
    orig = getattr(exc, "orig", exc)
    code = getattr(orig, "sqlite_errorcode", None)
    # SQLITE_BUSY (5) and its extended codes (BUSY_SNAPSHOT, …) share the low byte.
    return (isinstance(code, int) and code & 0xFF == 5) or "database is locked" in str(orig)


def ensure_user(conn: Connection, name: str, role: Role) -> int:
    """The id of user ``name``, created with ``role`` if missing (an existing user's role
    is never changed here)."""
    found = conn.execute(select(users.c.id).where(users.c.name == name)).scalar()
    if found is not None:
        return int(found)
    return int(conn.execute(insert(users).values(
        name=name, role=str(role), created_at=_now(), disabled=False)
        .returning(users.c.id)).scalar_one())


def create_api_token(engine: Engine, *, user: str, role: Role, name: str = "cli",
                     ttl_days: int | None = None) -> tuple[str, int]:
    """A new API token for ``user`` acting with ``role``; (token, token id).

    A new user is created with ``role``.  For an existing user ``role`` may not be above
    the user's own (TokenRoleError): the user's role is never changed by making a token.
    The token itself is returned once and never stored.
    """
    token = new_token(USER_TOKEN_PREFIX)
    with engine.begin() as conn:
        existing = conn.execute(select(users.c.id, users.c.role)
                                .where(users.c.name == user)).first()
        if existing is None:
            user_id = ensure_user(conn, user, role)
        else:
            held = Role(existing.role)
            if role.rank > held.rank:
                raise TokenRoleError(
                    f"user {user!r} is {held.value}: a token for them cannot be {role.value} "
                    f"(a token never acts above its user's role; ask for {held.value} or "
                    "lower, or change the user's role first)")
            user_id = int(existing.id)
        token_id = conn.execute(insert(api_tokens).values(
            user_id=user_id, name=name, role=str(role), prefix=token[:10],
            token_hash=hash_token(token),
            created_at=_now(),
            expires_at=_now() + timedelta(days=ttl_days) if ttl_days else None)
            .returning(api_tokens.c.id)).scalar_one()
    return token, int(token_id)


def end_sessions(conn: Connection, *, user_id: int | None = None,
                 token_id: int | None = None) -> int:
    """End the open dashboard sessions of a user or of an API token; how many ended.

    Called wherever a session's ground changes: a token revoked, a user disabled, a role
    changed, a password reset.  (Each page request also re-checks these, so a session
    ended here stays ended even if the change is undone.)
    """
    if user_id is None and token_id is None:
        raise ValueError("end_sessions needs a user_id or a token_id")
    query = update(web_sessions).where(web_sessions.c.ended_at.is_(None))
    if user_id is not None:
        query = query.where(web_sessions.c.user_id == user_id)
    if token_id is not None:
        query = query.where(web_sessions.c.token_id == token_id)
    return int(conn.execute(query.values(ended_at=_now())).rowcount or 0)


def revoke_api_token(conn: Connection, token_id: int) -> bool:
    """Revoke an active token and end the sessions opened with it; False when there is no
    active token ``token_id``."""
    done = conn.execute(update(api_tokens).where(
        api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=_now()))
    if not done.rowcount:
        return False
    end_sessions(conn, token_id=token_id)
    return True


def _user_id(conn: Connection, name: str) -> tuple[int, Role, bool]:
    row = conn.execute(select(users.c.id, users.c.role, users.c.disabled)
                       .where(users.c.name == name)).first()
    if row is None:
        raise UnknownUser(f"no user named {name!r}")
    return int(row.id), Role(row.role), bool(row.disabled)


def set_user_role(conn: Connection, name: str, role: Role) -> int:
    """Give user ``name`` the role ``role``; a change ends their sessions.  The user id."""
    user_id, held, _ = _user_id(conn, name)
    if held != role:
        conn.execute(update(users).where(users.c.id == user_id).values(role=str(role)))
        end_sessions(conn, user_id=user_id)
    return user_id


def set_user_disabled(conn: Connection, name: str, disabled: bool) -> int:
    """Disable (or enable again) user ``name``; disabling ends their sessions and stops
    their tokens.  The user id."""
    user_id, _, was = _user_id(conn, name)
    if was != disabled:
        conn.execute(update(users).where(users.c.id == user_id).values(disabled=disabled))
    if disabled:
        end_sessions(conn, user_id=user_id)
    return user_id


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


def enrol_agent(conn: Connection, token: str, name: str, version: str | None
                ) -> tuple[int, str]:
    """Spend one use of enrolment ``token`` on a new agent; (agent id, its credential).

    The credential is returned once and only its hash stored.  EnrolmentRefused for a
    token unknown, expired, revoked or used up.  The use is spent by one conditional
    UPDATE whose row count says whether it was there to spend, so concurrent enrolments
    can never spend more uses than the token has.  Runs in the caller's transaction and
    writes the audit row.
    """
    now = _now()
    refused = EnrolmentRefused("enrolment token unknown, expired, revoked or used up")
    token_id = conn.execute(select(enrolment_tokens.c.id).where(
        enrolment_tokens.c.token_hash == hash_token(token))).scalar()
    if token_id is None:
        raise refused
    t = enrolment_tokens.c
    # Check and spend at once: PostgreSQL re-checks the WHERE of a row another
    # transaction just updated, SQLite runs one writer at a time.  NULL uses_left
    # (unlimited) stays NULL.
    spent = conn.execute(update(enrolment_tokens).where(
        t.id == token_id, t.revoked_at.is_(None),
        or_(t.expires_at.is_(None), t.expires_at > now),
        or_(t.uses_left.is_(None), t.uses_left > 0))
        .values(uses_left=t.uses_left - 1))
    if spent.rowcount != 1:
        raise refused
    credential = new_token(AGENT_TOKEN_PREFIX)
    agent_id = int(conn.execute(insert(agents).values(
        name=name, credential_hash=hash_token(credential), version=version,
        enrolled_at=now, last_seen=now).returning(agents.c.id)).scalar_one())
    audit(conn, f"agent:{name}", "agent.enrol", str(agent_id), {"enrolment_token": token_id})
    return agent_id, credential


def _touch(conn: Connection, column: Any, row_id: Any, last: datetime | None,
           now: datetime) -> None:
    """Record a credential's use in ``column`` when the stored moment is a minute old or
    more; best-effort on SQLite, where a write lock held by another connection makes the
    update be skipped after a short wait instead of failing (or stalling) the request."""
    stale = now - TOUCH_EVERY
    recorded = aware(last)
    if recorded is not None and recorded > stale:
        return
    table = column.table
    # The condition is repeated in SQL: of several processes, only the first writes.
    statement = update(table).where(table.c.id == row_id, or_(column.is_(None), column < stale)
                                    ).values({column.name: now})
    if conn.dialect.name != "sqlite":
        conn.execute(statement)
        return
    previous = int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0)
    conn.exec_driver_sql(f"PRAGMA busy_timeout = {_TOUCH_BUSY_MS}")
    try:
        conn.execute(statement)
    except OperationalError as exc:
        if not is_lock_timeout(exc):
            raise
        # Losing one "last used" moment is harmless; failing the caller's read is not.
        log.info("skipped recording the use of %s %s: the database is locked",
                 table.name, row_id)
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {previous}")


def authenticate(conn: Connection, token: str) -> Principal:
    """The caller a bearer token belongs to; AuthError when it is not valid.

    A user token acts with the lower of its own role and its user's current role.
    """
    digest = hash_token(token)
    now = _now()
    if token.startswith(AGENT_TOKEN_PREFIX):
        agent = conn.execute(select(agents.c.id, agents.c.name, agents.c.revoked_at,
                                    agents.c.last_seen)
                             .where(agents.c.credential_hash == digest)).first()
        if agent is None or agent.revoked_at is not None:
            raise AuthError("unknown or revoked agent credential")
        _touch(conn, agents.c.last_seen, agent.id, agent.last_seen, now)
        return Principal("agent", agent.id, agent.name, None)
    row = conn.execute(
        select(api_tokens.c.id, api_tokens.c.expires_at, api_tokens.c.revoked_at,
               api_tokens.c.last_used_at, api_tokens.c.role.label("token_role"),
               users.c.id.label("user_id"), users.c.name, users.c.role, users.c.disabled)
        .join(users, users.c.id == api_tokens.c.user_id)
        .where(api_tokens.c.token_hash == digest)).first()
    if row is None:
        raise AuthError("unknown token")
    if row.revoked_at is not None:
        raise AuthError("token revoked")
    expires = aware(row.expires_at)
    if expires is not None and expires < now:
        raise AuthError("token expired")
    if row.disabled:
        raise AuthError("user disabled")
    _touch(conn, api_tokens.c.last_used_at, row.id, row.last_used_at, now)
    return Principal("user", row.user_id, row.name,
                     Role(row.token_role).at_most(Role(row.role)), token_id=row.id,
                     scopes=scopes_of(conn, row.user_id))


# argon2id with the library's defaults (RFC 9106 "second recommended" parameters: 64 MiB
# and 3 passes per hash).
_hasher = PasswordHasher()
# Verified against when the user is unknown, so a wrong name costs as long as a wrong
# password and login timing does not reveal which names exist.
_DUMMY_HASH = _hasher.hash("patchpilot-no-such-user")
# Password verifications at once per process (each holds ~64 MiB while it runs), and how
# long a login waits for a free slot before it is answered "busy, retry".
HASHING_SLOTS = 2
HASHING_WAIT = 2.0


class HashingSlots:
    """A cap on concurrent argon2 verifications, with gauges: how many run now, the most
    that ever ran at once, how many ran in all (for monitoring, and for the tests that
    prove the cap and that a throttled login hashes nothing)."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.total = 0

    def run(self, work: Callable[[], T], wait: float,
            admit: Callable[[], None] | None = None) -> T:
        """``work()`` in a free slot; HashingBusy when none frees up within ``wait`` s.
        ``admit()``, when given, runs once the slot is free and may raise to refuse."""
        if not self._free.acquire(timeout=wait):
            raise HashingBusy(f"all {self.slots} password-checking slots are busy")
        try:
            if admit is not None:
                admit()
            with self._lock:
                self.running += 1
                self.total += 1
                self.peak = max(self.peak, self.running)
            try:
                return work()
            finally:
                with self._lock:
                    self.running -= 1
        finally:
            self._free.release()


HASHING = HashingSlots(HASHING_SLOTS)


@dataclass(frozen=True, slots=True)
class StoredPassword:
    """What a password is checked against: the user's row (None fields: no such user)."""

    user_id: int | None
    name: str
    role: str | None
    password_hash: str | None
    disabled: bool
    source: str = "local"  # only a local user signs in with a password kept here


def stored_password(conn: Connection, name: str) -> StoredPassword:
    """The password record of user ``name`` (read before hashing, so no database
    connection is held while argon2 runs)."""
    row = conn.execute(select(users.c.id, users.c.name, users.c.role, users.c.password_hash,
                              users.c.disabled, users.c.source)
                       .where(users.c.name == name)).first()
    if row is None:
        return StoredPassword(None, name, None, None, False)
    return StoredPassword(row.id, row.name, row.role, row.password_hash, bool(row.disabled),
                          str(row.source))


def verify_password(stored: StoredPassword, password: str, *,
                    wait: float = HASHING_WAIT,
                    admit: Callable[[], None] | None = None) -> Principal:
    """The user of ``stored`` if ``password`` is theirs; AuthError (one message) otherwise,
    HashingBusy when no hashing slot frees up within ``wait`` seconds.

    ``admit`` runs once a slot is free, before hashing: it may raise to refuse the attempt
    (the login throttle, checked again after a wait in the queue).
    """
    digest = stored.password_hash or _DUMMY_HASH

    def check() -> bool:
        try:
            return bool(_hasher.verify(digest, password))
        except (VerifyMismatchError, InvalidHashError):
            return False

    matched = HASHING.run(check, wait, admit)
    # A directory user (OIDC, LDAP) never signs in with a password kept here, even one an
    # administrator set: the directory alone vouches for them.
    if (not matched or stored.user_id is None or not stored.password_hash or stored.disabled
            or stored.source != "local"):
        raise AuthError("wrong user name or password")
    return Principal("user", stored.user_id, stored.name, Role(str(stored.role)))


def set_password(engine: Engine, name: str, role: Role, password: str) -> int:
    """Create user ``name`` with ``role`` and ``password`` (or reset both, enabling the
    user again and ending their sessions); the user id."""
    if len(password) < 8:
        raise AuthError("a password needs at least 8 characters")
    # Hashed before the transaction: argon2 must not hold SQLite's write lock.
    hashed = _hasher.hash(password)
    with engine.begin() as conn:
        existed = conn.execute(select(users.c.id).where(users.c.name == name)).scalar()
        user_id = ensure_user(conn, name, role)
        conn.execute(update(users).where(users.c.id == user_id).values(
            role=str(role), password_hash=hashed, disabled=False))
        if existed is not None:
            # A new password or role: sessions begun under the old ones end (OWASP
            # session management: renew on privilege change and on password change).
            end_sessions(conn, user_id=user_id)
    return user_id


def check_password(conn: Connection, name: str, password: str) -> Principal:
    """The user ``name`` if ``password`` is theirs; AuthError (one message) otherwise."""
    return verify_password(stored_password(conn, name), password)


def user_principal(conn: Connection, user_id: int) -> Principal | None:
    """The enabled user ``user_id`` as a Principal (None when gone or disabled)."""
    row = conn.execute(select(users.c.id, users.c.name, users.c.role, users.c.disabled)
                       .where(users.c.id == user_id)).first()
    if row is None or row.disabled:
        return None
    return Principal("user", row.id, row.name, Role(row.role),
                     scopes=scopes_of(conn, row.id))


def set_user_language(conn: Connection, user_id: int, language: str) -> None:
    """Remember the dashboard language of user ``user_id`` (a code the caller checked
    against the dashboard's languages)."""
    conn.execute(update(users).where(users.c.id == user_id).values(language=language))
