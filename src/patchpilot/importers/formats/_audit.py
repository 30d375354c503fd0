"""What the dependency-audit readers share: the first fixed version from a tool's
constraint strings, and the npm advisory shape ``npm audit`` v6 and ``yarn audit`` both
print.

Audit tools say "patched: ``>=1.10.2``" or "upgrade to ``~> 1.6.11, >= 2.0.6``" rather
than a version; the item's ``fixed_version`` is the lowest lower bound above the installed
version (what an upgrade has to reach), compared under the ecosystem's own version rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from patchpilot.errors import VersionError
from patchpilot.importers.model import (
    ReportItem,
    Target,
    band,
    cve_ids,
    cwe_ids,
    text_or_none,
)
from patchpilot.knowledge.cvss import metric_from_vector
from patchpilot.knowledge.versions import compare

# A lower bound an upgrade can reach: ">= 1.2.3", "~> 2.1.3" (Ruby), "^1.2" / "~1.2" (npm).
# A strict "> 1.2.3" names no version to install, so it is not one.
_LOWER = re.compile(r"(?:>=|~>|\^|~)\s*v?(\d[^\s,|<>='\")]*)")
# An upper bound of a vulnerable range: "< 2.6.9" (the first version past it is fixed).
_BELOW = re.compile(r"(?<![<>=])<\s*v?(\d[^\s,|<>='\")]*)")


def _newer(ecosystem: str, a: str, b: str) -> bool | None:
    try:
        return compare(ecosystem, a, b) > 0
    except VersionError:
        return None


def _lowest(ecosystem: str, versions: list[str]) -> str | None:
    best: str | None = None
    for version in versions:
        if best is None or _newer(ecosystem, best, version):
            best = version
    return best


def first_fix(ecosystem: str, installed: str | None,
              constraints: Iterable[str] | str | None) -> str | None:
    """The lowest version a patched constraint allows that is newer than ``installed``
    (``>=0.6.14, <1.0.0`` / ``>=1.6.1`` and 0.6.13 -> ``0.6.14``); without an installed
    version, the one bound when there is only one.  None when the constraints name none."""
    if constraints is None:
        return None
    texts = [constraints] if isinstance(constraints, str) else list(constraints)
    bounds = list(dict.fromkeys(m for t in texts if t for m in _LOWER.findall(t)))
    if installed is None:
        return bounds[0] if len(bounds) == 1 else None
    newer = [b for b in bounds if _newer(ecosystem, b, installed)]
    return _lowest(ecosystem, newer)


def fix_past(vulnerable: str | None) -> str | None:
    """The fixed version a vulnerable range implies when it has one upper bound
    (``<2.6.9`` -> ``2.6.9``); None for ranges with several (``<3.0.8 || >=4.0.0
    <4.5.3``: which one applies depends on the installed version, which is not given)."""
    if not vulnerable:
        return None
    bounds = set(_BELOW.findall(vulnerable))
    return bounds.pop() if len(bounds) == 1 else None


def npm_scanner_id(advisory: dict[str, Any]) -> str:
    """GitHub's advisory id where the npm advisory carries it (it is what the registry
    answers today), else ``npm:<id>`` (the retired npm advisory numbers)."""
    ghsa = text_or_none(advisory.get("github_advisory_id"))
    if ghsa is None:
        url = text_or_none(advisory.get("url")) or ""
        match = re.search(r"GHSA(?:-[23456789cfghjmpqrvwx]{4}){3}", url)
        ghsa = match.group(0) if match else None
    return ghsa or f"npm:{advisory.get('id')}"


def npm_advisory_items(target: Target, advisory: dict[str, Any], *,
                       line: int | None = None) -> Iterator[ReportItem]:
    """One item per installed version of an npm-shaped advisory (``npm audit`` v6's
    ``advisories`` values, ``yarn audit``'s ``auditAdvisory`` data): the dependency paths
    that pull the version in are the item's evidence."""
    name = text_or_none(advisory.get("module_name"))
    paths: dict[str, list[str]] = {}
    for finding in advisory.get("findings") or ():
        version = text_or_none(finding.get("version"))
        if version is not None:
            paths.setdefault(version, []).extend(finding.get("paths") or ())
    cvss = advisory.get("cvss") or {}
    metric = metric_from_vector(str(cvss.get("vectorString") or ""))
    severity = band(advisory.get("severity"))
    references = re.findall(r"https?://[^\s)\]]+", str(advisory.get("references") or ""))
    url = text_or_none(advisory.get("url"))
    for version, where in paths.items():
        yield ReportItem(
            target=target,
            scanner_id=npm_scanner_id(advisory),
            cves=cve_ids(advisory.get("cves") or ()),
            title=text_or_none(advisory.get("title")),
            description=text_or_none(advisory.get("overview")),
            ecosystem="npm",
            package=name,
            installed_version=version,
            fixed_version=first_fix("npm", version, advisory.get("patched_versions")),
            severity=severity,
            cvss_vector=metric.vector if metric else None,
            cvss_score=metric.score if metric else None,
            solution=text_or_none(advisory.get("recommendation")),
            references=tuple(dict.fromkeys([*([url] if url else []), *references])),
            cwes=cwe_ids(advisory.get("cwe")),
            # npm's "info" severity: a notice about the package, not a vulnerability.
            informational=severity == "None",
            output="\n".join(dict.fromkeys(where)) or None,
            line=line,
        )
