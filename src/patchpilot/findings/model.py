"""The Finding: one vulnerability in one package of one asset, with the eight report fields.

One finding per (asset, vulnerability, package), however many copies of the package the
asset holds: its ``installations`` list each affected copy (location, version, fix).

The eight fields a scanner report carries (DESIGN.md): name, summary, affected product and
range, CVE id (and aliases), CVSS (version, score, vector, band), exploit evidence, the fix
and the workaround.  ``evidence`` says why the matcher decided so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from patchpilot.findings.phrases import exploit_summary
from patchpilot.models import CvssMetric, Reference

# The states of a stored finding (``findings.state``).
OPEN = "open"
FIXED = "fixed"
TRIAGED = ("accepted", "false_positive", "not_affected")
STATES = (OPEN, FIXED, *TRIAGED)

# The producers of findings (``findings.producer``): the knowledge base's matcher, the
# host's own pending security updates; third-party reports are ``importer:<format>``.
MATCHER = "matcher"
HOST_UPDATES = "host-updates"
# Windows hosts judged against Microsoft's security updates (the MSRC feed): findings with
# ``ecosystem == WINDOWS``, the fixing KB as the fixed version.
MSRC = "msrc"
WINDOWS = "Windows"


@dataclass(frozen=True, slots=True)
class Exploit:
    """Exploit evidence: CISA KEV, FIRST EPSS and references tagged as exploits."""

    known_exploited: bool = False
    kev_date_added: str | None = None
    kev_due_date: str | None = None
    kev_ransomware: bool = False
    epss_score: float | None = None
    epss_percentile: float | None = None
    references: tuple[Reference, ...] = ()
    # The vendor says it is exploited in the wild (MSRC "Exploited: Yes"), whether or not
    # KEV lists it yet: exploit evidence like KEV (stored and prioritised as known
    # exploited, see ``exploited``).
    vendor_exploited: bool = False

    @property
    def exploited(self) -> bool:
        """Exploited in the wild by any evidence: KEV or the vendor's own word."""
        return self.known_exploited or self.vendor_exploited

    @property
    def summary(self) -> str:
        """One line: "KEV (ransomware); EPSS 0.940 (p99); 2 exploit refs" or "none known"
        (in English: :func:`patchpilot.findings.phrases.localise` translates it)."""
        return exploit_summary(self.known_exploited, self.kev_ransomware, self.epss_score,
                               self.epss_percentile, len(self.references),
                               self.vendor_exploited and not self.known_exploited)


@dataclass(frozen=True, slots=True)
class Fix:
    """How to remove the finding."""

    fixed_version: str | None  # None: no fix published yet (*unfixed*)
    command: str | None  # the upgrade command for the package manager

    @property
    def state(self) -> str:
        """``fixed`` when a fixed version exists, else ``unfixed``."""
        return "fixed" if self.fixed_version else "unfixed"


@dataclass(frozen=True, slots=True)
class Installation:
    """One copy of the package on the asset that the vulnerability affects.

    A host can hold one package several times -- pip in each Python's site-packages, a
    library in each project's lock file -- at different versions; a finding lists them
    all, each with the fix it needs and the command that installs it *there*.
    ``location`` is where the collector read it (a site-packages folder, a lock file);
    None for an OS package (the system's package database) or when the source did not say.
    """

    location: str | None
    installed_version: str
    fixed_version: str | None  # None: no fix published for this version
    command: str | None = None  # the upgrade command for this installation

    def to_row(self) -> list[str | None]:
        """The compact form stored in ``findings.installations``."""
        return [self.location, self.installed_version, self.fixed_version, self.command]

    @classmethod
    def from_row(cls, row: list[str | None]) -> Installation:
        """The inverse of :meth:`to_row`."""
        location, installed, fixed, command = (list(row) + [None] * 4)[:4]
        return cls(location, installed or "", fixed, command)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why the matcher reported it."""

    installed_version: str
    advisory_id: str
    affected_range: str
    feed: str
    source: str
    packages: tuple[str, ...]  # installed package names (binaries of a source package)
    # The OS packages owning the installed copies ("python3-pip 23.0.1+dfsg-1"), when a
    # language package installed by dpkg/rpm/apk is reported (no distribution feed loaded
    # and its changelog does not name the vulnerability).
    owners: tuple[str, ...] = ()
    # An imported report's own evidence: the scanner's output for the item (plugin
    # output, result text), where the report gives one.
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """One vulnerability in one package (on one asset)."""

    vuln_id: str
    name: str  # title
    summary: str
    ecosystem: str
    package: str
    aliases: tuple[str, ...]
    cvss: CvssMetric | None
    severity: str  # band of ``cvss``, or the distribution's rating, or "Unknown"
    severity_source: str  # "cvss", "distribution" (Debian urgency, Red Hat rating), "none"
    exploit: Exploit
    fix: Fix
    workaround: str
    evidence: Evidence
    cwes: tuple[str, ...] = ()
    references: tuple[Reference, ...] = field(default=())
    # Every affected copy on the asset (at least one for a matcher finding; a finding is
    # fixed only when none is left).  ``evidence.installed_version`` is the oldest's and
    # ``fix.fixed_version`` the highest any of them needs.
    installations: tuple[Installation, ...] = ()
    # Imported findings: the report's own remedy text ("Upgrade to PHP 5.2.0 or later"),
    # whether the scanner says a public exploit exists, and where each of the report
    # fields came from ("report" or "knowledge base"), as (field, source) pairs.
    solution: str | None = None
    exploit_reported: bool | None = None
    field_sources: tuple[tuple[str, str], ...] = ()

    @property
    def cve(self) -> str | None:
        """The CVE id, if the vulnerability has one."""
        if self.vuln_id.startswith("CVE-"):
            return self.vuln_id
        return next((a for a in self.aliases if a.startswith("CVE-")), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``--format json`` shape)."""
        # orjson turns the (slotted, nested) dataclasses into plain JSON types in one pass:
        # forty times faster than dataclasses.asdict, which deep-copies every value.
        d = orjson.loads(orjson.dumps(self))
        d["cve"] = self.cve
        d["fix"]["state"] = self.fix.state
        d["exploit"]["summary"] = self.exploit.summary
        # What only imported findings have is left out of the others' JSON.
        if self.field_sources:
            d["field_sources"] = dict(self.field_sources)
        else:
            del d["field_sources"]
        for key in ("solution", "exploit_reported"):
            if d[key] is None:
                del d[key]
        if d["evidence"]["detail"] is None:
            del d["evidence"]["detail"]
        return d
