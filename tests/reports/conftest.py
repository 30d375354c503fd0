"""A small real estate for the report tests: real advisories (AlmaLinux, PyPI), the real
CISA KEV catalogue, four hosts' inventories ingested and matched, CMDB context, a group."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, insert

from patchpilot.clock import now_utc
from patchpilot.db.tables import asset_context
from patchpilot.findings.lifecycle import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package
from patchpilot.scans import worker
from patchpilot.scans.groups import add_members, create_group
from patchpilot.scans.jobs import Job

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


def _context(engine: Engine, asset_id: int, tier: int, exposure: str, env: str,
             service: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(asset_context).values(
            asset_id=asset_id, criticality=tier, exposure=exposure, environment=env,
            service=service, source="cmdb-import", updated_at=now_utc()))


@pytest.fixture
def estate(engine: Engine, feed_dir) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """plant1 (two web servers, web shop), a development box, and a patched workstation
    whose firefox findings were fixed by a later scan."""
    assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
    hosts = {
        "plant1-web-01": (OLD_FIREFOX, OLD_KERNEL, OLD_PYGMENTS),
        "plant1-web-02": (OLD_FIREFOX, OLD_KERNEL),
        "plant2-dev-07": (OLD_FIREFOX, AJENTI),
        "plant2-ws-11": (OLD_FIREFOX,),
    }
    ids = {name: scan(engine, name, *pkgs) for name, pkgs in hosts.items()}
    scan(engine, "plant2-ws-11", NEW_FIREFOX)  # patched: its firefox findings are fixed
    _context(engine, ids["plant1-web-01"], 1, "internet-facing", "production", "web shop")
    _context(engine, ids["plant1-web-02"], 2, "internal", "production", "web shop")
    _context(engine, ids["plant2-dev-07"], 4, "isolated", "development", "lab")
    with engine.begin() as conn:
        plant1 = create_group(conn, "sato", "plant1")
        add_members(conn, "sato", plant1, [ids["plant1-web-01"], ids["plant1-web-02"]])
    worker.HANDLERS["prioritise"](engine, Job(0, "prioritise", {}, 1, None, None, None, None))
    return ids


