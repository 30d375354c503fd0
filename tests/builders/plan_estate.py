"""The patch plan's estate: real AlmaLinux 8 and PyPI advisories with the CISA KEV
catalogue, hosts' inventories ingested and matched as the server's worker does, and their
CMDB context.  The plan, report and summary tests build on it."""

from __future__ import annotations

from sqlalchemy import Engine, insert

from patchpilot import worker
from patchpilot.clock import now_utc
from patchpilot.db.tables import asset_context
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.models import Ecosystem, Package
from patchpilot.queue import Job

FEEDS = {
    "osv/ALSA-2022:0818.json": "osv/almalinux/almalinux8/ALSA-2022:0818.json",
    "osv/ALSA-2022:1988.json": "osv/almalinux/almalinux8/ALSA-2022:1988.json",
    "osv/PYSEC-2023-117.yaml": "osv/pypi/pygments/PYSEC-2023-117.yaml",
    "osv/PYSEC-2018-109.yaml": "osv/pypi/ajenti-panel/PYSEC-2018-109.yaml",
    "kev/known_exploited_vulnerabilities.json": "kev/known_exploited_vulnerabilities.json",
}
ALMA = Ecosystem("AlmaLinux:8")
OLD_FIREFOX = Package(ALMA, "firefox", "91.6.0-1.el8_5.alma", "x86_64")
NEW_FIREFOX = Package(ALMA, "firefox", "91.7.0-3.el8_5.alma", "x86_64")
OLD_KERNEL = Package(ALMA, "kernel", "4.18.0-348.el8", "x86_64")
OLD_PYGMENTS = Package(Ecosystem("PyPI"), "Pygments", "2.14.0")
AJENTI = Package(Ecosystem("PyPI"), "ajenti-panel", "0.10")


def scan(engine: Engine, host: str, *packages: Package) -> int:
    """Ingest a host's inventory and run its match job (which prioritises it)."""
    inv = Inventory.from_packages(list(packages), complete=True,
                                  asset=AssetIdentity(hostname=host, machine_id=host),
                                  collector=Collector(name="agent"))
    result = ingest_inventory(engine, inv)
    job = Job(0, "match", {"inventory_id": result.inventory_id}, 1, None, None, None, None)
    return int(worker.HANDLERS["match"](engine, job)["asset_id"])


def context(engine: Engine, asset_id: int, tier: int, exposure: str, env: str,
            service: str = "web shop") -> None:
    """Give an asset its CMDB context (tier, exposure, environment, service)."""
    with engine.begin() as conn:
        conn.execute(insert(asset_context).values(
            asset_id=asset_id, criticality=tier, exposure=exposure, environment=env,
            service=service, source="cmdb-import", updated_at=now_utc()))
