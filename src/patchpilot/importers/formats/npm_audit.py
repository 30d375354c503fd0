"""``npm audit --json``: the v6 report (``advisories`` keyed by advisory number) and the
npm 7+ report (``auditReportVersion: 2``, ``vulnerabilities`` keyed by package name).

Neither names the project, so both give an empty :class:`Target` (the import puts the
items on the asset the user names), once per report -- an audit with no vulnerabilities
still covers its project, and its re-import closes what was fixed.

* v6: one item per advisory and installed version (``findings[].version``), the
  dependency paths as evidence; the fixed version is the lowest ``patched_versions``
  bound above the installed one.
* 7+: one item per advisory object in a package's ``via`` (a ``via`` that is a bare
  package name only says the package is affected through that dependency, which has an
  entry of its own).  npm 7 gives no installed version: the fixed version is the upper
  bound of the advisory's vulnerable ``range`` when it has one, and ``fixAvailable`` (the
  top-level package to install) becomes the solution.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._audit import fix_past, npm_advisory_items, npm_scanner_id
from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    cwe_ids,
    read_json,
    text_or_none,
)
from patchpilot.knowledge.cvss import metric_from_vector


def detect(sniff: Sniff) -> int:
    keys = sniff.json_keys
    return 100 if "advisories" in keys and ("actions" in keys or "muted" in keys) else 0


def detect_7(sniff: Sniff) -> int:
    return 100 if "auditReportVersion" in sniff.json_keys else 0


def _report(stream: IO[bytes], source: str, key: str) -> dict[str, Any]:
    data = read_json(stream, source)
    if not isinstance(data, dict):
        raise ReportError(source, "not an npm audit report: the document is not an object")
    error = data.get("error")
    if isinstance(error, dict):  # npm prints its failures as JSON too (ENOLOCK, …)
        raise ReportError(source, f"npm audit failed: {error.get('code')}: "
                                  f"{error.get('summary') or error.get('detail')}")
    if not isinstance(data.get(key), dict):
        raise ReportError(source, f"not an npm audit report: no {key!r} object")
    return data


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    data = _report(stream, source, "advisories")
    target = Target()
    yield target
    for advisory in data["advisories"].values():
        yield from npm_advisory_items(target, advisory)


def _solution(fix: Any) -> str | None:
    if fix is True:
        return "Run npm audit fix."
    if isinstance(fix, dict) and fix.get("name"):
        major = " (a semver-major change)" if fix.get("isSemVerMajor") else ""
        return f"Install {fix['name']}@{fix.get('version')}{major}."
    return None


def parse_7(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    data = _report(stream, source, "vulnerabilities")
    version = data.get("auditReportVersion")
    if version != 2:
        raise ReportError(source, f"npm audit report version {version!r} is not supported "
                                  "(this reader knows version 2)")
    target = Target()
    yield target
    seen: set[tuple[str, str | None]] = set()
    for entry in data["vulnerabilities"].values():
        nodes = [str(n) for n in entry.get("nodes") or ()]
        for via in entry.get("via") or ():
            if not isinstance(via, dict):
                continue  # affected through another package, reported under its own name
            scanner_id = npm_scanner_id({"url": via.get("url"), "id": via.get("source")})
            package = text_or_none(via.get("name")) or text_or_none(entry.get("name"))
            if (scanner_id, package) in seen:
                continue
            seen.add((scanner_id, package))
            cvss = via.get("cvss") or {}
            metric = metric_from_vector(str(cvss.get("vectorString") or ""))
            severity = band(via.get("severity"))
            url = text_or_none(via.get("url"))
            yield ReportItem(
                target=target,
                scanner_id=scanner_id,
                title=text_or_none(via.get("title")),
                ecosystem="npm",
                package=package,
                fixed_version=fix_past(text_or_none(via.get("range"))),
                location=nodes[0] if nodes else None,
                severity=severity,
                cvss_vector=metric.vector if metric else None,
                cvss_score=metric.score if metric else None,
                solution=_solution(entry.get("fixAvailable")),
                references=(url,) if url else (),
                cwes=cwe_ids(via.get("cwe")),
                informational=severity == "None",
                output="\n".join(nodes) or None,
            )


FORMAT = Format(
    name="npm-audit", producer="npm-audit", title="npm audit --json (npm 6)",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every advisory once per installed version with its dependency paths; the "
          "report names no project (give the asset) and the 'actions' list is not read.")

FORMAT_7 = Format(
    name="npm-audit-7", producer="npm-audit", title="npm audit --json (npm 7 and later)",
    detect=detect_7, parse=parse_7, extensions=(".json",),
    notes="Every advisory in a package's 'via' list (no installed version: npm 7 does not "
          "print it); packages affected only through a dependency are that dependency's "
          "items, and the report names no project (give the asset).")
