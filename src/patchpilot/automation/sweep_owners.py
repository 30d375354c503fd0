"""The affected hosts of an emergency sweep, grouped by their CMDB owner.

What a playbook needs to open one ticket per affected owner once a sweep settles
(WALKTHROUGH.md, "Thursday"): the hosts whose answer is affected -- ``confirmed`` by a
fresh inventory, or ``affected`` by the stored data for a host nobody can refresh, the
two the sweep page and ``patchpilot sweep --wait`` list as affected -- with the packages
that make them so and the fixed versions, grouped by ``asset_context.owner``.  Hosts
without an owner (no CMDB record, or a blank owner) form one group whose owner is None.

One statement reads the sweep's affected results with their names and owners; nothing is
read per host.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection

from patchpilot.db.tables import asset_context, assets, sweep_results
from patchpilot.scans.sweeps import AFFECTED, CONFIRMED, get_sweep

# The final answers that mean "affected" (the others: not affected, unknown, unreachable,
# timed out, still pending).
AFFECTED_STATUSES = (CONFIRMED, AFFECTED)


@dataclass(frozen=True, slots=True)
class OwnerHosts:
    """One owner's affected hosts in a sweep (``owner`` None: hosts nobody owns).

    ``hosts``: each ``{"asset_id", "name", "status", "packages"}``, by name; a package is
    the sweep's ``{"ecosystem", "package", "version", "fixed", "vulns", …}``."""

    owner: str | None
    hosts: tuple[dict[str, Any], ...]

    def remedies(self) -> list[dict[str, Any]]:
        """The distinct fixes these hosts need: ``{"ecosystem", "package", "fixed",
        "hosts"}`` (``fixed`` None: no fix published yet; ``hosts``: how many need it),
        by ecosystem and package."""
        count: dict[tuple[str, str, str | None], int] = defaultdict(int)
        for host in self.hosts:
            for p in {(p.get("ecosystem", ""), p.get("package", ""), p.get("fixed"))
                      for p in host["packages"]}:
                count[p] += 1
        return [{"ecosystem": e, "package": n, "fixed": f, "hosts": c}
                for (e, n, f), c in sorted(count.items(), key=lambda x: (
                    x[0][0], x[0][1], x[0][2] or ""))]


@dataclass(frozen=True, slots=True)
class SweepOwners:
    """A settled sweep as the owner tickets see it: its id, label, vulnerabilities and
    status counts, and its affected hosts by owner (owners by name, nobody's last)."""

    id: int
    label: str
    vulns: tuple[str, ...]
    counts: dict[str, int]
    owners: tuple[OwnerHosts, ...]

    def to_dict(self) -> dict[str, Any]:
        """What templates see as ``sweep``."""
        return {"id": self.id, "label": self.label, "vulns": list(self.vulns),
                "counts": dict(self.counts)}


def _owner(value: str | None) -> str | None:
    text = " ".join((value or "").split())
    return text or None


def sweep_owners(conn: Connection, sweep_id: int) -> SweepOwners | None:
    """The sweep's affected hosts grouped by owner, or None when there is no such sweep."""
    sweep = get_sweep(conn, sweep_id, results=False)
    if sweep is None:
        return None
    r, a, c = sweep_results, assets, asset_context
    rows = conn.execute(
        select(r.c.asset_id, r.c.status, r.c.detail, a.c.name, c.c.owner)
        .select_from(r.join(a, a.c.id == r.c.asset_id)
                     .outerjoin(c, c.c.asset_id == r.c.asset_id))
        .where(r.c.sweep_id == sweep_id, r.c.status.in_(AFFECTED_STATUSES))
        .order_by(a.c.name, r.c.asset_id)).all()
    grouped: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        detail = orjson.loads(row.detail or "{}")
        grouped[_owner(row.owner)].append({
            "asset_id": row.asset_id, "name": row.name, "status": row.status,
            "packages": detail.get("packages") or []})
    owners = sorted(grouped, key=lambda o: (o is None, o or ""))
    return SweepOwners(sweep.id, sweep.query.label(), sweep.vulns, dict(sweep.status),
                       tuple(OwnerHosts(o, tuple(grouped[o])) for o in owners))
