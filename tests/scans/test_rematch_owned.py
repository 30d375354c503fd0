"""Re-matching after a feed update judges OS-owned language packages as the first match
did: the owner recorded in ``asset_packages.installed``, the owner's changelog CVEs read
from the stored inventory, the distribution's feed asked for the asset's release."""

from __future__ import annotations

import orjson
from sqlalchemy import Engine, select

from patchpilot.db.tables import asset_packages, findings
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package, PackageOwner
from patchpilot.pipeline import process_inventory
from patchpilot.scans import rematch
from patchpilot.scans.sweeps import SweepQuery, start_sweep

DIST = "/usr/lib/python3/dist-packages"
PYPI_FEEDS = {
    "osv/PYSEC-2023-254.yaml": "osv/pypi/cryptography/PYSEC-2023-254.yaml",  # CVE-2023-49083
    "osv/PYSEC-2023-11.yaml": "osv/pypi/cryptography/PYSEC-2023-11.yaml",  # CVE-2023-23931
}
DEBIAN_FEED = {"debian/debian.json": "distro/vunnel-fixtures/debian/input/debian.json"}
OWNER = PackageOwner("python3-cryptography", "38.0.4-3+deb12u1")


def _debian_host() -> Inventory:
    """Debian 12 with Debian's cryptography, whose (shortened) changelog names only
    CVE-2023-49083: CVE-2023-23931 stays reported, naming the owner."""
    debian = Ecosystem("Debian:12")
    return Inventory.from_packages(
        [Package(debian, "python3-cryptography", OWNER.version,
                 source_name="python-cryptography", source_version=OWNER.version),
         Package(debian, "bash", "5.2.15-2+b2", source_name="bash",
                 source_version="5.2.15-2"),
         Package(Ecosystem("PyPI"), "cryptography", "38.0.4", location=DIST, owner=OWNER)],
        asset=AssetIdentity(hostname="deb-owned"), collector=Collector(name="test"),
        changelog_cves={"python3-cryptography": ["CVE-2023-49083"]})


def _open(engine: Engine) -> dict[str, tuple[str, ...]]:
    with engine.connect() as conn:
        return {r.vuln_id: tuple(orjson.loads(r.data)["evidence"]["owners"])
                for r in conn.execute(select(findings.c.vuln_id, findings.c.data)
                                      .where(findings.c.state == "open",
                                             findings.c.package == "cryptography"))}


def test_rematch_keeps_the_owned_judgement(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    update_from(engine, [feed_dir(PYPI_FEEDS, "pypi")])
    stored = ingest_inventory(engine, _debian_host())
    with engine.connect() as conn:
        [installed] = conn.execute(select(asset_packages.c.installed).where(
            asset_packages.c.name == "cryptography")).scalars()
    # [name, version, arch, location, owner, owner's version] (findings.owned.installed_entry)
    assert orjson.loads(installed) == [
        ["cryptography", "38.0.4", None, DIST, "python3-cryptography", "38.0.4-3+deb12u1"]]
    process_inventory(engine, stored.inventory_id)
    expected = {"CVE-2023-23931": ("python3-cryptography 38.0.4-3+deb12u1",)}
    assert _open(engine) == expected
    # A feed update re-matches the stored rows: the same verdicts, nothing reopened.
    rematch.rematch_all(engine)
    assert _open(engine) == expected
    # Debian's feed arrives: the owner is judged by it, the upstream finding is fixed.
    update_from(engine, [feed_dir(DEBIAN_FEED, "debian")])
    done = rematch.rematch_all(engine)
    assert _open(engine) == {}
    assert done.fixed == 1


def test_sweep_judges_owned_copies_as_a_scan_does(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    """"Is CVE-2023-49083 anywhere?": not on Debian's copy (its changelog names the fix);
    CVE-2023-23931 is (the shortened changelog does not)."""
    update_from(engine, [feed_dir(PYPI_FEEDS, "pypi")])
    asset_id = ingest_inventory(engine, _debian_host()).asset_id
    named = start_sweep(engine, SweepQuery(vuln="CVE-2023-49083"), created_by="sato")
    [result] = [r for r in named.results if r.asset_id == asset_id]
    assert (result.initial, result.packages) == ("not_affected", [])
    silent = start_sweep(engine, SweepQuery(vuln="CVE-2023-23931"), created_by="sato")
    [result] = [r for r in silent.results if r.asset_id == asset_id]
    assert result.initial == "affected"
    assert [(p["package"], p["vulns"], p["installed"]) for p in result.packages] == [
        ("cryptography", ["CVE-2023-23931"], ["cryptography"])]
