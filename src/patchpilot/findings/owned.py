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
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection

from patchpilot.db.tables import assets, inventories
from patchpilot.knowledge.ecosystems import is_distribution
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


def set_aside_reason(owner: PackageOwner | None, vuln_id: str, loaded: bool,
                     changelog_cves: Mapping[str, Sequence[str]]) -> str | None:
    """Why an upstream match of ``vuln_id`` on a copy ``owner`` installed is not reported
    (DISTRIBUTION, CHANGELOG), or None when it is: the copy is nobody's, or the
    distribution's feed is not loaded (``loaded``) and the owner's changelog does not
    name the vulnerability.  The changelog, the more specific evidence, is named first
    when both apply."""
    if owner is None:
        return None
    if vuln_id in changelog_cves.get(owner.name, ()):
        return CHANGELOG
    return DISTRIBUTION if loaded else None


def judge_owned(conn: Connection, matches: Sequence[Match], distribution: str | None,
                changelog_cves: Mapping[str, Sequence[str]], *, loaded: bool | None = None
                ) -> tuple[list[Match], list[SetAside]]:
    """The matches to report, and the upstream matches on owned packages set aside.

    A match covers every installed copy of one (ecosystem, name, version); only its owned
    copies are judged here, so a venv's own ``cryptography 38.0.4`` beside Debian's is
    still reported (the match keeps the unowned copies only).  ``distribution``: the
    release the host's OS packages are judged in (``distribution_of``); ``loaded``:
    whether the knowledge base has its feed (asked when None); ``changelog_cves``: per
    owning OS package, the CVE ids its changelog names as fixed.
    """
    if not any(p.owner is not None for m in matches for p in m.packages):
        return list(matches), []
    if loaded is None:
        loaded = bool(distribution) and distribution in ecosystems_with_advisories(
            conn, [distribution] if distribution else [])
    reported: list[Match] = []
    set_aside: list[SetAside] = []
    for m in matches:
        kept: list[Package] = []
        aside: dict[tuple[PackageOwner, str], list[str]] = {}
        for p in m.packages:
            owner = p.owner if ":" not in p.ecosystem else None
            reason = set_aside_reason(owner, m.vuln_id, loaded, changelog_cves)
            if owner is None or reason is None:
                kept.append(p)  # nobody's, or no distribution data and no backport named
            else:
                aside.setdefault((owner, reason), []).append(p.location or "")
        if kept:
            reported.append(m if len(kept) == len(m.packages)
                            else m._replace(packages=tuple(kept)))
        set_aside.extend(
            SetAside(m.vuln_id, m.ecosystem, m.name, m.version,
                     tuple(sorted(set(where))), owner, m.advisory_id, reason, distribution)
            for (owner, reason), where in aside.items())
    set_aside.sort(key=lambda s: (s.package, s.version, s.vuln_id, s.owner.name))
    return reported, set_aside


def owned_facts(conn: Connection, asset_ids: Sequence[int]
                ) -> dict[int, tuple[str | None, dict[str, list[str]]]]:
    """Per asset, what judging its owned packages needs from its latest inventory: the
    release of its OS packages (``assets.ecosystem``) and its owners' changelog CVEs.

    For re-matching and sweeps, which work on ``asset_packages`` rows; only the assets
    with an owned package among their hits are asked, so few documents are decoded.
    """
    out: dict[int, tuple[str | None, dict[str, list[str]]]] = {}
    ids = sorted(set(asset_ids))
    for start in range(0, len(ids), 500):
        for asset_id, ecosystem, document in conn.execute(
                select(assets.c.id, assets.c.ecosystem, inventories.c.document)
                .join(inventories, inventories.c.id == assets.c.last_inventory_id)
                .where(assets.c.id.in_(ids[start:start + 500]))):
            raw: dict[str, Any] = orjson.loads(document) if document else {}
            out[asset_id] = (ecosystem, raw.get("changelog_cves") or {})
    return out


def installed_entry(package: Package) -> list[str | None]:
    """How ``asset_packages.installed`` lists one installed copy: ``[name, version,
    arch]``; for a language package, the folder or lock file the copy was found in (so a
    re-match keeps each installation, see ``findings.installations``); and the owning OS
    package's name and version after it when one owns the copy (location then None if
    unknown)."""
    entry = [package.name, package.version, package.arch]
    location = (package.location
                if package.location and not is_distribution(package.ecosystem) else None)
    if location is not None or package.owner is not None:
        entry.append(location)
    if package.owner is not None:
        entry += [package.owner.name, package.owner.version]
    return entry


def has_owner(installed_json: str) -> bool:
    """Whether an ``asset_packages.installed`` list names an owning OS package for any
    copy (see ``installed_entry``)."""
    return any(len(entry) > 4 for entry in orjson.loads(installed_json))
