"""The estate's side of coverage: how many packages of each ecosystem every asset has.

``asset_ecosystems`` holds one row per (asset, ecosystem) of the asset's latest
inventory, written by the ingest in the transaction that replaces its ``asset_packages``
(:func:`record_asset_ecosystems`).  The overview then adds up at most a few rows per asset
-- 10,000 assets are some 30,000 rows, read by one ``GROUP BY ecosystem`` -- instead of
counting the millions of package rows, and joins them with the knowledge base's counts
(``knowledge.coverage``) to say which ecosystems no advisory covers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, literal, or_, select
from sqlalchemy.engine import Connection

from patchpilot.db.dialect import bulk_insert
from patchpilot.db.tables import asset_ecosystems
from patchpilot.knowledge.coverage import EcosystemCoverage, advisories_loaded, judge

_CHUNK = 5000  # asset ids per IN list (both databases cap bound parameters)


def record_asset_ecosystems(conn: Connection, asset_id: int,
                            packages: Mapping[str, int]) -> None:
    """Make the asset's rows say ``packages`` (its package count per ecosystem)."""
    conn.execute(delete(asset_ecosystems).where(asset_ecosystems.c.asset_id == asset_id))
    bulk_insert(conn, asset_ecosystems, ("asset_id", "ecosystem", "packages"),
                [(asset_id, eco, n) for eco, n in sorted(packages.items()) if n])


def _scope(ids: list[int] | None) -> Any:
    column = asset_ecosystems.c.asset_id
    if ids is None:
        return literal(True)
    if not ids:
        return literal(False)
    return or_(*(column.in_(ids[i:i + _CHUNK]) for i in range(0, len(ids), _CHUNK)))


def estate_coverage(conn: Connection, asset_ids: list[int] | None = None
                    ) -> list[EcosystemCoverage]:
    """Per ecosystem of the estate (or of ``asset_ids``): its packages, the assets that
    have them and the advisories loaded -- not covered first (``knowledge.coverage.judge``)."""
    ae = asset_ecosystems
    packages: dict[str, int] = {}
    assets: dict[str, int] = {}
    for eco, n, hosts in conn.execute(
            select(ae.c.ecosystem, func.sum(ae.c.packages), func.count())
            .where(_scope(asset_ids)).group_by(ae.c.ecosystem)):
        packages[str(eco)] = int(n)
        assets[str(eco)] = int(hosts)
    return judge(packages, advisories_loaded(conn, packages), assets)


def asset_coverage(conn: Connection, asset_id: int) -> list[EcosystemCoverage]:
    """The coverage of one asset's latest inventory, not covered first."""
    ae = asset_ecosystems
    packages = {str(e): int(n) for e, n in conn.execute(
        select(ae.c.ecosystem, ae.c.packages).where(ae.c.asset_id == asset_id))}
    return judge(packages, advisories_loaded(conn, packages))
