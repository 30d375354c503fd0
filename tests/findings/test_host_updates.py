"""Findings from the host's pending security updates, merged with the knowledge base's.

The knowledge base is built from real files in ../shared/data: AlmaLinux's ALSA-2022:0818
(firefox) but *not* ALSA-2022:0267 (polkit, CVE-2021-4034 "pwnkit") -- a feed that is
incomplete for this host -- plus CISA KEV, FIRST EPSS 2021/2022, the CVE record of
CVE-2022-26486 and Debian's tracker excerpt.  The pending updates are what dnf lists
for that AlmaLinux 8 host (tests/fixtures/dnf/) and what apt lists for a Debian 12 one.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from patchpilot.findings.host_updates import host_update_findings
from patchpilot.findings.scan import scan_inventory
from patchpilot.inventory.model import Collector, Inventory, OsInfo, PendingUpdate
from patchpilot.knowledge.update import update_from
from patchpilot.models import Ecosystem, Package
from tests.builders.dnf_hosts import FIREFOX, POLKIT, POLKIT_LIBS, alma_host

FEEDS = {
    "osv/ALSA-2022:0818.json": "osv/almalinux/almalinux8/ALSA-2022:0818.json",
    "debian/debian.json": "distro/vunnel-fixtures/debian/input/debian.json",
    "cve/CVE-2022-26486.json": "nvd/cve5-critical-cvelist/CVE-2022-26486.json",
    "kev/known_exploited_vulnerabilities.json": "kev/known_exploited_vulnerabilities.json",
    "epss/CVE_2021_EPSS.csv": "epss/CVE_2021_EPSS.csv",
    "epss/CVE_2022_EPSS.csv": "epss/CVE_2022_EPSS.csv",
}
DEB12 = Ecosystem("Debian:12")


@pytest.fixture
def kb(engine: Engine, feed_dir) -> Engine:  # type: ignore[no-untyped-def]
    results = update_from(engine, [feed_dir(FEEDS)])
    assert [r.status for r in results] == ["loaded"] * len(results), results
    return engine


def test_alma_host_gets_pwnkit_from_its_own_repositories(kb: Engine) -> None:
    result = scan_inventory(kb, alma_host(FIREFOX, POLKIT, POLKIT_LIBS, reboot_required=False))
    found = [(f.vuln_id, f.package, f.evidence.feed) for f in result.findings]
    # firefox's 10 CVEs come from the knowledge base (ALSA-2022:0818 is loaded): dnf's
    # listing of the same CVEs adds nothing.  polkit's CVE is known only to the host.
    assert len(found) == 11
    assert sum(1 for *_, feed in found if feed == "osv") == 10
    (pwnkit,) = [f for f in result.findings if f.evidence.feed == "host-repos"]
    assert (pwnkit.vuln_id, pwnkit.package, pwnkit.ecosystem) == (
        "CVE-2021-4034", "polkit", "AlmaLinux:8")
    assert pwnkit.name == "Red Hat Polkit Out-of-Bounds Read and Write Vulnerability"  # KEV
    assert pwnkit.aliases == ("ALSA-2022:0267",)
    # No CVSS vector is loaded for it: AlmaLinux's rating (Important) gives the band.
    assert (pwnkit.cvss, pwnkit.severity, pwnkit.severity_source) == (
        None, "High", "distribution")
    assert pwnkit.exploit.known_exploited is True
    assert (pwnkit.exploit.kev_date_added, pwnkit.exploit.kev_due_date) == (
        "2022-06-27", "2022-07-18")
    assert (pwnkit.exploit.epss_score, pwnkit.exploit.epss_percentile) == (0.94921, 0.99854)
    assert (pwnkit.fix.fixed_version, pwnkit.fix.command) == (
        "0.115-13.el8_5.2", "dnf upgrade polkit polkit-libs")
    assert pwnkit.workaround == "none published"
    assert pwnkit.evidence.installed_version == "0.115-12.el8"
    assert (pwnkit.evidence.advisory_id, pwnkit.evidence.affected_range,
            pwnkit.evidence.source, pwnkit.evidence.packages) == (
        "ALSA-2022:0267", "< 0.115-13.el8_5.2", "dnf updateinfo", ("polkit", "polkit-libs"))
    # Merged and sorted like the matcher's findings: the Critical firefox ones first.
    assert result.findings[0].severity == "Critical"
    assert result.counts() == {"Critical": 10, "High": 1}


def _debian_host(pending: list[PendingUpdate]) -> Inventory:
    packages = [
        Package(DEB12, "libsope-appserver4.9", "5.8.0-1", arch="amd64", source_name="sope",
                source_version="5.8.0-1"),
        Package(DEB12, "jq", "1.6-2.1+deb12u1", arch="amd64", source_name="jq",
                source_version="1.6-2.1+deb12u1"),
        Package(DEB12, "libjq1", "1.6-2.1+deb12u1", arch="amd64", source_name="jq",
                source_version="1.6-2.1+deb12u1"),
    ]
    return Inventory.from_packages(
        packages, os=OsInfo(id="debian", version_id="12", codename="bookworm"),
        pending_updates=pending, collector=Collector(name="local"))


def _apt(package: str, source: str, installed: str, candidate: str,
         cves: tuple[str, ...] = ()) -> PendingUpdate:
    return PendingUpdate(package=package, source_name=source, arch="amd64",
                         installed_version=installed, candidate_version=candidate,
                         repository="bookworm-security", cve_ids=list(cves))


def test_debian_updates_without_cves(kb: Engine) -> None:
    """apt offline: updates are known, their CVEs are not."""
    inventory = _debian_host([
        _apt("libsope-appserver4.9", "sope", "5.8.0-1", "5.8.0-1+deb12u1"),
        _apt("jq", "jq", "1.6-2.1+deb12u1", "1.6-2.1+deb12u3"),
        _apt("libjq1", "jq", "1.6-2.1+deb12u1", "1.6-2.1+deb12u3"),
    ])
    result = scan_inventory(kb, inventory)
    # sope's update is the fix of the tracker's CVE-2025-53603 finding: not repeated.
    assert [(f.vuln_id, f.package, f.evidence.feed) for f in result.findings] == [
        ("CVE-2025-53603", "sope", "debian-tracker"),
        ("PENDING-jq-1.6-2.1+deb12u3", "jq", "host-repos"),
    ]
    jq = result.findings[1]
    assert jq.name == "Security update available: jq 1.6-2.1+deb12u3"
    assert jq.summary == ("bookworm-security offers jq 1.6-2.1+deb12u3 "
                          "(installed 1.6-2.1+deb12u1).")
    assert (jq.severity, jq.severity_source, jq.cvss, jq.aliases) == (
        "Unknown", "none", None, ())
    assert (jq.fix.fixed_version, jq.fix.command) == (
        "1.6-2.1+deb12u3", "apt-get install --only-upgrade jq libjq1")
    assert (jq.evidence.advisory_id, jq.evidence.source, jq.evidence.packages) == (
        "PENDING-jq-1.6-2.1+deb12u3", "bookworm-security", ("jq", "libjq1"))


def test_debian_updates_with_changelog_cves(kb: Engine) -> None:
    """With the candidates' changelogs: one finding per (CVE, source package)."""
    inventory = _debian_host([
        _apt("libsope-appserver4.9", "sope", "5.8.0-1", "5.8.0-1+deb12u1",
             ("CVE-2025-53603",)),
        _apt("jq", "jq", "1.6-2.1+deb12u1", "1.6-2.1+deb12u3",
             ("CVE-2024-23337", "CVE-2025-48060")),
        _apt("libjq1", "jq", "1.6-2.1+deb12u1", "1.6-2.1+deb12u3",
             ("CVE-2024-23337", "CVE-2025-48060")),
    ])
    kb_findings = scan_inventory(kb, _debian_host([])).findings
    with kb.connect() as conn:
        extra = host_update_findings(conn, inventory, kb_findings)
        assert host_update_findings(conn, _debian_host([]), kb_findings) == []
    # CVE-2025-53603 in sope is the tracker's finding already: only jq's two are added.
    assert [(f.vuln_id, f.package, f.evidence.packages) for f in extra] == [
        ("CVE-2024-23337", "jq", ("jq", "libjq1")),
        ("CVE-2025-48060", "jq", ("jq", "libjq1")),
    ]
    first = extra[0]
    assert first.name == "Security update available: jq 1.6-2.1+deb12u3"
    assert first.summary == ("bookworm-security offers jq 1.6-2.1+deb12u3 (installed "
                             "1.6-2.1+deb12u1), which fixes CVE-2024-23337.")
    assert first.cve == "CVE-2024-23337"
    assert first.exploit.known_exploited is False
