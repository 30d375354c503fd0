"""Action secrets: API tokens, chat webhook URLs and HMAC keys, encrypted at rest.

A playbook names a secret (``token_secret: jira-bot``), never holds it; the value is kept
in ``secrets`` encrypted with Fernet (AES-128-CBC with HMAC-SHA256) under a key derived
from ``PATCHPILOT_SECRETS_KEY`` -- else a random key kept in the data directory
(``secrets.key``, mode 0600) -- and is shown back only masked (``…f3a9``).  The database
alone (a backup, a dump) does not give the values away; back the key up apart from it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets as random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from patchpilot.audit import audit
from patchpilot.clock import aware, iso, now_utc
from patchpilot.config import Settings
from patchpilot.db.tables import secrets
from patchpilot.errors import InvalidInput, NotFound

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


class SecretError(InvalidInput):
    """A secret that cannot be stored or read (the message says what to do)."""


class UnknownSecret(NotFound):
    """No secret has that name."""


def key_of(settings: Settings) -> str:
    """The secrets key: ``PATCHPILOT_SECRETS_KEY``, else the data directory's
    ``secrets.key`` (created, mode 0600, the first time)."""
    if settings.secrets_key:
        return settings.secrets_key
    path: Path = settings.home / "secrets.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(random.token_urlsafe(48))
    return path.read_text().strip()


def _fernet(key: str) -> Fernet:
    if len(key) < 16:
        raise SecretError("PATCHPILOT_SECRETS_KEY is too short: give at least 16 random "
                          "characters (e.g. the output of `openssl rand -base64 32`)")
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


def mask(value: str) -> str:
    """What may be shown of a secret: its last four characters."""
    return "…" + value[-4:] if len(value) >= 12 else "…"


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A stored secret without its value."""

    name: str
    hint: str
    updated_by: str
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``list``."""
        return {"name": self.name, "hint": self.hint, "updated_by": self.updated_by,
                "updated_at": iso(self.updated_at)}


def set_secret(conn: Connection, actor: str, name: str, value: str, key: str, *,
               now: datetime | None = None) -> SecretInfo:
    """Store (or replace) a secret, encrypted; audited without its value."""
    if not NAME.match(name):
        raise SecretError("name: letters, digits, '-', '_' or '.', at most 200",
                          field="name")
    if not value:
        raise SecretError("value: empty", field="value")
    now = now or now_utc()
    token = _fernet(key).encrypt(value.encode()).decode()
    hint = mask(value)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(secrets).values(
        name=name, ciphertext=token, hint=hint, created_by=actor, created_at=now,
        updated_by=actor, updated_at=now)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"ciphertext": token, "hint": hint, "updated_by": actor, "updated_at": now}))
    audit(conn, actor, "secret.set", f"secret:{name}", {"hint": hint})
    return SecretInfo(name, hint, actor, now)


def read_secret(conn: Connection, name: str, key: str) -> str:
    """The clear value of a secret; UnknownSecret or SecretError (a wrong key)."""
    token = conn.execute(select(secrets.c.ciphertext)
                         .where(secrets.c.name == name)).scalar()
    if token is None:
        raise UnknownSecret(f"no secret named {name!r} (store it with `patchpilot secret "
                            f"set {name}`)", field="name")
    try:
        return _fernet(key).decrypt(str(token).encode()).decode()
    except InvalidToken as exc:
        raise SecretError(f"secret {name!r} cannot be decrypted with this "
                          "PATCHPILOT_SECRETS_KEY (was the key changed?)") from exc


def list_secrets(conn: Connection) -> list[SecretInfo]:
    """Every stored secret, by name, masked."""
    return [SecretInfo(r.name, r.hint, r.updated_by, aware(r.updated_at))  # type: ignore[arg-type]
            for r in conn.execute(select(secrets.c.name, secrets.c.hint, secrets.c.updated_by,
                                         secrets.c.updated_at).order_by(secrets.c.name))]


def delete_secret(conn: Connection, actor: str, name: str) -> None:
    """Forget a secret; audited."""
    if not conn.execute(delete(secrets).where(secrets.c.name == name)).rowcount:
        raise UnknownSecret(f"no secret named {name!r}", field="name")
    audit(conn, actor, "secret.delete", f"secret:{name}", {})


def rekey(conn: Connection, actor: str, old: str, new: str) -> int:
    """Encrypt every secret again under a new key (one transaction); how many."""
    before, after = _fernet(old), _fernet(new)
    rows = conn.execute(select(secrets.c.name, secrets.c.ciphertext)).all()
    for name, token in rows:
        try:
            value = before.decrypt(str(token).encode())
        except InvalidToken as exc:
            raise SecretError(f"secret {name!r} cannot be decrypted with the old key") from exc
        conn.execute(update(secrets).where(secrets.c.name == name)
                     .values(ciphertext=after.encrypt(value).decode()))
    audit(conn, actor, "secret.rekey", "secrets", {"count": len(rows)})
    return len(rows)
