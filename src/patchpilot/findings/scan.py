"""A scan: an Inventory matched against the knowledge base, giving findings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from patchpilot.findings.build import build_findings, sort_key
from patchpilot.findings.host_updates import host_update_findings
from patchpilot.findings.model import HOST_UPDATES, MATCHER, MSRC, Finding
from patchpilot.findings.owned import SetAside, distribution_of, judge_owned
from patchpilot.findings.windows import match_windows_host, windows_lines
from patchpilot.inventory.model import Inventory
from patchpilot.knowledge.coverage import EcosystemCoverage, inventory_coverage
from patchpilot.knowledge.matcher import Undetermined, match_packages
from patchpilot.knowledge.windows import WindowsMatchResult


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The findings of one inventory, with what could not be judged."""

    inventory: Inventory
    findings: tuple[Finding, ...]
    undetermined: tuple[Undetermined, ...]
    packages: int
    distinct: int
    match_seconds: float
    # The findings per producer (the matcher's, the host updates'), every producer present
    # even when it found nothing: what ``lifecycle.apply_findings`` takes, so that each
    # producer's complete report closes only its own findings.
    reports: dict[str, tuple[Finding, ...]] = field(default_factory=dict)
    # Per ecosystem of the inventory, its packages and the advisories loaded for it, not
    # covered first: "no findings" in an ecosystem no advisory covers is not "clean".
    coverage: tuple[EcosystemCoverage, ...] = ()

    def not_covered(self) -> list[EcosystemCoverage]:
        """The inventory's ecosystems that no (or almost no) advisory covers."""
        return [c for c in self.coverage if not c.covered]
    # Upstream matches on language packages an OS package owns, not reported, and why
    # (see ``findings.owned``).
    set_aside: tuple[SetAside, ...] = ()
    # A Windows host's match against Microsoft's security updates (None elsewhere): its
    # findings are ``reports[MSRC]``; end of life, undetermined CVEs and unmatched
    # components are in ``windows_warnings``.
    windows: WindowsMatchResult | None = None

    def windows_warnings(self) -> list[str]:
        """What the Windows match could not judge: end of life first, never silent."""
        return windows_lines(self.windows) if self.windows is not None else []

    def counts(self) -> dict[str, int]:
        """Findings per severity band."""
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.severity] = out.get(f.severity, 0) + 1
        return out


def scan_inventory(engine: Engine, inventory: Inventory) -> ScanResult:
    """Match ``inventory`` and build its findings (one read-only connection).

    The host's pending security updates (``inventory.pending_updates``) add findings for
    what the knowledge base does not report; where both speak of the same (CVE, package)
    only the knowledge base's finding is kept (see ``host_update_findings``).
    """
    with engine.connect() as conn:
        return scan_inventory_in(conn, inventory)


def scan_inventory_in(conn: Connection, inventory: Inventory) -> ScanResult:
    """:func:`scan_inventory` on the caller's connection (it only reads), so that
    ``pipeline.process_inventory`` matches and applies in one transaction."""
    started = time.perf_counter()
    packages = inventory.to_packages()
    result = match_packages(conn, packages)
    kept, set_aside = judge_owned(conn, result.matches, distribution_of(packages),
                                  inventory.changelog_cves)
    matched = build_findings(conn, kept)
    updates = host_update_findings(conn, inventory, matched)
    reports = {MATCHER: tuple(matched), HOST_UPDATES: tuple(updates)}
    windows = None
    if inventory.windows is not None:
        # Microsoft's own report: complete as the inventory is, it closes only the
        # Windows findings (producer ``msrc``).
        windows, found = match_windows_host(conn, inventory.windows)
        reports[MSRC] = tuple(found)
    findings = sorted([f for report in reports.values() for f in report], key=sort_key)
    return ScanResult(inventory, tuple(findings), result.undetermined, result.packages,
                      result.distinct, time.perf_counter() - started, reports,
                      set_aside=tuple(set_aside),
                      coverage=tuple(inventory_coverage(
                          conn, (p.ecosystem for p in inventory.packages))),
                      windows=windows)
