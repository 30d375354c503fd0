"""Findings from the host's own repositories: the security updates its package manager has
pending (``Inventory.pending_updates``), so a host is covered where the feeds are not.

Each update becomes findings of the same shape as the matcher's:

* one per (CVE, package) when the repository said which CVEs the update fixes (dnf's
  updateinfo, the candidate's Debian changelog), enriched like a match: CVSS, KEV, EPSS,
  CWEs and references from the knowledge base's CVE records;
* else one per update, with the advisory id (ALSA-…, RHSA-…) as its id when known, or
  ``PENDING-<package>-<candidate>``, named "Security update available: …".

``package`` is the source package where the host knows it, as the matcher's findings use
it, so the binaries of one source (libssl3, libssl-dev, openssl) make one finding whose
evidence lists them; ``evidence.feed`` is ``host-repos`` and ``evidence.source`` the
repository (``bookworm-security``, ``dnf updateinfo``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from patchpilot.errors import VersionError
from patchpilot.findings import phrases
from patchpilot.findings.build import (
    About,
    distribution_band,
    vulnerability_facts,
)
from patchpilot.findings.commands import upgrade_command
from patchpilot.findings.model import Evidence, Exploit, Finding, Fix
from patchpilot.inventory.model import Inventory, PendingUpdate
from patchpilot.knowledge.cvss import preferred_metric
from patchpilot.knowledge.ecosystems import ecosystem_for_os
from patchpilot.knowledge.versions import version_key
from patchpilot.models import Ecosystem, Package

FEED = "host-repos"


@dataclass(frozen=True, slots=True)
class _Group:
    """The pending updates of one package (source) that one finding stands for."""

    vuln_id: str
    package: str
    advisory_id: str | None
    updates: tuple[PendingUpdate, ...]


def _name(update: PendingUpdate) -> str:
    return update.source_name or update.package


def _ecosystem(inventory: Inventory) -> Ecosystem | None:
    """The ecosystem of the host's OS packages (the release the updates belong to)."""
    if inventory.os is not None:
        found = ecosystem_for_os(inventory.os.to_os_release())
        if found is not None:
            return found
    names = {u.package for u in inventory.pending_updates}
    return next((Ecosystem(p.ecosystem) for p in inventory.packages if p.name in names), None)


def _newest(ecosystem: str, versions: Iterable[str]) -> str:
    """The highest of ``versions`` in the ecosystem's order (the first when unreadable)."""
    listed = list(versions)
    try:
        return max(listed, key=lambda v: version_key(ecosystem, v))
    except VersionError:
        return listed[0]


def _groups(updates: Sequence[PendingUpdate]) -> list[_Group]:
    """Updates gathered per (CVE, package), or per (advisory/candidate, package) without
    CVEs; in a stable order."""
    by_key: dict[tuple[str, str], list[PendingUpdate]] = {}
    advisory: dict[tuple[str, str], str | None] = {}
    for u in updates:
        if u.cve_ids:
            for cve in u.cve_ids:
                key = (cve, _name(u))
                by_key.setdefault(key, []).append(u)
                advisory.setdefault(key, u.advisory_id)
        else:
            vuln = u.advisory_id or f"PENDING-{_name(u)}-{u.candidate_version}"
            key = (vuln, _name(u))
            by_key.setdefault(key, []).append(u)
            advisory.setdefault(key, u.advisory_id)
    return [_Group(vuln, package, advisory[(vuln, package)], tuple(group))
            for (vuln, package), group in sorted(by_key.items())]


def _covered(existing: Sequence[Finding]) -> set[tuple[str, str]]:
    """(vulnerability, package) pairs the knowledge base already reports, by every name
    the package goes by (the source the advisory names and the installed binaries)."""
    covered: set[tuple[str, str]] = set()
    for f in existing:
        # Aliases too: a pending update known only by its advisory id (ALSA-2022:0818)
        # is the same as a finding the knowledge base reports through that advisory.
        for vuln in {f.vuln_id, *f.aliases}:
            covered.add((vuln, f.package))
            covered.update((vuln, p) for p in f.evidence.packages)
    return covered


