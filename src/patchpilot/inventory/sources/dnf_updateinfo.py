"""Pending security updates as dnf sees them: ``dnf updateinfo list --security``.

dnf (4.x: RHEL/AlmaLinux/Rocky/Oracle 8-10, Fedora up to 40) prints one line per
(advisory, package) of the repositories' updateinfo metadata whose package is newer than
the installed one (the default ``--available`` view).  The line is printed by
``UpdateInfoCommand.display_list`` as ``'%s%-*s %-*s %s' % (mark, idw, id, tlw, label,
nevra)``::

    ALSA-2022:0818 Critical/Sec.  firefox-91.7.0-3.el8_5.alma.x86_64

With ``--with-cve`` the first column is each CVE the advisory references instead of the
advisory id, so both listings are read and joined on the package NEVRA.  ``mark`` (``i ``
or two spaces) appears only with ``--all``.  The label is ``<Severity>/Sec.`` (Critical,
Important, Moderate, Low, else ``Unknown/Sec.``) for security advisories, the type
(``bugfix``, ``enhancement``, ``newpackage``, ``unknown``) otherwise.
See https://github.com/rpm-software-management/dnf/blob/master/dnf/cli/commands/updateinfo.py

dnf5 (Fedora 41+) has a different, tabular ``dnf5 advisory list``; it is not read here.
The transport runs dnf with ``-q`` (no "Last metadata expiration check" line) and ``-C``
(cache only: never refreshes metadata, never touches the network).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.model import PendingUpdate
from patchpilot.models import Package

DNF_ADVISORIES_COMMAND = ("dnf", "-q", "-C", "updateinfo", "list", "--security")
"""The listing whose first column is the advisory id (RHSA-…, ALSA-…, RLSA-…, FEDORA-…)."""
DNF_CVES_COMMAND = (*DNF_ADVISORIES_COMMAND, "--with-cve")
"""The same listing with one line per CVE the advisory references instead."""
REPOSITORY = "dnf updateinfo"
"""The repository named on these updates: the list output does not say which repo."""

_TYPE_LABELS = frozenset({"bugfix", "enhancement", "newpackage", "unknown", "security"})
_SEVERITY_LABEL = re.compile(r"^(\w+)/Sec\.$")
# Lines dnf (and subscription-manager's plugin) print before the list without -q.
_PREAMBLES = ("Last metadata expiration check", "Updating Subscription Management",
              "Unable to read consumer identity", "This system is not registered")
_ARCHES = frozenset({"x86_64", "noarch", "i686", "i386", "aarch64", "ppc64le", "ppc64",
                     "s390x", "armv7hl", "riscv64", "src"})


@dataclass(frozen=True, slots=True)
class UpdateinfoLine:
    """One line of ``dnf updateinfo list``: an advisory (or CVE) and the package it updates."""

    ref_id: str  # the advisory id, or a CVE id with --with-cve
    security: bool
    severity: str | None  # "Important", …; None for "Unknown/Sec." and non-security types
    name: str
    evr: str  # [epoch:]version-release, as dnf prints it
    arch: str

    @property
    def nevra(self) -> str:
        """``name-[epoch:]version-release.arch`` as dnf printed it."""
        return f"{self.name}-{self.evr}.{self.arch}"


def split_nevra(nevra: str) -> tuple[str, str, str] | None:
    """``glibc-2.28-164.el8.x86_64`` -> ``("glibc", "2.28-164.el8", "x86_64")``; None if
    it is not a NEVRA (no known architecture, or no name-version-release)."""
    rest, dot, arch = nevra.rpartition(".")
    if not dot or arch not in _ARCHES:
        return None
    parts = rest.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None
    name, version, release = parts
    return name, f"{version}-{release}", arch


def parse_updateinfo_list(text: str, location: str) -> list[UpdateinfoLine]:
    """The lines of a ``dnf updateinfo list`` output (empty output: nothing pending).

    Raises InventoryFormatError naming ``location`` and the line for binary data, a line
    without the three columns, a label dnf does not print, or a package that is not a
    NEVRA -- which is what a truncated output looks like.
    """
    if "\x00" in text:
        raise InventoryFormatError(location, "binary data, not dnf updateinfo output")
    lines: list[UpdateinfoLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line.strip() or line.startswith(_PREAMBLES):
            continue
        words = line.split()
        if len(words) == 4 and words[0] == "i":  # the --all view's "installed" mark
            words = words[1:]
        if len(words) != 3:
            raise InventoryFormatError(
                location, f"expected 'ID TYPE/SEVERITY NEVRA', got {line[:80]!r}", line=number)
        ref_id, label, nevra = words
        sec = _SEVERITY_LABEL.match(label)
        if sec is None and label not in _TYPE_LABELS:
            raise InventoryFormatError(
                location, f"unknown advisory type {label!r}", line=number)
        parts = split_nevra(nevra)
        if parts is None:
            raise InventoryFormatError(
                location, f"not a name-version-release.arch: {nevra!r}", line=number)
        severity = sec.group(1) if sec else None
        lines.append(UpdateinfoLine(
            ref_id=ref_id, security=sec is not None or label == "security",
            severity=None if severity == "Unknown" else severity,
            name=parts[0], evr=parts[1], arch=parts[2]))
    return lines


def _evr_key(evr: str) -> str:
    """dnf prints no epoch when it is 0, as rpm -qa's version here does: same spelling."""
    return evr.removeprefix("0:")


def pending_dnf_updates(
    advisories: Iterable[UpdateinfoLine],
    cves: Iterable[UpdateinfoLine],
    installed: Iterable[Package],
    repository: str = REPOSITORY,
) -> list[PendingUpdate]:
    """PendingUpdates from the two listings, joined on the package NEVRA.

    One update per (package, advisory).  The ``--with-cve`` listing does not say which
    advisory a CVE came from, so when two advisories update the same NEVRA (rare: a
    re-issued erratum) each gets every CVE of that NEVRA.  A NEVRA only the CVE listing
    has gets an update without advisory id.  Only security advisories count, and only for
    a package installed under the same (name, arch): its installed version and source
    package come from the rpm database.
    """
    by_name_arch = {(p.name, p.arch): p for p in installed}
    cves_of: dict[str, set[str]] = {}
    first_cve_line: dict[str, UpdateinfoLine] = {}
    for line in cves:
        if line.security and line.ref_id.startswith("CVE-"):
            cves_of.setdefault(line.nevra, set()).add(line.ref_id)
            first_cve_line.setdefault(line.nevra, line)
    wanted: dict[tuple[str, str | None], UpdateinfoLine] = {}
    for line in advisories:
        if line.security:
            wanted.setdefault((line.nevra, line.ref_id), line)
    seen = {nevra for nevra, _ in wanted}
    for nevra, line in first_cve_line.items():
        if nevra not in seen:
            wanted[(nevra, None)] = line
    pending = []
    for (nevra, advisory_id), line in wanted.items():
        package = by_name_arch.get((line.name, line.arch))
        if package is None:
            continue  # dnf lists updates of installed packages only; a stale cache may not
        pending.append(PendingUpdate(
            package=line.name,
            source_name=package.source_name or line.name,
            arch=line.arch,
            installed_version=package.version,
            candidate_version=_evr_key(line.evr),
            repository=repository,
            advisory_id=advisory_id,
            cve_ids=sorted(cves_of.get(nevra, ())),
            severity=line.severity,
        ))
    pending.sort(key=lambda u: (u.source_name or u.package, u.package, u.advisory_id or ""))
    return pending
