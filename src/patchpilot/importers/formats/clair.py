"""Clair image scans as the Clair v2 clients write them (JSON).

* clair-scanner (``--report``): ``image``, ``unapproved`` (the ids not whitelisted) and
  ``vulnerabilities``, each with its feature (package), namespace (``ubuntu:18.04``) and
  ``fixedby``;
* klar: ``LayerCount`` and ``Vulnerabilities`` grouped by severity
  (``{"High": [...]}``); klar names no image, so its target is empty (the import puts
  the items on the asset the user names).

Each vulnerability is one item on its package, the ecosystem from its namespace.  An
advisory id (``RHSA-2019:0109``) stays the scanner id; the CVEs its description names are
its CVEs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._images import same_epoch
from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    cve_ids,
    ecosystem_for,
    read_json,
    text_or_none,
)

# Clair's severities beyond the common words (Clair v2 ``database/severity.go``).
_SEVERITY = {"defcon1": "Critical", "negligible": "Low", "unknown": "Unknown"}


def detect(sniff: Sniff) -> int:
    keys = sniff.json_keys
    if {"LayerCount", "Vulnerabilities"} <= keys:
        return 100
    if {"image", "unapproved", "vulnerabilities"} <= keys:
        return 100
    return 0


def _ecosystem(namespace: str | None) -> str | None:
    if not namespace:
        return None
    name, _, release = namespace.partition(":")
    return ecosystem_for(name, release or None) or namespace


def _item(target: Target, vuln: dict[str, Any]) -> ReportItem:
    # clair-scanner writes the keys in lower case, klar as Clair's API does.
    get = {k.lower(): v for k, v in vuln.items()}.get
    vuln_id = text_or_none(get("vulnerability")) or text_or_none(get("name")) or "unknown"
    installed = text_or_none(get("featureversion"))
    description = text_or_none(get("description"))
    severity = str(get("severity") or "")
    link = text_or_none(get("link"))
    return ReportItem(
        target=target,
        scanner_id=vuln_id,
        cves=cve_ids(vuln_id) or cve_ids(description),
        description=description,
        ecosystem=_ecosystem(text_or_none(get("namespace")) or text_or_none(
            get("namespacename"))),
        package=text_or_none(get("featurename")),
        installed_version=installed,
        fixed_version=same_epoch(text_or_none(get("fixedby")), installed),
        severity=_SEVERITY.get(severity.lower()) or band(severity),
        references=(link,) if link else (),
    )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    report = read_json(stream, source)
    if not isinstance(report, dict):
        raise ReportError(source, "not a Clair report: the document is not an object")
    if "LayerCount" in report or isinstance(report.get("Vulnerabilities"), dict):
        target = Target()
        yield target
        for group in (report.get("Vulnerabilities") or {}).values():
            for vuln in group or []:
                yield _item(target, vuln)
    elif "vulnerabilities" in report:
        target = Target(artifact=text_or_none(report.get("image")))
        yield target
        for vuln in report.get("vulnerabilities") or []:
            yield _item(target, vuln)
    else:
        raise ReportError(source, "not a Clair report: no vulnerabilities")


FORMAT = Format(
    name="clair", producer="clair", title="Clair (clair-scanner, klar) JSON",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every vulnerability of a clair-scanner report or a klar report on its package; "
          "the unapproved list (whitelisting) is not read.")