def _fixed_by(ecosystem: str, existing: Sequence[Finding], names: set[str],
              candidate: str) -> bool:
    """True when a knowledge-base finding on one of ``names`` is fixed at or below
    ``candidate``: installing the candidate clears it, so an "update available" finding
    without CVEs would only repeat that finding's fix."""
    try:
        ceiling = version_key(ecosystem, candidate)
    except VersionError:
        return False
    for f in existing:
        if not f.fix.fixed_version:
            continue
        if f.package not in names and not names.intersection(f.evidence.packages):
            continue
        try:
            if version_key(ecosystem, f.fix.fixed_version) <= ceiling:
                return True
        except VersionError:
            continue
    return False


def _finding(group: _Group, ecosystem: str, facts: dict[str, About]) -> Finding:
    first = group.updates[0]
    candidate = _newest(ecosystem, (u.candidate_version for u in group.updates))
    binaries = tuple(sorted({u.package for u in group.updates}))
    installed = [Package(ecosystem=Ecosystem(ecosystem), name=u.package,
                         version=u.installed_version, arch=u.arch,
                         source_name=u.source_name) for u in group.updates]
    info = facts.get(group.vuln_id)
    cvss = preferred_metric(info.metrics) if info else None
    band = distribution_band(first.severity)
    severity = cvss.severity if cvss else (band or "Unknown")
    severity_source = "cvss" if cvss else ("distribution" if band else "none")
    generic_name = phrases.UPDATE_NAME.format(package=group.package, version=candidate)
    fixes = group.vuln_id.startswith("CVE-")
    template = {(False, False): phrases.UPDATE_SUMMARY, (True, False): phrases.UPDATE_SUMMARY_CVE,
                (False, True): phrases.UPDATE_SUMMARY_ADVISORY,
                (True, True): phrases.UPDATE_SUMMARY_CVE_ADVISORY}[
        (fixes, bool(group.advisory_id))]
    generic_summary = template.format(
        repository=first.repository, package=group.package, version=candidate,
        installed=first.installed_version, vuln=group.vuln_id, advisory=group.advisory_id)
    aliases = set(info.aliases if info else ())
    if group.advisory_id and group.advisory_id != group.vuln_id:
        aliases.add(group.advisory_id)
    return Finding(
        vuln_id=group.vuln_id,
        name=(info.title if info and info.title else generic_name),
        summary=(info.description if info and info.description else generic_summary),
        ecosystem=ecosystem,
        package=group.package,
        aliases=tuple(sorted(aliases)),
        cvss=cvss,
        severity=severity,
        severity_source=severity_source,
        exploit=info.exploit if info else Exploit(),
        fix=Fix(candidate, upgrade_command(ecosystem, installed, candidate)),
        workaround=(info.workaround if info and info.workaround else phrases.NO_WORKAROUND),
        evidence=Evidence(installed_version=first.installed_version,
                          advisory_id=group.advisory_id or group.vuln_id,
                          affected_range=f"< {candidate}", feed=FEED,
                          source=first.repository, packages=binaries),
        cwes=info.cwes if info else (),
        references=tuple(dict.fromkeys(info.references)) if info else (),
    )


def host_update_findings(conn: Connection, inventory: Inventory,
                         existing: Sequence[Finding] = ()) -> list[Finding]:
    """Findings for the inventory's pending security updates that ``existing`` (the
    knowledge base's findings for the same inventory) does not already report.

    When the knowledge base reports the same (CVE, package), its finding is kept and
    nothing is added: it carries the advisory's affected range and fixed version, where
    the host only says "a newer version is available".  An update without CVEs is also
    left out when a knowledge-base finding on the package is fixed by its candidate.
    """
    ecosystem = _ecosystem(inventory)
    if ecosystem is None or not inventory.pending_updates:
        return []
    covered = _covered(existing)
    wanted: list[_Group] = []
    for group in _groups(inventory.pending_updates):
        names = {group.package, *(u.package for u in group.updates)}
        if any((group.vuln_id, n) in covered for n in names):
            continue
        if not group.vuln_id.startswith("CVE-") and _fixed_by(
                ecosystem, existing, names,
                _newest(ecosystem, (u.candidate_version for u in group.updates))):
            continue
        wanted.append(group)
    facts = vulnerability_facts(conn, [g.vuln_id for g in wanted
                                       if g.vuln_id.startswith("CVE-")])
    return [_finding(g, ecosystem, facts) for g in wanted]
