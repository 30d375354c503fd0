"""Language packages an OS package owns are judged through it, not by upstream advisories.

This Debian 12 machine, collected for real: ``cryptography 38.0.4`` in
/usr/lib/python3/dist-packages belongs to ``python3-cryptography 38.0.4-3+deb12u1``, whose
changelog names CVE-2023-49083 and CVE-2023-23931 as fixed; ``pip 23.0.1`` there belongs
to ``python3-pip``, whose changelog does not name CVE-2023-5752.  The knowledge base: the
real PyPI OSV advisories of those CVEs, and (for the "feed loaded" case) Debian's tracker
excerpt, which gives Debian:12 advisories but none for python-cryptography or pip.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Engine

from patchpilot.findings.commands import upgrade_command
from patchpilot.findings.owned import CHANGELOG, DISTRIBUTION, judge_owned
from patchpilot.findings.scan import scan_inventory
from patchpilot.inventory.collect import CollectOptions, collect
from patchpilot.inventory.model import Collector, Inventory
from patchpilot.inventory.transports.local import LocalHost
from patchpilot.knowledge.matcher import ecosystems_with_advisories, match_packages
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package, PackageOwner
from patchpilot.reports.scan import FORMATS

DIST = "/usr/lib/python3/dist-packages"
PYPI_FEEDS = {
    "osv/PYSEC-2023-254.yaml": "osv/pypi/cryptography/PYSEC-2023-254.yaml",  # CVE-2023-49083
    "osv/PYSEC-2023-11.yaml": "osv/pypi/cryptography/PYSEC-2023-11.yaml",  # CVE-2023-23931
    "osv/PYSEC-2023-228.yaml": "osv/pypi/pip/PYSEC-2023-228.yaml",  # CVE-2023-5752
}
DEBIAN_FEED = {"debian/debian.json": "distro/vunnel-fixtures/debian/input/debian.json"}
CRYPTO_CVES = {"CVE-2023-49083", "CVE-2023-23931"}
OWNER = PackageOwner("python3-cryptography", "38.0.4-3+deb12u1")

pytestmark = pytest.mark.skipif(
    not Path("/var/lib/dpkg/info/python3-cryptography.list").exists()
    or not Path(f"{DIST}/cryptography-38.0.4.dist-info").is_dir(),
    reason="this machine has no Debian python3-cryptography 38.0.4")


@pytest.fixture(scope="module")
def this_machine() -> Inventory:
    """This machine, collected once through the local host protocol."""
    return asyncio.run(collect(LocalHost(), CollectOptions()))


def _load(engine: Engine, feed_dir, files: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    results = update_from(engine, [feed_dir(files)])
    assert [r.status for r in results] == ["loaded"] * len(results), results


def test_changelog_backports_are_not_reported(engine: Engine, feed_dir,  # type: ignore[no-untyped-def]
                                              this_machine: Inventory) -> None:
    """No Debian feed loaded: the owner's changelog is the evidence.  CVE-2023-49083 and
    CVE-2023-23931 on Debian's cryptography are set aside, saying why; pip's
    CVE-2023-5752 (not in python3-pip's changelog) is still reported, naming its owner."""
    _load(engine, feed_dir, PYPI_FEEDS)
    assert ecosystems_with_advisories(engine.connect(), ["Debian:12", "PyPI"]) == {"PyPI"}
    result = scan_inventory(engine, this_machine)
    owned_crypto = [p for p in this_machine.to_packages()
                    if p.name == "cryptography" and p.location == DIST]
    assert [p.owner for p in owned_crypto] == [OWNER]
    # Any other copy of cryptography 38.0.4 on this machine is nobody's and stays reported.
    others = {p.location for p in this_machine.to_packages()
              if p.name == "cryptography" and p.version == "38.0.4" and p.owner is None}
    crypto_findings = [f for f in result.findings if f.package == "cryptography"
                       and any(i.installed_version == "38.0.4" for i in f.installations)]
    assert bool(crypto_findings) == bool(others)
    # The owned copy is no finding's installation.
    assert not any(i.location == DIST for f in result.findings
                   if f.package == "cryptography" for i in f.installations)
    assert all(f.evidence.owners == () for f in crypto_findings)
    aside = {(s.vuln_id, s.package): s for s in result.set_aside}
    assert set(aside) == {(cve, "cryptography") for cve in CRYPTO_CVES}
    s = aside[("CVE-2023-49083", "cryptography")]
    assert (s.owner, s.reason, s.locations, s.version, s.advisory_id, s.distribution) == (
        OWNER, CHANGELOG, (DIST,), "38.0.4", "PYSEC-2023-254", "Debian:12")
    assert s.explanation == (
        "owned by python3-cryptography 38.0.4-3+deb12u1, whose changelog names "
        "CVE-2023-49083 as fixed (backported; PYSEC-2023-254 judges the upstream "
        "version only)")
    # One finding lists every vulnerable pip (issue 12 §2), Debian's among them.
    pip = [f for f in result.findings if f.vuln_id == "CVE-2023-5752"
           and any(i.location == DIST and i.installed_version == "23.0.1"
                   for i in f.installations)]
    assert len(pip) == 1
    python3_pip = next(p for p in this_machine.to_packages() if p.name == "python3-pip")
    assert f"python3-pip {python3_pip.version}" in pip[0].evidence.owners
    # The scan's outputs say it too.
    assert ("not reported: CVE-2023-49083 on cryptography 38.0.4 (/usr/lib/python3/"
            "dist-packages): owned by python3-cryptography 38.0.4-3+deb12u1, whose "
            "changelog names CVE-2023-49083 as fixed") in FORMATS["table"](result)
    assert '"reason": "changelog"' in FORMATS["json"](result)
    assert '"justification": "owned by python3-cryptography' in FORMATS["sarif"](result)


def test_distribution_feed_loaded_judges_the_owner(engine: Engine, feed_dir,  # type: ignore[no-untyped-def]
                                                   this_machine: Inventory) -> None:
    """Debian:12 advisories loaded: every upstream match on an owned copy is set aside --
    pip's CVE-2023-5752 on Debian's pip included -- and the OS package is left to the
    distribution's data."""
    _load(engine, feed_dir, {**PYPI_FEEDS, **DEBIAN_FEED})
    assert ecosystems_with_advisories(engine.connect(), ["Debian:12"]) == {"Debian:12"}
    result = scan_inventory(engine, this_machine)
    aside = {(s.vuln_id, s.package, s.version): s for s in result.set_aside}
    assert {k for k in aside if k[1] == "cryptography"} == {
        (cve, "cryptography", "38.0.4") for cve in CRYPTO_CVES}
    assert ("CVE-2023-5752", "pip", "23.0.1") in aside
    # The changelog, the more specific evidence, is named where it speaks.
    assert {(k[0], s.reason) for k, s in aside.items() if k[1] in ("cryptography", "pip")} == {
        ("CVE-2023-49083", CHANGELOG), ("CVE-2023-23931", CHANGELOG),
        ("CVE-2023-5752", DISTRIBUTION)}
    assert aside[("CVE-2023-5752", "pip", "23.0.1")].explanation.endswith(
        ": judged by the Debian:12 feed, not by the upstream advisory PYSEC-2023-228")
    assert all(owner == () for owner in (f.evidence.owners for f in result.findings))


def test_unowned_copy_of_the_same_version_is_still_reported(  # type: ignore[no-untyped-def]
        engine: Engine, feed_dir) -> None:
    """One match covers both copies of cryptography 38.0.4: only Debian's is set aside;
    the virtualenv's keeps the finding, its evidence naming no owner."""
    _load(engine, feed_dir, PYPI_FEEDS)
    pypi = Ecosystem("PyPI")
    venv = "/srv/app/.venv/lib/python3.11/site-packages"
    packages = [
        Package(pypi, "cryptography", "38.0.4", location=DIST, owner=OWNER),
        Package(pypi, "cryptography", "38.0.4", location=venv),
        Package(Ecosystem("Debian:12"), "python3-cryptography", "38.0.4-3+deb12u1",
                source_name="python-cryptography", source_version="38.0.4-3+deb12u1"),
    ]
    with engine.connect() as conn:
        matches = match_packages(conn, packages).matches
        kept, aside = judge_owned(conn, matches, "Debian:12",
                                  {"python3-cryptography": sorted(CRYPTO_CVES)})
    assert sorted(m.vuln_id for m in kept) == sorted(CRYPTO_CVES)
    assert all([p.location for p in m.packages] == [venv] for m in kept)
    assert sorted((s.vuln_id, s.reason) for s in aside) == [
        ("CVE-2023-23931", CHANGELOG), ("CVE-2023-49083", CHANGELOG)]
    inventory = Inventory.from_packages(packages, collector=Collector(name="test"),
                                        changelog_cves={"python3-cryptography":
                                                        ["CVE-2023-49083"]})
    result = scan_inventory(engine, inventory)
    # CVE-2023-23931 is not in this (shortened) changelog: Debian's copy is reported too.
    by_cve = {f.vuln_id: f for f in result.findings}
    assert by_cve["CVE-2023-23931"].evidence.owners == (
        "python3-cryptography 38.0.4-3+deb12u1",)
    assert by_cve["CVE-2023-49083"].evidence.owners == ()
    assert [(s.vuln_id, s.locations) for s in result.set_aside] == [
        ("CVE-2023-49083", (DIST,))]


def test_owned_copy_is_upgraded_through_its_os_package() -> None:
    """pip would overwrite dpkg's files: the command names the OS package instead; a
    virtualenv's copy beside it keeps pip's command."""
    pypi = Ecosystem("PyPI")
    debian_pip = Package(pypi, "pip", "23.0.1", location=DIST,
                         owner=PackageOwner("python3-pip", "23.0.1+dfsg-1"))
    assert upgrade_command("PyPI", [debian_pip], "23.3") == (
        "upgrade the OS package python3-pip when the distribution ships a fix (not with "
        "the language's own package manager)")
    venv_pip = Package(pypi, "pip", "23.0.1", location="/srv/app/.venv/lib/python3.11")
    assert upgrade_command("PyPI", [debian_pip, venv_pip], "23.3") == (
        "pip install --upgrade 'pip>=23.3'")
