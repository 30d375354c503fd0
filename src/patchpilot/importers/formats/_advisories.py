"""What the application-dependency readers share: advisory ids in free text, the
nearest fixed version, and a package from a purl.

Private to the format modules (not a format: the registry's completeness test skips
modules whose name starts with ``_``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from patchpilot.inventory.sources.purl_map import map_purl
from patchpilot.knowledge.versions import VersionError, version_key
from patchpilot.models import Package

# Advisory ids a report may name (OSV's id prefixes, https://ossf.github.io/osv-schema/,
# plus Snyk's and Black Duck's).  GHSA ids use GitHub's 8 letter alphabet.
ADVISORY_ID = re.compile(
    r"\b(?:CVE-\d{4}-\d{4,}"
    r"|GHSA(?:-[23456789cfghjmpqrvwx]{4}){3}"
    r"|(?:GO|PYSEC|RUSTSEC|OSV|MAL|BIT|BDSA|GMS|DSA|DLA|USN|RHSA|ALSA|RLSA|ELSA)"
    r"-\d{4}-[\dA-Za-z:.-]*\d"
    r"|SNYK-[A-Z0-9]+(?:-[A-Z0-9]+)*-\d+)\b",
    re.IGNORECASE)


def advisory_ids(*texts: str | None) -> tuple[str, ...]:
    """Every advisory id in ``texts``, in order, once each (CVE, GHSA, GO, PYSEC …);
    CVE/GHSA/GO… prefixes upper-cased, a GHSA's letters lower-cased as GitHub writes
    them."""
    found: dict[str, None] = {}
    for text in texts:
        for match in ADVISORY_ID.findall(text or ""):
            prefix, _, rest = match.partition("-")
            prefix = prefix.upper()
            found[f"{prefix}-{rest.lower() if prefix == 'GHSA' else rest.upper()}"] = None
    return tuple(found)


def split_ids(ids: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(cves, others)`` of a list of advisory ids, each once, order kept."""
    unique = list(dict.fromkeys(i for i in ids if i))
    cves = tuple(i for i in unique if i.upper().startswith("CVE-"))
    return cves, tuple(i for i in unique if not i.upper().startswith("CVE-"))


# What is left of a version without its leading release number: "-jre", "-android".
_FLAVOUR = re.compile(r"^v?[\d.]+")


def nearest_fixed(ecosystem: str | None, installed: str | None,
                  candidates: Iterable[str]) -> str | None:
    """The lowest of ``candidates`` above ``installed`` (a report lists a fix per release
    line: ``["2.12.2", "2.16.0"]``), one of the installed version's flavour first
    (``29.0-jre`` -> ``30.0-jre``, not ``30.0-android``); when the versions cannot be
    compared, the first."""
    fixes = list(dict.fromkeys(c for c in candidates if c))
    if len(fixes) <= 1 or not ecosystem or not installed:
        return fixes[0] if fixes else None
    try:
        current = version_key(ecosystem, installed)
        above = sorted((version_key(ecosystem, f), f) for f in fixes
                       if version_key(ecosystem, f) > current)
    except VersionError:
        return fixes[0]
    flavour = _FLAVOUR.sub("", installed)
    same = [fix for _key, fix in above if flavour and _FLAVOUR.sub("", fix) == flavour]
    return same[0] if same else above[0][1] if above else fixes[0]


def purl_package(purl: str | None, location: str | None = None) -> Package | None:
    """The package a purl names, or None when it names none PatchPilot matches (the
    item then keeps the report's own name and version)."""
    if not purl:
        return None
    mapped = map_purl(purl, location, None)
    return mapped if isinstance(mapped, Package) else None
