"""The sweep tests' estate: the Debian tracker's sope entry, AlmaLinux's firefox and the
PyPI pygments advisories, and seven real-shaped assets (agents, an SSH target, a partial
inventory, one never scanned), matched as the server's worker does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, insert, update

from patchpilot import worker
from patchpilot.clock import now_utc
from patchpilot.db.tables import agents, assets
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package
from patchpilot.queue import Job

FEEDS = {
    "debian/debian.json": "distro/vunnel-fixtures/debian/input/debian.json",
    "osv/ALSA-2022:0818.json": "osv/almalinux/almalinux8/ALSA-2022:0818.json",
    "osv/PYSEC-2016-32.yaml": "osv/pypi/pygments/PYSEC-2016-32.yaml",
    "osv/PYSEC-2023-117.yaml": "osv/pypi/pygments/PYSEC-2023-117.yaml",
    "cve/CVE-2024-3094.json": "nvd/cve5-critical-cvelist/CVE-2024-3094.json",
}
DEB = Ecosystem("Debian:12")
SOPE_OLD = [Package(DEB, "libsope1", "5.8.0-1", source_name="sope"),
            Package(DEB, "libsope-appserver4.9", "5.8.0-1", source_name="sope")]
SOPE_BACKPORT = [Package(DEB, "libsope1", "5.8.0-1+deb12u1", source_name="sope")]
BASH = Package(DEB, "bash", "5.2.15-2+b2")
PYGMENTS_OLD = Package(Ecosystem("PyPI"), "Pygments", "2.0.2")
PYGMENTS_NEW = Package(Ecosystem("PyPI"), "Pygments", "2.14.0")

# The re-match tests' feed update (the tracker and pygments' advisories, loaded after the
# hosts were matched without them) and their six hosts.
UPDATE_FEEDS = {
    "debian/debian.json": "distro/vunnel-fixtures/debian/input/debian.json",
    "osv/PYSEC-2016-32.yaml": "osv/pypi/pygments/PYSEC-2016-32.yaml",
    "osv/PYSEC-2023-117.yaml": "osv/pypi/pygments/PYSEC-2023-117.yaml",
}
REMATCH_HOSTS = {
    "deb-old-1": (*SOPE_OLD, BASH),
    "deb-old-2": (*SOPE_OLD, BASH),
    "deb-backport": (*SOPE_BACKPORT, BASH),
    "py-old": (PYGMENTS_OLD,),
    "py-new-1": (PYGMENTS_NEW,),
    "py-new-2": (PYGMENTS_NEW, BASH),
}


def inventory(host: str, *packages: Package, complete: bool = True) -> Inventory:
    """A real-shaped inventory of ``host``."""
    return Inventory.from_packages(list(packages), complete=complete,
                                   asset=AssetIdentity(hostname=host),
                                   collector=Collector(name="agent"))


def match(engine: Engine, inv: Inventory) -> int:
    """Ingest and run the match job, as the server's worker does; the asset id."""
    stored = ingest_inventory(engine, inv)
    job = Job(0, "match", {"inventory_id": stored.inventory_id}, 1, None, None, None, None)
    worker.HANDLERS["match"](engine, job)
    return stored.asset_id


def sweep_estate(engine: Engine, feed_dir: Callable[..., Path]) -> dict[str, int]:
    """The knowledge base and seven assets: name -> asset id (two with an agent, one an
    SSH target, one never scanned, one whose inventory is partial)."""
    assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
    ids = {
        "deb-old": match(engine, inventory("deb-old", *SOPE_OLD, BASH)),
        "deb-backport": match(engine, inventory("deb-backport", *SOPE_BACKPORT, BASH)),
        "deb-none": match(engine, inventory("deb-none", BASH)),
        "partial": match(engine, inventory("partial", BASH, complete=False)),
        "py-old": match(engine, inventory("py-old", PYGMENTS_OLD)),
        "py-new": match(engine, inventory("py-new", PYGMENTS_NEW)),
    }
    now = now_utc()
    with engine.begin() as conn:
        ids["never-seen"] = int(conn.execute(insert(assets).values(
            name="never-seen", first_seen=now, last_seen=now, tags="[]", attributes="{}")
            .returning(assets.c.id)).scalar_one())
        for n, host in enumerate(("deb-old", "deb-backport")):
            conn.execute(insert(agents).values(asset_id=ids[host], name=host,
                                               credential_hash=f"{n:064d}", enrolled_at=now))
        conn.execute(update(assets).where(assets.c.id == ids["deb-none"])
                     .values(ssh_target="root@deb-none.plant1:22"))
    return ids
