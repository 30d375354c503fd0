"""Values shared by every stage of the flow.

Plugins (feeds, inventory sources, output formats) produce and consume these; no plugin
owns this module.  Everything here is an immutable value with typed ids, so a record can
be passed between stages (and cached) without defensive copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NewType

VulnId = NewType("VulnId", str)
"""Canonical vulnerability id: the CVE where one exists, else the advisory's own id."""

AdvisoryId = NewType("AdvisoryId", str)
"""An advisory's id as its source spells it: GHSA-…, PYSEC-…, DSA-…, ALSA-…, CVE-…"""

Ecosystem = NewType("Ecosystem", str)
"""Normalised OSV-style ecosystem, with the release for distributions.

Examples: ``PyPI``, ``npm``, ``Go``, ``Maven``, ``crates.io``, ``Debian:12``,
``Ubuntu:22.04``, ``Alpine:3.18``, ``AlmaLinux:9``, ``Rocky Linux:9``, ``Red Hat:9``.
"""


class AffectedStatus(StrEnum):
    """What a source says about one package in one ecosystem."""

    AFFECTED = "affected"
    NOT_AFFECTED = "not_affected"  # the distribution says this release was never affected
    UNDETERMINED = "undetermined"  # the source itself has not decided yet


@dataclass(frozen=True, slots=True)
class AffectedRange:
    """One interval of affected versions: ``introduced <= v < fixed`` or ``<= last_affected``.

    ``introduced`` of ``None`` or ``"0"`` means "from the first version".  A range with
    neither ``fixed`` nor ``last_affected`` is open ended: no fix exists yet (*unfixed*).
    """

    introduced: str | None = None
    fixed: str | None = None
    last_affected: str | None = None
    # NVD's versionStartExcluding: ``introduced < v`` (OSV has no such bound).
    introduced_excluded: bool = False


@dataclass(frozen=True, slots=True)
class AffectedPackage:
    """A package named by an advisory, in one ecosystem (and distribution release)."""

    ecosystem: Ecosystem
    name: str  # normalised with knowledge.names.normalize_name
    ranges: tuple[AffectedRange, ...] = ()
    versions: tuple[str, ...] = ()  # explicitly listed affected versions
    status: AffectedStatus = AffectedStatus.AFFECTED
    severity: str | None = None  # the distribution's own rating (Debian urgency, …)


@dataclass(frozen=True, slots=True)
class Reference:
    """A link from a record, with its kind (OSV reference type or NVD tag, lower case)."""

    url: str
    type: str = "web"


@dataclass(frozen=True, slots=True)
class CvssMetric:
    """One CVSS vector and what the ``cvss`` library computed from it."""

    version: str  # "2.0", "3.0", "3.1", "4.0"
    vector: str
    score: float
    severity: str  # band from knowledge.cvss.severity_band
    source: str = ""  # who published it (nvd@nist.gov, the CNA, the advisory, …)


@dataclass(frozen=True, slots=True)
class Advisory:
    """One advisory in the internal schema every advisory feed transforms into."""

    id: AdvisoryId
    source: str  # feed name: "osv", "debian-tracker", "alpine-secdb"
    modified: str | None = None  # ISO 8601, used to load incrementally
    published: str | None = None
    aliases: tuple[str, ...] = ()  # every other id: CVEs, GHSA, PYSEC, DSA, …
    summary: str | None = None
    details: str | None = None
    cvss: tuple[CvssMetric, ...] = ()
    affected: tuple[AffectedPackage, ...] = ()
    references: tuple[Reference, ...] = ()
    workaround: str | None = None
    withdrawn: bool = False
    raw: bytes = b""  # the record as the source published it (JSON), decoded only for hits

    @property
    def cve_ids(self) -> tuple[str, ...]:
        """Every CVE id the advisory names (its own id first when it is one)."""
        ids = [i for i in (self.id, *self.aliases) if i.startswith("CVE-")]
        return tuple(dict.fromkeys(ids))

    def vuln_ids(self) -> tuple[VulnId, ...]:
        """The canonical vulnerabilities this advisory is about.

        The CVE where there is one; an advisory that fixes several CVEs (a DSA, an ALSA)
        is about each of them.  Without a CVE, a GHSA alias merges the same issue from
        several databases; failing that the advisory's own id stands.
        """
        cves = self.cve_ids
        if cves:
            return tuple(VulnId(c) for c in cves)
        ghsa = sorted(a for a in (self.id, *self.aliases) if a.startswith("GHSA-"))
        return (VulnId(ghsa[0]),) if ghsa else (VulnId(self.id),)


