"""A loaded database for the page tests: real advisories, real inventories, users."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import Engine

from patchpilot.findings.lifecycle import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package
from patchpilot.scans import worker
from patchpilot.scans.jobs import Job

# ALSA-2022:0818 fixes ten firefox CVEs on AlmaLinux 8; PYSEC-2023-117 one in Pygments.
FEEDS = {
    "osv/ALSA-2022:0818.json": "osv/almalinux/almalinux8/ALSA-2022:0818.json",
    "osv/PYSEC-2023-117.yaml": "osv/pypi/pygments/PYSEC-2023-117.yaml",
}
OLD_FIREFOX = Package(Ecosystem("AlmaLinux:8"), "firefox", "91.6.0-1.el8_5.alma")
OLD_PYGMENTS = Package(Ecosystem("PyPI"), "Pygments", "2.14.0")
# Two hosts: one with both, one with Pygments only.
HOSTS = {"plant2-ws-11": (OLD_FIREFOX, OLD_PYGMENTS), "plant1-build-02": (OLD_PYGMENTS,)}
PASSWORDS = {"sato": ("analyst", "sato-analyst-pw"), "mori": ("viewer", "mori-viewer-pw")}


def load(engine: Engine, shared_data: Path, feeds: Path) -> None:
    """Advisories, then each host's inventory ingested and matched (as a worker would)."""
    for dest, src in FEEDS.items():
        target = feeds / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_data / src, target)
    assert {r.status for r in update_from(engine, [feeds])} == {"loaded"}
    for n, (host, packages) in enumerate(HOSTS.items()):
        inv = Inventory.from_packages(list(packages), complete=True,
                                      asset=AssetIdentity(hostname=host,
                                                          machine_id=f"4f0c2a9e{n}"),
                                      collector=Collector(name="agent"))
        result = ingest_inventory(engine, inv)
        worker.HANDLERS["match"](engine, Job(0, "match", {"inventory_id": result.inventory_id},
                                             1, None, None, None, None))
