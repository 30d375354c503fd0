"""Inbound webhooks: an IDS, a SIEM or a script tells PatchPilot something happened.

``POST /api/hooks/{name}`` with a JSON body becomes one ``hook_received`` finding event
(detail ``{"hook": name, "body": <the JSON>}``), which playbooks take like any other:
``trigger: {events: [hook_received]}``, ``condition: event.detail.hook == "ids"``.

A hook authenticates its caller by its own credentials, never a user's session or API
token (a SIEM is not a person):

* ``Authorization: Bearer <token>`` -- the random token :func:`create_hook` returns once;
  only its SHA-256 is stored, compared in constant time;
* ``X-PatchPilot-Signature: sha256=<hex>`` -- HMAC-SHA256 of the exact body bytes under
  the stored secret the hook names (``hmac_secret``: a name in ``secrets``, encrypted at
  rest; the same header PatchPilot's own webhook action sends).

Either one is enough.  An unknown hook, a disabled one and a wrong credential get one and
the same refusal (:class:`HookRefused`, HTTP 401), so a caller cannot tell which hooks
exist; every receipt, accepted or refused, is audited -- without the token or signature.

When the body names a host (``host``, ``hostname``, ``ip`` or ``asset``) the event carries
the asset it resolves to (by FQDN, host name or address: ``findings.ingest.find_asset``);
when it also names a vulnerability (``cve``, ``vuln_id`` or a list ``cves``), the event
carries that asset's open finding of it, so a playbook's ``finding`` and ``asset`` are the
ones the alert is about (``set_priority`` raises exactly that finding).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets as random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.engine import Connection

from patchpilot.audit import audit
from patchpilot.automation.actions.webhook import SIGNATURE_HEADER, signature
from patchpilot.automation.secrets import SecretError, UnknownSecret, read_secret
from patchpilot.clock import aware, iso, now_utc
from patchpilot.db.tables import assets, finding_events, findings, hooks, secrets
from patchpilot.errors import Conflict, InvalidInput, NotFound, PatchPilotError
from patchpilot.findings.events import HOOK_RECEIVED, event_row
from patchpilot.findings.ingest import find_asset
from patchpilot.inventory.model import AssetIdentity

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
TOKEN_PREFIX = "pph_"
MAX_BODY = 1 << 20  # 1 MiB: an alert, not an upload
HOST_KEYS = ("host", "hostname", "ip", "asset")
VULN_KEYS = ("cve", "vuln_id", "cves")
REFUSED = "hook refused: unknown or disabled hook, or wrong credentials"
# Compared against when the hook is unknown, so that an unknown name costs what a wrong
# token does.
_NO_DIGEST = "0" * 64


class HookRefused(PatchPilotError):
    """Unknown hook, disabled hook or wrong credentials: one message for all (HTTP 401).
    ``reason`` says which, for the audit log only."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(REFUSED)


class HookBodyError(InvalidInput):
    """An authenticated body that is not JSON (HTTP 400, naming the problem)."""


class HookBodyTooLarge(InvalidInput):
    """A body over :data:`MAX_BODY` (HTTP 413)."""


class UnknownHook(NotFound):
    """No hook has that name (the admin side: list, delete, enable)."""