@dataclass(frozen=True, slots=True)
class CveRecord:
    """What a CVE record (NVD API 2.0 or CVE JSON 5) says about one CVE."""

    id: VulnId
    source: str  # "nvd" or "cve5"
    modified: str | None = None
    published: str | None = None
    title: str | None = None
    description: str | None = None
    cvss: tuple[CvssMetric, ...] = ()
    references: tuple[Reference, ...] = ()
    cwes: tuple[str, ...] = ()
    workaround: str | None = None
    status: str | None = None  # "Rejected" records are kept so a rejected CVE is shown so
    # Products named by CPE that the record says are affected (NVD configurations, CVE 5
    # ``affected``), as packages of ecosystem "CPE" (knowledge.cpe_names).
    affected: tuple[AffectedPackage, ...] = ()

    @property
    def exploit_references(self) -> tuple[Reference, ...]:
        """References the record tags as exploits."""
        return tuple(r for r in self.references if "exploit" in r.type)


@dataclass(frozen=True, slots=True)
class KevEntry:
    """One row of CISA's Known Exploited Vulnerabilities catalogue."""

    cve: VulnId
    date_added: str
    due_date: str | None = None
    ransomware: bool = False
    vendor: str | None = None
    product: str | None = None
    name: str | None = None
    required_action: str | None = None


@dataclass(frozen=True, slots=True)
class EpssScore:
    """FIRST EPSS probability of exploitation in the next 30 days, and its percentile."""

    cve: VulnId
    score: float
    percentile: float
    date: str | None = None


@dataclass(frozen=True, slots=True)
class PackageOwner:
    """The operating-system package whose files include a language package.

    Debian's ``python3-cryptography`` installs ``cryptography`` into
    /usr/lib/python3/dist-packages: that copy is the distribution's, patched by its
    backports, so it is judged through the OS package (the distribution's data, or its
    changelog), never against the upstream advisories of the language ecosystem.
    """

    name: str  # the binary package (dpkg, rpm, apk) that owns the files
    version: str  # its installed version


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package as a collector saw it.

    ``ecosystem`` already carries the distribution release (``Debian:12``) so the matcher
    never judges a host by another release's data.  For Debian and Ubuntu the matcher looks
    up ``source_name``/``source_version`` (the dpkg ``Source:`` field), because the
    distributions publish their verdicts per source package.
    """

    ecosystem: Ecosystem
    name: str
    version: str
    arch: str | None = None
    source_name: str | None = None
    source_version: str | None = None
    purl: str | None = None
    location: str | None = None  # file it was read from
    # The OS package whose files include this language package (None: nobody's, or the
    # collector could not tell); see ``PackageOwner``.
    owner: PackageOwner | None = None

    @property
    def match_name(self) -> str:
        """The name advisories use for this package."""
        return self.source_name or self.name

    @property
    def match_version(self) -> str:
        """The version advisories' ranges are written against."""
        return self.source_version or self.version


@dataclass(frozen=True, slots=True)
class OsRelease:
    """The operating system of an asset, from /etc/os-release."""

    id: str  # debian, ubuntu, alpine, almalinux, rocky, rhel, …
    version_id: str | None = None
    codename: str | None = None
    pretty_name: str | None = None
    id_like: tuple[str, ...] = field(default=())
