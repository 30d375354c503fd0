"""Language packages an OS package owns are judged through that OS package.

Debian's ``python3-cryptography 38.0.4-3+deb12u1`` installs ``cryptography 38.0.4`` into
/usr/lib/python3/dist-packages with the fixes for CVE-2023-49083 and CVE-2023-23931
backported: PyPI's advisories say "affected below 41.0.6" and would be wrong about it.
The collector records the owner (``Package.owner``) and what the owner's own changelog
names as fixed (``Inventory.changelog_cves``); the matcher's verdicts on an owned copy are
then sorted here:

* the distribution's feed is loaded for the release (``Debian:12`` has advisories): the
  OS package is judged by it as every OS package is, and upstream matches on the owned
  copy are set aside -- trivy and grype drop such packages by file ownership too;
* it is not loaded: rather than go silent, the upstream match stands unless the owner's
  changelog names the vulnerability as fixed in the installed version (backport
  evidence), and then it is set aside saying so.

What is set aside is kept (``SetAside``) so the scan shows why a known upstream match was
not reported, instead of an unexplained gap.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from patchpilot.knowledge.matcher import Match, ecosystems_with_advisories
from patchpilot.models import Package, PackageOwner

# Why an upstream match on an owned package was not reported.
DISTRIBUTION = "distribution"  # the distribution's feed judges the owning OS package
CHANGELOG = "changelog"  # the owner's changelog names the vulnerability as fixed


@dataclass(frozen=True, slots=True)
class SetAside:
    """An upstream advisory's match on a language package an OS package owns, not
    reported as a finding, with the reason."""

    vuln_id: str
    ecosystem: str  # the language ecosystem of the upstream advisory: PyPI, npm, …
    package: str
    version: str
    locations: tuple[str, ...]  # where the owned copies are (site-packages folders, …)
    owner: PackageOwner
    advisory_id: str  # the upstream advisory that matched
    reason: str  # DISTRIBUTION or CHANGELOG
    distribution: str | None  # the release whose feed judges the owner: Debian:12, …

    @property
    def explanation(self) -> str:
        """One sentence: "owned by python3-cryptography 38.0.4-3+deb12u1, whose changelog
        names CVE-2023-49083 as fixed"."""
        owner = f"owned by {self.owner.name} {self.owner.version}"
        if self.reason == CHANGELOG:
            return (f"{owner}, whose changelog names {self.vuln_id} as fixed "
                    f"(backported; {self.advisory_id} judges the upstream version only)")
        return (f"{owner}: judged by the {self.distribution} feed, not by the upstream "
                f"advisory {self.advisory_id}")

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (the scan's ``set_aside`` list)."""
        return {"vuln_id": self.vuln_id, "ecosystem": self.ecosystem,
                "package": self.package, "version": self.version,
                "locations": list(self.locations),
                "owner": {"name": self.owner.name, "version": self.owner.version},
                "advisory_id": self.advisory_id, "reason": self.reason,
                "distribution": self.distribution, "explanation": self.explanation}


def owner_label(owner: PackageOwner) -> str:
    """``python3-cryptography 38.0.4-3+deb12u1``: how pages and evidence name an owner."""
    return f"{owner.name} {owner.version}"


def owners_of(packages: Sequence[Package]) -> tuple[str, ...]:
    """The labels of the OS packages owning any of ``packages`` (sorted, once each)."""
    return tuple(sorted({owner_label(p.owner) for p in packages if p.owner is not None}))


def distribution_of(packages: Sequence[Package]) -> str | None:
    """The release the host's OS packages are judged in (``Debian:12``): the most common
    distribution ecosystem among packages nobody owns; None without OS packages."""
    counts = Counter(p.ecosystem for p in packages if ":" in p.ecosystem and p.owner is None)
    return counts.most_common(1)[0][0] if counts else None


def judge_owned(conn: Connection, matches: Sequence[Match], packages: Sequence[Package],
                changelog_cves: Mapping[str, Sequence[str]]
                ) -> tuple[list[Match], list[SetAside]]:
    """The matches to report, and the upstream matches on owned packages set aside.

    A match covers every installed copy of one (ecosystem, name, version); only its owned
    copies are judged here, so a venv's own ``cryptography 38.0.4`` beside Debian's is
    still reported (the match keeps the unowned copies only).  ``packages``: the whole
    inventory (for the release its OS packages are in); ``changelog_cves``: per owning OS
    package, the CVE ids its changelog names as fixed.
    """
    if not any(p.owner is not None for m in matches for p in m.packages):
        return list(matches), []
    distribution = distribution_of(packages)
    loaded = bool(distribution) and distribution in ecosystems_with_advisories(
        conn, [distribution] if distribution else [])
    fixed = {name: set(cves) for name, cves in changelog_cves.items()}
    reported: list[Match] = []
    set_aside: list[SetAside] = []
    for m in matches:
        kept: list[Package] = []
        aside: dict[tuple[PackageOwner, str], list[str]] = {}
        for p in m.packages:
            owner = p.owner
            if owner is None or ":" in p.ecosystem:
                kept.append(p)
            elif loaded:
                aside.setdefault((owner, DISTRIBUTION), []).append(p.location or "")
            elif m.vuln_id in fixed.get(owner.name, ()):
                aside.setdefault((owner, CHANGELOG), []).append(p.location or "")
            else:
                kept.append(p)  # no distribution data and no backport named: reported
        if kept:
            reported.append(m if len(kept) == len(m.packages)
                            else m._replace(packages=tuple(kept)))
        set_aside.extend(
            SetAside(m.vuln_id, m.ecosystem, m.name, m.version,
                     tuple(sorted(set(where))), owner, m.advisory_id, reason, distribution)
            for (owner, reason), where in aside.items())
    set_aside.sort(key=lambda s: (s.package, s.version, s.vuln_id, s.owner.name))
    return reported, set_aside