@dataclass(frozen=True, slots=True)
class HookInfo:
    """A stored hook, without its credentials."""

    name: str
    enabled: bool
    hmac_secret: str | None
    created_by: str
    created_at: datetime
    last_received_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``list``."""
        return {"name": self.name, "enabled": self.enabled, "hmac_secret": self.hmac_secret,
                "url": f"/api/hooks/{self.name}", "created_by": self.created_by,
                "created_at": iso(self.created_at),
                "last_received_at": iso(self.last_received_at)}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _info(row: Any) -> HookInfo:
    return HookInfo(row.name, bool(row.enabled), row.hmac_secret, row.created_by,
                    aware(row.created_at),  # type: ignore[arg-type]
                    aware(row.last_received_at) if row.last_received_at else None)


def get_hook(conn: Connection, name: str) -> HookInfo:
    """The hook called ``name``; UnknownHook otherwise."""
    row = conn.execute(select(hooks).where(hooks.c.name == name)).first()
    if row is None:
        raise UnknownHook(f"name: no hook named {name!r}", field="name")
    return _info(row)


def create_hook(conn: Connection, actor: str, name: str, *, hmac_secret: str | None = None,
                now: datetime | None = None) -> tuple[HookInfo, str]:
    """Add a hook; (the hook, its token -- shown this once, stored only as its SHA-256).
    ``hmac_secret`` names a stored secret whose HMAC-SHA256 of the body a caller may send
    instead of the token.  Audited without the token."""
    if not NAME.match(name):
        raise InvalidInput("name: letters, digits, '-', '_' or '.', at most 200, starting "
                           "with a letter or digit", field="name")
    if hmac_secret is not None and conn.execute(
            select(secrets.c.name).where(secrets.c.name == hmac_secret)).first() is None:
        raise InvalidInput(f"hmac_secret: no secret named {hmac_secret!r} (store it first "
                           f"with `patchpilot secret set {hmac_secret}`)", field="hmac_secret")
    if conn.execute(select(hooks.c.id).where(hooks.c.name == name)).first() is not None:
        raise Conflict(f"name: a hook named {name!r} exists (remove it first to get a new "
                       "token)", field="name")
    token = TOKEN_PREFIX + random.token_urlsafe(32)
    now = now or now_utc()
    conn.execute(insert(hooks).values(
        name=name, token_sha256=_digest(token), hmac_secret=hmac_secret, enabled=True,
        created_by=actor, created_at=now))
    audit(conn, actor, "hook.add", f"hook:{name}", {"hmac_secret": hmac_secret})
    return get_hook(conn, name), token


def list_hooks(conn: Connection) -> list[HookInfo]:
    """Every hook, by name."""
    return [_info(r) for r in conn.execute(select(hooks).order_by(hooks.c.name))]


def delete_hook(conn: Connection, actor: str, name: str) -> None:
    """Remove a hook (its token stops working at once); audited."""
    if not conn.execute(delete(hooks).where(hooks.c.name == name)).rowcount:
        raise UnknownHook(f"name: no hook named {name!r}", field="name")
    audit(conn, actor, "hook.remove", f"hook:{name}", {})


def set_hook_enabled(conn: Connection, actor: str, name: str, enabled: bool) -> HookInfo:
    """Enable or disable a hook (a disabled one refuses every call); audited."""
    if not conn.execute(update(hooks).where(hooks.c.name == name)
                        .values(enabled=enabled)).rowcount:
        raise UnknownHook(f"name: no hook named {name!r}", field="name")
    audit(conn, actor, "hook.enable" if enabled else "hook.disable", f"hook:{name}", {})
    return get_hook(conn, name)


# --- receiving ------------------------------------------------------------------------------

# The secrets key, or what gives it (read only when a signature is to be checked: a call
# with a token never touches the key).
Key = str | Callable[[], str]


def _authenticate(conn: Connection, row: Any, body: bytes, headers: Mapping[str, str],
                  secrets_key: Key) -> str:
    """How the caller proved itself (``token`` or ``hmac``); HookRefused otherwise."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    stored = row.token_sha256 if row is not None and row.token_sha256 else _NO_DIGEST
    if scheme.lower() == "bearer" and token.strip():
        if hmac.compare_digest(_digest(token.strip()), stored) and row is not None:
            return "token"
    sent = headers.get(SIGNATURE_HEADER.lower(), "")
    if sent and row is not None and row.hmac_secret:
        try:
            key = read_secret(conn, row.hmac_secret,
                              secrets_key() if callable(secrets_key) else secrets_key)
        except (UnknownSecret, SecretError) as exc:
            raise HookRefused(f"hmac secret unreadable: {exc}") from exc
        if hmac.compare_digest(signature(key, body).encode(), sent.strip().encode()):
            return "hmac"
    if row is None:
        raise HookRefused("unknown hook")
    raise HookRefused("wrong credentials" if authorization or sent else "no credentials")


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _asset_of(conn: Connection, body: Mapping[str, Any]) -> int | None:
    """The stored asset the body's host key names (an id, an address, an FQDN or a
    host name), or None."""
    for key in HOST_KEYS:
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            found = conn.execute(select(assets.c.id).where(assets.c.id == value)).scalar()
            if found is not None:
                return int(found)
            continue
        host = _text(value)
        if host is None:
            continue
        try:
            ipaddress.ip_address(host)
        except ValueError:
            asset_id = (find_asset(conn, AssetIdentity(fqdn=host))
                        or find_asset(conn, AssetIdentity(hostname=host)))
        else:
            asset_id = find_asset(conn, AssetIdentity(ip_addresses=[host]))
        if asset_id is not None:
            return asset_id
    return None


