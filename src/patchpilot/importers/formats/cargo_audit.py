"""``cargo audit --json``: RustSec advisories against a ``Cargo.lock``.

``vulnerabilities.list`` gives one item per advisory and crate version; the fixed version
is the lowest ``versions.patched`` bound above the installed one.  ``warnings`` (by kind:
``unmaintained``, ``unsound``, ``notice`` …) carry RustSec's *informational* advisories --
cargo audit warns about them without failing -- so they are informational items; a
``yanked`` warning has no advisory (the crate version was pulled from crates.io) and is
counted as skipped.  The report names no project: an empty :class:`Target`, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO, Any

from patchpilot.importers.formats._audit import first_fix
from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    cve_ids,
    read_json,
    text_or_none,
)
from patchpilot.knowledge.cvss import metric_from_vector


def detect(sniff: Sniff) -> int:
    return 100 if {"database", "lockfile", "vulnerabilities"} <= sniff.json_keys else 0


def _item(target: Target, entry: dict[str, Any], *, informational: bool) -> ReportItem:
    advisory = entry.get("advisory") or {}
    package = entry.get("package") or {}
    version = text_or_none(package.get("version"))
    aliases = [str(a) for a in advisory.get("aliases") or ()]
    metric = metric_from_vector(str(advisory.get("cvss") or ""))
    url = text_or_none(advisory.get("url"))
    references = [str(r) for r in advisory.get("references") or ()]
    kind = text_or_none(advisory.get("informational"))
    return ReportItem(
        target=target,
        scanner_id=str(advisory.get("id")),
        cves=cve_ids(aliases),
        aliases=tuple(a for a in aliases if not a.upper().startswith("CVE-")),
        title=text_or_none(advisory.get("title")),
        description=text_or_none(advisory.get("description")),
        ecosystem="crates.io",
        package=text_or_none(package.get("name")) or text_or_none(advisory.get("package")),
        installed_version=version,
        fixed_version=first_fix("crates.io", version,
                                (entry.get("versions") or {}).get("patched")),
        severity=metric.severity if metric else "Unknown",
        cvss_vector=metric.vector if metric else None,
        cvss_score=metric.score if metric else None,
        references=tuple(dict.fromkeys([*([url] if url else []), *references])),
        informational=informational,
        output=f"RustSec informational advisory: {kind}" if kind else None,
    )


def _warnings(data: dict[str, Any]) -> Iterable[dict[str, Any]]:
    warnings = data.get("warnings") or {}
    if isinstance(warnings, dict):  # cargo-audit 0.12+: by kind
        return [w for group in warnings.values() for w in group or ()]
    return list(warnings)  # older: one list


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    data = read_json(stream, source)
    vulnerabilities = data.get("vulnerabilities") if isinstance(data, dict) else None
    if not isinstance(vulnerabilities, dict):
        raise ReportError(source, "not a cargo audit report: no 'vulnerabilities' object")
    target = Target()
    yield target
    for entry in vulnerabilities.get("list") or ():
        yield _item(target, entry, informational=False)
    for warning in _warnings(data):
        if warning.get("advisory"):
            yield _item(target, warning, informational=True)
        else:
            yield Skipped(f"{warning.get('kind') or 'unknown'} crate warning")


FORMAT = Format(
    name="cargo-audit", producer="cargo-audit", title="cargo audit --json (RustSec)",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every vulnerability, and the informational advisories (unmaintained, unsound, "
          "notice) as informational items; yanked-crate warnings are counted as skipped, "
          "and the report names no project.")
