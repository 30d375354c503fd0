"""An estate split between plants, and users limited to plant 1 (issue 18's scope tests).

Real advisories (ALSA-2022:0818: ten firefox CVEs on AlmaLinux 8; PYSEC-2023-117 in
Pygments) and four hosts ingested and matched as a worker would (``web_data``):

* plant1: ``plant1-app-07`` (old firefox) and ``plant1-build-02`` (old Pygments);
* plant2: ``plant2-ws-11`` (old firefox and Pygments);
* plant3: ``plant3-ci`` (Debian 12, no finding: no Debian feed is loaded).

Users: the unscoped ``viewer-user`` / ``analyst-user`` / ``admin-user`` (``add_users``),
and ``plant1-viewer`` / ``plant1-analyst`` / ``plant1-admin`` limited to the group plant1
(password ``plant1-password``, ``add_scoped_users``).  API tokens of each are returned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from patchpilot.assets.groups import create_group
from patchpilot.db.tables import assets, findings
from patchpilot.server.security import Role, create_api_token
from tests.builders.sessions import add_scoped_users, add_users
from tests.builders.web_data import GROUP_MEMBERS, add_group_members, load, load_more

PLANT1 = ("plant1-app-07", "plant1-build-02")
OUTSIDE = ("plant2-ws-11", "plant3-ci")


def scope_estate(engine: Engine, shared_data: Path, feeds: Path) -> dict[str, Any]:
    """Build the estate; a dict of ``assets`` (name -> id), ``findings`` (asset name ->
    finding ids), ``tokens`` (user name -> API token)."""
    load(engine, shared_data, feeds)
    load_more(engine, shared_data)
    with engine.begin() as conn:
        for group in ("plant1", "plant2", "plant3"):
            create_group(conn, "test", group)
    add_group_members(engine, {g: GROUP_MEMBERS[g] for g in ("plant1", "plant2", "plant3")})
    add_users(engine)
    add_scoped_users(engine)
    tokens = {}
    for role in Role:
        for user in (f"{role.value}-user", f"plant1-{role.value}"):
            tokens[user] = create_api_token(engine, user=user, role=role)[0]
    with engine.connect() as conn:
        ids = {name: int(i) for name, i in conn.execute(select(assets.c.name, assets.c.id))}
        found: dict[str, list[int]] = {name: [] for name in ids}
        for name, fid in conn.execute(select(assets.c.name, findings.c.id)
                                      .join(assets, assets.c.id == findings.c.asset_id)
                                      .order_by(findings.c.id)):
            found[name].append(int(fid))
    return {"assets": ids, "findings": found, "tokens": tokens}
