"""Users as an administrator manages them: who they are, where they sign in, what they may
do and see -- listed, and changed with an audit row.

One stage shared by ``GET/PATCH /api/users``, the ``/users`` page and ``patchpilot user
list|set|role|disable|enable``, so the three cannot drift:

* :func:`list_users` / :func:`get_user`: name, source (``local``, ``oidc``, ``ldap``), role,
  scopes, disabled, created, the last sign-in still recorded (dashboard sessions are kept
  a week after they expire, so an older one is not known) and the active API tokens.
* :func:`update_user`: a new role, scopes or disabled state.  A directory user's role and
  scopes are the directory map's (``PATCHPILOT_DIRECTORY_MAP``), rewritten at each of their
  sign-ins: changing them here would be silently undone, so it is refused
  (:class:`DirectoryManaged`) and the message says where to change them.  Disabling and
  enabling work for every user.  A scope must name an asset group or business service that
  exists (:class:`UnknownScopeName`, naming the field).  A change that would leave no
  enabled administrator of the whole estate is refused (:class:`LastAdmin`): nobody could
  manage users any more but from the command line.

Every change runs in the caller's transaction, writes one ``user.update`` audit row with
each changed field's ``from`` and ``to``, and ends the user's dashboard sessions when their
role, scopes or state change (their API tokens read the new role and scopes at their next
call, ``security.authenticate``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import false, func, or_, select
from sqlalchemy.engine import Connection

from patchpilot import errors
from patchpilot.audit import audit
from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import (
    api_tokens,
    asset_context,
    asset_groups,
    user_scopes,
    users,
    web_sessions,
)
from patchpilot.server.directory import SCOPE_KINDS, Scope, set_scopes
from patchpilot.server.security import (
    Role,
    end_sessions,
    set_user_disabled,
    set_user_role,
)

LOCAL = "local"
SOURCES = (LOCAL, "oidc", "ldap")


class DirectoryManaged(errors.Conflict):
    """A role or scope change asked for a directory user (409): the directory map sets
    them at every sign-in."""


class UnknownScopeName(errors.InvalidInput):
    """A scope naming an asset group or business service that does not exist (422)."""


class LastAdmin(errors.Conflict):
    """A change that would leave no enabled administrator of the whole estate (409)."""


class NoSuchUser(errors.NotFound):
    """No user has the name given (404)."""


@dataclass(frozen=True, slots=True)
class UserView:
    """A user as an administrator sees them."""

    name: str
    source: str  # local, oidc or ldap
    role: Role
    scopes: tuple[Scope, ...]  # empty: the whole estate
    disabled: bool
    created_at: datetime
    last_sign_in: datetime | None  # the latest dashboard session still recorded
    tokens: int  # API tokens neither revoked nor expired

    @property
    def directory(self) -> bool:
        """Whether the directory map, not an administrator, sets the role and scopes."""
        return self.source != LOCAL

    def as_dict(self) -> dict[str, Any]:
        """The view as the API and ``--json`` give it (scopes as ``{kind, name}``)."""
        return {"name": self.name, "source": self.source, "role": self.role.value,
                "scopes": [{"kind": k, "name": n} for k, n in self.scopes],
                "disabled": self.disabled, "created_at": self.created_at,
                "last_sign_in": self.last_sign_in, "tokens": self.tokens}


def scope_text(scopes: Sequence[Scope]) -> str:
    """Scopes as the CLI and the page write them: ``group:plant1, service:payroll``;
    ``(whole estate)`` for none."""
    return ", ".join(f"{k}:{n}" for k, n in scopes) or "(whole estate)"


def parse_scope(text: str, field: str = "scope") -> Scope:
    """``group:plant1`` / ``service:payroll`` as a scope; InvalidInput naming ``field``."""
    kind, sep, name = text.partition(":")
    kind, name = kind.strip(), name.strip()
    if not sep or kind not in SCOPE_KINDS or not name:
        raise errors.InvalidInput(
            f"{field}: {text!r} is not KIND:NAME with KIND one of {', '.join(SCOPE_KINDS)} "
            "(e.g. group:plant1, service:payroll)", field=field)
    return (kind, name)


def _views(conn: Connection, where: Any = None) -> list[UserView]:
    """Users (all, or those ``where`` selects) by name, in four statements whatever
    their number."""
    query = select(users.c.id, users.c.name, users.c.source, users.c.role, users.c.disabled,
                   users.c.created_at).order_by(users.c.name)
    rows = conn.execute(query if where is None else query.where(where)).all()
    ids = [r.id for r in rows]
    if not ids:
        return []
    scopes: dict[int, list[Scope]] = {i: [] for i in ids}
    for user_id, kind, name in conn.execute(
            select(user_scopes.c.user_id, user_scopes.c.kind, user_scopes.c.name)
            .where(user_scopes.c.user_id.in_(ids))):
        scopes[user_id].append((kind, name))
    now = now_utc()
    tokens: dict[int, int] = dict(conn.execute(
        select(api_tokens.c.user_id, func.count())
        .where(api_tokens.c.user_id.in_(ids), api_tokens.c.revoked_at.is_(None),
               or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now))
        .group_by(api_tokens.c.user_id)).all())
    signed_in: dict[int, datetime] = dict(conn.execute(
        select(web_sessions.c.user_id, func.max(web_sessions.c.created_at))
        .where(web_sessions.c.user_id.in_(ids))
        .group_by(web_sessions.c.user_id)).all())
    return [UserView(name=r.name, source=str(r.source), role=Role(r.role),
                     scopes=tuple(sorted(scopes[r.id])), disabled=bool(r.disabled),
                     created_at=aware(r.created_at) or r.created_at,
                     last_sign_in=aware(signed_in.get(r.id)),
                     tokens=int(tokens.get(r.id, 0)))
            for r in rows]


def list_users(conn: Connection) -> list[UserView]:
    """Every user, by name."""
    return _views(conn)


def get_user(conn: Connection, name: str) -> UserView:
    """User ``name``; NoSuchUser otherwise."""
    found = _views(conn, users.c.name == name)
    if not found:
        raise NoSuchUser(f"no user named {name!r}", field="name")
    return found[0]


def scope_choices(conn: Connection) -> tuple[list[str], list[str]]:
    """The names a scope may take: (asset groups, business services), each sorted."""
    groups = sorted(conn.execute(select(asset_groups.c.name)).scalars())
    services = sorted(conn.execute(select(asset_context.c.service).distinct()
                                   .where(asset_context.c.service.is_not(None))).scalars())
    return groups, services


def check_scopes(conn: Connection, scopes: Iterable[Scope], field: str = "scopes"
                 ) -> tuple[Scope, ...]:
    """``scopes`` sorted and without repeats, each naming an asset group or a business
    service (an asset's CMDB ``service``) that exists; UnknownScopeName (or InvalidInput
    for a kind that is neither) naming the field and the entry otherwise."""
    given = list(scopes)
    groups, services = scope_choices(conn)
    known = {"group": set(groups), "service": set(services)}
    for index, (kind, name) in enumerate(given):  # indexed as the request gave them
        at = f"{field}[{index}]"
        if kind not in SCOPE_KINDS:
            raise errors.InvalidInput(f"{at}.kind: {kind!r} is not one of "
                                      f"{', '.join(SCOPE_KINDS)}", field=at)
        if name not in known[kind]:
            what = ("no asset group is named" if kind == "group"
                    else "no asset belongs to a business service named")
            raise UnknownScopeName(f"{at}.name: {what} {name!r}", field=at)
    return tuple(sorted(set(given)))


def _whole_estate_admins(conn: Connection) -> set[str]:
    """The enabled admins who see the whole estate (no scope): who can manage users."""
    scoped = select(user_scopes.c.user_id)
    return set(conn.execute(select(users.c.name).where(
        users.c.role == Role.ADMIN.value, users.c.disabled == false(),
        users.c.id.not_in(scoped))).scalars())


def update_user(conn: Connection, actor: str, name: str, *, role: Role | None = None,
                scopes: Iterable[Scope] | None = None, disabled: bool | None = None
                ) -> UserView:
    """Change user ``name``'s role, scopes (empty: the whole estate) or disabled state
    (None: leave it); the user as they are now.

    Refused, changing nothing: DirectoryManaged for a role or scope change of a directory
    user, UnknownScopeName for a scope naming nothing, LastAdmin when no enabled admin of
    the whole estate would remain, NoSuchUser.  One ``user.update`` audit row names every
    changed field's ``from`` and ``to`` (none when nothing changed).
    """
    before = get_user(conn, name)
    wanted_scopes = None if scopes is None else check_scopes(conn, scopes)
    changes: dict[str, dict[str, Any]] = {}
    if role is not None and role != before.role:
        changes["role"] = {"from": before.role.value, "to": role.value}
    if wanted_scopes is not None and wanted_scopes != before.scopes:
        changes["scopes"] = {"from": [list(s) for s in before.scopes],
                             "to": [list(s) for s in wanted_scopes]}
    if before.directory and changes:
        asked = " and ".join(changes)
        raise DirectoryManaged(
            f"{name} is an {before.source.upper()} directory user: their role and scopes "
            f"come from the directory map (PATCHPILOT_DIRECTORY_MAP) at each sign-in, so a "
            f"{asked} change here would be undone at their next one; change their groups "
            "in the directory or the map's rules instead (disabling them works here)",
            field=next(iter(changes)))
    if disabled is not None and disabled != before.disabled:
        changes["disabled"] = {"from": before.disabled, "to": disabled}
    if not changes:
        return before
    after_role = before.role if role is None else role
    after_scopes = before.scopes if wanted_scopes is None else wanted_scopes
    after_disabled = before.disabled if disabled is None else disabled
    was_admin = before.role == Role.ADMIN and not before.scopes and not before.disabled
    stays_admin = after_role == Role.ADMIN and not after_scopes and not after_disabled
    if was_admin and not stays_admin and _whole_estate_admins(conn) <= {name}:
        raise LastAdmin(f"{name} is the last enabled admin who sees the whole estate: make "
                        "another one first (patchpilot user create NAME --role admin), or "
                        "nobody could manage users here", field=next(iter(changes)))
    user_id = None
    if "role" in changes:
        user_id = set_user_role(conn, name, after_role)  # ends their sessions
    if "scopes" in changes:
        user_id = user_id or get_user_id(conn, name)
        set_scopes(conn, user_id, after_scopes)
        end_sessions(conn, user_id=user_id)
    if "disabled" in changes:
        set_user_disabled(conn, name, after_disabled)  # disabling ends their sessions
    audit(conn, actor, "user.update", name, {"source": before.source, **changes})
    return get_user(conn, name)


def get_user_id(conn: Connection, name: str) -> int:
    """The id of user ``name``; NoSuchUser otherwise."""
    found = conn.execute(select(users.c.id).where(users.c.name == name)).scalar()
    if found is None:
        raise NoSuchUser(f"no user named {name!r}", field="name")
    return int(found)