def _vulns_of(body: Mapping[str, Any]) -> list[str]:
    """The vulnerability ids the body names, in its order (CVE ids upper-cased)."""
    named: list[Any] = [body.get("cve"), body.get("vuln_id")]
    if isinstance(body.get("cves"), list):
        named += body["cves"]
    out = [v.upper() if v.lower().startswith("cve-") else v
           for v in (_text(n) for n in named) if v]
    return list(dict.fromkeys(out))


def _finding_of(conn: Connection, asset_id: int, vulns: list[str]) -> int | None:
    """The asset's open finding of the first of ``vulns`` it has open, or None."""
    if not vulns:
        return None
    open_ = dict(conn.execute(select(findings.c.vuln_id, findings.c.id).where(
        findings.c.asset_id == asset_id, findings.c.vuln_id.in_(vulns),
        findings.c.state == "open").order_by(findings.c.id.desc())).all())
    return next((int(open_[v]) for v in vulns if v in open_), None)


@dataclass(frozen=True, slots=True)
class Receipt:
    """An accepted call: its event, and what the body resolved to."""

    event_id: int
    asset_id: int | None
    finding_id: int | None


def receive(conn: Connection, name: str, body: bytes, headers: Mapping[str, str], *,
            secrets_key: Key = "", now: datetime | None = None) -> Receipt:
    """Authenticate one call to hook ``name`` and record its ``hook_received`` event (in
    the caller's transaction, with the audit row).  HookBodyTooLarge, HookRefused (the
    caller learns nothing from it) or HookBodyError (not JSON: said only to a caller that
    authenticated).  ``headers``: the request's, any case."""
    if len(body) > MAX_BODY:
        raise HookBodyTooLarge(f"body: larger than {MAX_BODY >> 20} MiB")
    lower = {k.lower(): v for k, v in headers.items()}
    row = conn.execute(select(hooks).where(hooks.c.name == name)).first()
    how = _authenticate(conn, row, body, lower, secrets_key)
    if row is None or not row.enabled:
        raise HookRefused("disabled")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HookBodyError(f"body: not valid JSON: {exc}", field="body") from exc
    asset_id = finding_id = None
    if isinstance(document, dict):
        asset_id = _asset_of(conn, document)
        if asset_id is not None:
            finding_id = _finding_of(conn, asset_id, _vulns_of(document))
    now = now or now_utc()
    event_id = int(conn.execute(insert(finding_events).values(**event_row(
        HOOK_RECEIVED, now, finding_id=finding_id, asset_id=asset_id, producer="hook",
        detail={"hook": name, "body": document}))
        .returning(finding_events.c.id)).scalar_one())
    conn.execute(update(hooks).where(hooks.c.id == row.id).values(last_received_at=now))
    audit(conn, f"hook:{name}"[:200], "hook.received", f"hook:{name}",
          {"event_id": event_id, "auth": how, "bytes": len(body), "asset_id": asset_id,
           "finding_id": finding_id})
    return Receipt(event_id, asset_id, finding_id)


def receive_hook(engine: Engine, name: str, body: bytes, headers: Mapping[str, str], *,
                 secrets_key: Key = "") -> Receipt:
    """:func:`receive` in its own transaction; a refused call is audited in another (the
    refusal rolls the first back), with why -- never the credentials sent."""
    try:
        with engine.begin() as conn:
            return receive(conn, name, body, headers, secrets_key=secrets_key)
    except (HookRefused, HookBodyError, HookBodyTooLarge) as exc:
        reason = exc.reason if isinstance(exc, HookRefused) else str(exc)
        with engine.begin() as conn:
            audit(conn, "hook", "hook.refused", f"hook:{name[:200]}",
                  {"reason": reason, "bytes": len(body)})
        raise
