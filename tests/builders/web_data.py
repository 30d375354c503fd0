"""A loaded database for the page tests: real advisories, real inventories, users."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select, update

from patchpilot import worker
from patchpilot.assets.groups import add_members, group_id_named
from patchpilot.clock import now_utc
from patchpilot.db.tables import assets, inventories
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory, OsInfo
from patchpilot.inventory.sources.dpkg import parse_dpkg_status
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package
from patchpilot.queue import Job
from patchpilot.scans.groups import add_ssh_target

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
# Files the upload tests send (../shared/data/inventories): a poetry.lock with findings.
INV = "inventories"
POETRY_LOCK = f"{INV}/poetry-lock/syft__python__poetry__conflicting-with-extras__poetry.lock"


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


# --- more of the estate, for the plan, schedules and asset-filter pages -----------------
# (tests/server/web/test_pages_more.py; the pages above keep the two hosts alone.)

# plant1-app-07 runs the same old firefox on AlmaLinux 8; plant3-ci is a Debian 12 build
# host with this build machine's own package list (no Debian feed is loaded: no finding).
DEBIAN_STATUS = "inventories/debian12-dpkg-status"
MORE_HOSTS = {
    "plant1-app-07": OsInfo(id="almalinux", version_id="8.9",
                            pretty_name="AlmaLinux 8.9 (Midnight Oncilla)"),
    "plant3-ci": OsInfo(id="debian", version_id="12", codename="bookworm",
                        pretty_name="Debian GNU/Linux 12 (bookworm)"),
}
ADMINS = {"kato": ("admin", "kato-admin-pw")}
# Static members of the asset groups (`patchpilot group create` has no member option).
GROUP_MEMBERS = {"plant1": ("plant1-app-07", "plant1-build-02"),
                 "plant2": ("plant2-ws-11",), "plant3": ("plant3-ci",)}
# A plant's controllers without an agent, added as SSH targets and not scanned yet: more
# assets than one page of the asset list holds.
PLCS = [f"plant4-plc-{n:02d}" for n in range(1, 53)]


def load_more(engine: Engine, shared_data: Path) -> None:
    """The two hosts of MORE_HOSTS, ingested and matched as a worker would."""
    debian = parse_dpkg_status((shared_data / DEBIAN_STATUS).read_text(), "Debian:12",
                               DEBIAN_STATUS)
    packages = {"plant1-app-07": [OLD_FIREFOX], "plant3-ci": debian}
    for n, (host, os_info) in enumerate(MORE_HOSTS.items()):
        inv = Inventory.from_packages(packages[host], complete=True, os=os_info,
                                      asset=AssetIdentity(hostname=host,
                                                          machine_id=f"7a31d5c0{n}"),
                                      collector=Collector(name="agent"))
        result = ingest_inventory(engine, inv)
        worker.HANDLERS["match"](engine, Job(0, "match", {"inventory_id": result.inventory_id},
                                             1, None, None, None, None))


def add_group_members(engine: Engine, members: dict[str, tuple[str, ...]]) -> None:
    """Put the named assets in the named (existing) groups."""
    with engine.begin() as conn:
        for group, names in members.items():
            ids = list(conn.execute(select(assets.c.id).where(assets.c.name.in_(names)))
                       .scalars())
            assert len(ids) == len(names), (group, names)
            add_members(conn, "test", group_id_named(conn, group), ids)


def add_plcs(engine: Engine, group: str) -> None:
    """PLCS as SSH targets in ``group`` (never scanned: no inventory)."""
    with engine.begin() as conn:
        group_id = group_id_named(conn, group)
        for name in PLCS:
            add_ssh_target(conn, "test", f"scan@{name}.plant4.example.jp", group_id=group_id,
                           name=name)


def last_scanned_days_ago(engine: Engine, host: str, days: int) -> None:
    """Make ``host``'s last scan ``days`` old, as if its agent had stopped reporting then."""
    moment = now_utc() - timedelta(days=days)
    with engine.begin() as conn:
        asset = conn.execute(select(assets.c.id, assets.c.last_inventory_id)
                             .where(assets.c.name == host)).one()
        conn.execute(update(assets).where(assets.c.id == asset.id).values(last_seen=moment))
        conn.execute(update(inventories).where(inventories.c.id == asset.last_inventory_id)
                     .values(collected_at=moment, received_at=moment))
