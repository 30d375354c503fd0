"""Login throttling: failed sign-ins counted per user name and per client address.

A key (``user:NAME`` or ``addr:IP``) that collects its limit of failures within
``WINDOW`` is locked, first for ``FIRST_LOCK``, then twice as long for each further
failure (one try per lock, each answered before any password is hashed), up to
``LONGEST_LOCK``; after ``WINDOW`` without a failure or a lock the count starts again.
A successful sign-in clears the user name's count (never the address's: one valid
account must not reset the count of an address guessing others).  Counts live in the
database (``login_throttle``), so every server process behind a load balancer shares them.
Each lock writes one audit row (``login.lockout``).

An address's limit is higher than a user's: many people may sign in from behind one NAT
or proxy (behind a reverse proxy, list it in ``PATCHPILOT_TRUSTED_PROXIES`` so that the
address is the client's, not the proxy's: ``server.app``).  See the OWASP Authentication
cheat sheet, "Account lockout".
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from patchpilot.audit import audit
from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import login_throttle
from patchpilot.errors import PatchPilotError

USER_LIMIT = 5
ADDRESS_LIMIT = 20
WINDOW = timedelta(minutes=15)
FIRST_LOCK = timedelta(minutes=1)
LONGEST_LOCK = timedelta(hours=24)
# Rows quiet for this long are deleted when a failure is recorded (names never seen again).
FORGET_AFTER = timedelta(days=2)
# Retry-After of a login refused because every password-hashing slot stayed busy.
BUSY_RETRY = 2
_KEY_MAX = 300  # login_throttle.key's length

# One process's threads count one key in turn (PostgreSQL also locks the row: FOR UPDATE).
_COUNTING = threading.Lock()


class Locked(PatchPilotError):
    """A sign-in refused because its user name or address is locked for a while."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins: try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Key:
    """One counter: its key in ``login_throttle`` and the failures that lock it."""

    key: str
    limit: int


def keys_for(user: str | None, address: str | None) -> list[Key]:
    """The counters a sign-in attempt by ``user`` (None: a token login) from ``address``
    counts against."""
    found = []
    if user:
        found.append(Key(("user:" + user)[:_KEY_MAX], USER_LIMIT))
    if address:
        found.append(Key(("addr:" + address)[:_KEY_MAX], ADDRESS_LIMIT))
    return found


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def retry_after(conn: Connection, keys: list[Key], now: datetime | None = None) -> int:
    """Seconds until none of ``keys`` is locked (0: none is)."""
    now = now or now_utc()
    if not keys:
        return 0
    rows = conn.execute(select(login_throttle.c.locked_until).where(
        login_throttle.c.key.in_([k.key for k in keys]))).scalars()
    until = [u for u in (aware(r) for r in rows) if u is not None and u > now]
    return _seconds(max(until) - now) if until else 0


def ensure_open(engine: Engine, keys: list[Key]) -> None:
    """Locked when any of ``keys`` is locked now."""
    with engine.connect() as conn:
        wait = retry_after(conn, keys)
    if wait:
        raise Locked(wait)


def lock_length(failures: int, limit: int) -> timedelta:
    """How long a key stays locked after its ``failures``-th failure (``limit`` or more)."""
    doublings = min(failures - limit, 20)  # 2**20 minutes is far past LONGEST_LOCK
    return min(FIRST_LOCK * 2 ** doublings, LONGEST_LOCK)


def record_failure(engine: Engine, keys: list[Key], client: str | None,
                   now: datetime | None = None) -> int:
    """Count a failed sign-in against every key; the seconds until the attempt's keys
    unlock when this failure locked one of them (0 otherwise)."""
    now = now or now_utc()
    with _COUNTING:
        for attempt in range(2):
            try:
                with engine.begin() as conn:
                    return max((_count(conn, key, client, now) for key in keys), default=0)
            except IntegrityError:
                # Another process inserted the same new key first: count again, updating.
                if attempt:
                    raise
    return 0


def _count(conn: Connection, key: Key, client: str | None, now: datetime) -> int:
    row = conn.execute(select(login_throttle).where(login_throttle.c.key == key.key)
                       .with_for_update()).first()
    if row is None:
        conn.execute(delete(login_throttle).where(
            login_throttle.c.window_start < now - FORGET_AFTER,
            or_(login_throttle.c.locked_until.is_(None),
                login_throttle.c.locked_until < now - FORGET_AFTER)))
        conn.execute(insert(login_throttle).values(key=key.key, failures=1, window_start=now,
                                                   locked_until=None))
        failures, window_start = 1, now
    else:
        locked_until = aware(row.locked_until)
        quiet = (aware(row.window_start) or now) < now - WINDOW and (
            locked_until is None or locked_until < now - WINDOW)
        failures = 1 if quiet else row.failures + 1
        window_start = now if quiet else aware(row.window_start) or now
    locked = now + lock_length(failures, key.limit) if failures >= key.limit else None
    conn.execute(update(login_throttle).where(login_throttle.c.key == key.key).values(
        failures=failures, window_start=window_start, locked_until=locked))
    if locked is None:
        return 0
    audit(conn, "login-throttle", "login.lockout", key.key,
          {"failures": failures, "locked_until": locked.isoformat(), "client": client})
    return _seconds(locked - now)


def record_success(engine: Engine, user: str) -> None:
    """A successful sign-in of ``user``: their name's count starts again."""
    with engine.begin() as conn:
        conn.execute(delete(login_throttle).where(
            login_throttle.c.key == keys_for(user, None)[0].key))
