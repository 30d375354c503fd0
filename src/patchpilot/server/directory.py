"""Directory users: what a group in the company's directory grants here.

Users who sign in through OpenID Connect or LDAP/Active Directory are not kept with a
password: each sign-in brings their directory groups (an OIDC groups/roles claim, LDAP
group memberships), and the *directory map* (``PATCHPILOT_DIRECTORY_MAP``, a YAML file)
says what those groups grant::

    - match: plant1-team        # a group name (or DN) as the directory gives it
      role: analyst
      groups: [plant1]          # asset groups it may see; omit groups and services
      services: []              #   for the whole estate
    - match: auditors
      role: viewer

A user matching several rules gets the highest role among them and the union of their
scopes; a matching rule without groups or services means the whole estate.  A user no
rule matches is refused: a directory account grants nothing by itself.  Each sign-in
brings the user's row up to date (role, scopes), audited when they change, so removing
someone from a group in the directory takes effect at their next sign-in and ends their
sessions.  Local users (``source`` ``local``) are the break-glass admins; a directory
user never signs in with a local password.

A grant limited to part of the estate is enforced on every request: the user's scopes
ride on their Principal, and only routes marked ``scope_aware`` (each narrowing what it
shows and does to the user's assets) answer them; every other route refuses them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from patchpilot.audit import audit
from patchpilot.clock import now_utc
from patchpilot.db.tables import user_scopes, users
from patchpilot.errors import ConfigError
from patchpilot.server.security import AuthError, Principal, Role, end_sessions, scopes_of

SOURCES = ("oidc", "ldap")
SCOPE_KINDS = ("group", "service")

Scope = tuple[str, str]
"""(kind, name): ``("group", "plant1")`` or ``("service", "payroll")``."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What a user may do and see: a role, and the scopes (empty: the whole estate)."""

    role: Role
    scopes: tuple[Scope, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of the directory map."""

    match: str
    grant: Grant


@dataclass(frozen=True, slots=True)
class DirectoryMap:
    """The rules, in the file's order."""

    rules: tuple[Rule, ...]

    @classmethod
    def load(cls, path: Path) -> DirectoryMap:
        """Read the map; ConfigError naming the file and entry for anything wrong."""
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise _bad(f"{path}: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise _bad(f"{path}: not YAML: {exc}") from exc
        return cls.parse(raw, str(path))

    @classmethod
    def parse(cls, raw: object, source: str) -> DirectoryMap:
        """The map of an already-read YAML value (a list of rules)."""
        if not isinstance(raw, list):
            raise _bad(f"{source}: a list of rules (match, role, groups, "
                                     "services)")
        rules = []
        for index, entry in enumerate(raw, start=1):
            at = f"{source}: rule {index}"
            if not isinstance(entry, dict):
                raise _bad(f"{at}: a mapping with match and role")
            unknown = set(entry) - {"match", "role", "groups", "services"}
            if unknown:
                raise _bad(f"{at}: unknown key {sorted(unknown)[0]!r}")
            match = entry.get("match")
            if not isinstance(match, str) or not match.strip():
                raise _bad(f"{at}: match: a group name")
            try:
                role = Role(str(entry.get("role")))
            except ValueError:
                raise _bad(f"{at}: role: one of "
                                         f"{', '.join(r.value for r in Role)}") from None
            scopes: list[Scope] = []
            for key, kind in (("groups", "group"), ("services", "service")):
                names = entry.get(key) or []
                if not isinstance(names, list) or not all(
                        isinstance(n, str) and n.strip() for n in names):
                    raise _bad(f"{at}: {key}: a list of names")
                scopes += [(kind, n.strip()) for n in names]
            rules.append(Rule(match.strip(), Grant(role, tuple(scopes))))
        return cls(tuple(rules))


def _bad(text: str) -> ConfigError:
    return ConfigError(f"PATCHPILOT_DIRECTORY_MAP: {text}")


def grant_for(directory_map: DirectoryMap, memberships: Iterable[str]) -> Grant | None:
    """What ``memberships`` grant: the highest role of the matching rules and the union
    of their scopes (a matching rule without scopes: the whole estate); None when no rule
    matches.  Group names compare without regard to case, as directories do."""
    held = {m.strip().casefold() for m in memberships if m and m.strip()}
    matching = [r.grant for r in directory_map.rules if r.match.casefold() in held]
    if not matching:
        return None
    role = max((g.role for g in matching), key=lambda r: r.rank)
    if any(not g.scopes for g in matching):
        return Grant(role, ())
    return Grant(role, tuple(sorted({s for g in matching for s in g.scopes})))


def set_scopes(conn: Connection, user_id: int, scopes: Iterable[Scope]) -> None:
    """Replace the user's scopes (none: the whole estate)."""
    wanted = sorted(set(scopes))
    bad = next((kind for kind, _ in wanted if kind not in SCOPE_KINDS), None)
    if bad is not None:
        raise ValueError(f"scope kind {bad!r}: one of {', '.join(SCOPE_KINDS)}")
    conn.execute(delete(user_scopes).where(user_scopes.c.user_id == user_id))
    if wanted:
        conn.execute(insert(user_scopes), [{"user_id": user_id, "kind": kind, "name": name}
                                           for kind, name in wanted])


def sign_in_directory_user(conn: Connection, *, source: str, external_id: str, name: str,
                           memberships: Iterable[str], directory_map: DirectoryMap | None
                           ) -> Principal:
    """The signed-in directory user, their row created or brought up to date.

    Raises AuthError (the message is shown on the sign-in page) when no directory map is
    configured, no rule grants anything, the name belongs to a local user, or the user
    is disabled here.  A change of role or scopes is audited and ends the user's other
    sessions, so a narrowed grant applies everywhere at once.
    """
    if source not in SOURCES:
        raise ValueError(f"source {source!r}: one of {', '.join(SOURCES)}")
    if directory_map is None:
        raise AuthError("directory sign-in is not configured here "
                        "(PATCHPILOT_DIRECTORY_MAP names no file)")
    groups = sorted({m for m in memberships if m})
    grant = grant_for(directory_map, groups)
    if grant is None:
        raise AuthError(f"{name}: none of your directory groups is allowed to use "
                        "PatchPilot; ask an administrator to add one to the directory map")
    row = conn.execute(select(users.c.id, users.c.name, users.c.role, users.c.disabled)
                       .where(users.c.source == source, users.c.external_id == external_id)
                       ).first()
    if row is None:
        taken = conn.execute(select(users.c.source).where(users.c.name == name)).first()
        if taken is not None:
            raise AuthError(f"{name}: that name belongs to a {taken.source} user here; "
                            "an administrator must rename one of them")
        user_id = int(conn.execute(insert(users).values(
            name=name, role=str(grant.role), created_at=now_utc(), disabled=False,
            source=source, external_id=external_id).returning(users.c.id)).scalar_one())
        set_scopes(conn, user_id, grant.scopes)
        audit(conn, name, "user.directory_create", name,
              {"source": source, "role": str(grant.role),
               "scopes": [list(s) for s in grant.scopes], "groups": groups})
        return Principal("user", user_id, name, grant.role, scopes=grant.scopes)
    if row.disabled:
        raise AuthError(f"{row.name}: this account is disabled in PatchPilot")
    user_id = int(row.id)
    before = (row.role, scopes_of(conn, user_id))
    if before != (str(grant.role), grant.scopes):
        conn.execute(update(users).where(users.c.id == user_id).values(role=str(grant.role)))
        set_scopes(conn, user_id, grant.scopes)
        end_sessions(conn, user_id=user_id)
        audit(conn, row.name, "user.directory_update", row.name,
              {"source": source, "role": {"from": row.role, "to": str(grant.role)},
               "scopes": {"from": [list(s) for s in before[1]],
                          "to": [list(s) for s in grant.scopes]}, "groups": groups})
    return Principal("user", user_id, row.name, grant.role, scopes=grant.scopes)
