"""The directory map and directory users (issue 18), on SQLite and PostgreSQL: what groups
grant, how a sign-in creates and updates the user, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, insert, select

from patchpilot.clock import now_utc
from patchpilot.db.tables import audit_log, users, web_sessions
from patchpilot.errors import ConfigError
from patchpilot.server.directory import (
    DirectoryMap,
    Grant,
    grant_for,
    sign_in_directory_user,
)
from patchpilot.server.security import AuthError, Role, scopes_of, set_password

MAP = """
- match: plant1-team
  role: analyst
  groups: [plant1]
- match: plant2-team
  role: viewer
  groups: [plant2]
  services: [payroll]
- match: Auditors
  role: viewer
- match: patch-admins
  role: admin
"""


@pytest.fixture
def directory_map(tmp_path: Path) -> DirectoryMap:
    path = tmp_path / "directory.yaml"
    path.write_text(MAP, encoding="utf-8")
    return DirectoryMap.load(path)


def test_grants(directory_map: DirectoryMap) -> None:
    assert grant_for(directory_map, ["plant1-team", "other"]) == Grant(
        Role.ANALYST, (("group", "plant1"),))
    # Several rules: the highest role, the union of the scopes.
    assert grant_for(directory_map, ["plant1-team", "plant2-team"]) == Grant(
        Role.ANALYST, (("group", "plant1"), ("group", "plant2"), ("service", "payroll")))
    # An unscoped rule (auditors) opens the whole estate; names compare without case.
    assert grant_for(directory_map, ["plant1-team", "AUDITORS"]) == Grant(Role.ANALYST, ())
    assert grant_for(directory_map, ["patch-admins"]) == Grant(Role.ADMIN, ())
    assert grant_for(directory_map, ["plant3-team", ""]) is None


@pytest.mark.parametrize(("text", "message"), [
    ("match: x", "PATCHPILOT_DIRECTORY_MAP: m.yaml: a list of rules (match, role, groups, "
                 "services)"),
    ("- match: x\n  role: boss", "PATCHPILOT_DIRECTORY_MAP: m.yaml: rule 1: role: one of "
                                 "viewer, analyst, admin"),
    ("- match: x\n  role: viewer\n  groups: plant1",
     "PATCHPILOT_DIRECTORY_MAP: m.yaml: rule 1: groups: a list of names"),
    ("- role: viewer", "PATCHPILOT_DIRECTORY_MAP: m.yaml: rule 1: match: a group name"),
    ("- match: x\n  role: viewer\n  scope: [a]",
     "PATCHPILOT_DIRECTORY_MAP: m.yaml: rule 1: unknown key 'scope'"),
])
def test_a_wrong_map_names_the_rule(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        DirectoryMap.parse(yaml.safe_load(text), "m.yaml")
    assert str(raised.value) == message


def test_sign_in_creates_then_follows_the_directory(
        engine: Engine, directory_map: DirectoryMap) -> None:
    # What a scoped sign-in stores.
    dn = "uid=ito,ou=people,dc=example,dc=org"
    with engine.begin() as conn:
        who = sign_in_directory_user(conn, source="ldap", external_id=dn, name="ito",
                                     memberships=["plant1-team"], directory_map=directory_map)
        assert (who.name, who.role) == ("ito", Role.ANALYST)
        assert scopes_of(conn, who.id) == (("group", "plant1"),)
        assert conn.execute(select(users.c.source, users.c.external_id, users.c.password_hash)
                            .where(users.c.id == who.id)).one() == ("ldap", dn, None)
        conn.execute(insert(web_sessions).values(
            session_hash="a" * 64, user_id=who.id, role="analyst", user_role="analyst",
            csrf="t", created_at=now_utc(), expires_at=now_utc()))
    # Same grant again: nothing changes, the session lives.
    with engine.begin() as conn:
        again = sign_in_directory_user(conn, source="ldap", external_id=dn, name="ito",
                                       memberships=["plant1-team"],
                                       directory_map=directory_map)
        assert again.id == who.id
        assert conn.execute(select(web_sessions.c.ended_at)).scalars().all() == [None]
    # Moved to the auditors: role and scopes follow, the old sessions end, audited.
    with engine.begin() as conn:
        moved = sign_in_directory_user(conn, source="ldap", external_id=dn, name="ito",
                                       memberships=["auditors"], directory_map=directory_map)
        assert moved.role is Role.VIEWER and scopes_of(conn, who.id) == ()
        assert conn.execute(select(web_sessions.c.ended_at)).scalar_one() is not None
        assert conn.execute(select(audit_log.c.action).order_by(audit_log.c.id)
                            ).scalars().all() == ["user.directory_create",
                                                  "user.directory_update"]


def test_sign_in_refusals(engine: Engine, directory_map: DirectoryMap) -> None:
    set_password(engine, "sato", Role.ADMIN, "break-glass-password")
    with engine.begin() as conn:
        with pytest.raises(AuthError, match="none of your directory groups is allowed"):
            sign_in_directory_user(conn, source="oidc", external_id="iss sub-1", name="kato",
                                   memberships=["sales"], directory_map=directory_map)
        with pytest.raises(AuthError, match="that name belongs to a local user here"):
            sign_in_directory_user(conn, source="oidc", external_id="iss sub-2",
                                   name="sato", memberships=["patch-admins"],
                                   directory_map=directory_map)
        # Scopes not enforced yet: a scoped grant is refused, never widened.
        with pytest.raises(AuthError, match="directory sign-in is not configured"):
            sign_in_directory_user(conn, source="oidc", external_id="iss sub-3",
                                   name="mori", memberships=["patch-admins"],
                                   directory_map=None)
        assert conn.execute(select(users.c.name)).scalars().all() == ["sato"]
