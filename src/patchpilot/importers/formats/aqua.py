"""Aqua Security image scans (JSON).

Shapes read:

* the scanner CLI / API v1 scan result (``image``, ``os``, ``version``, ``resources``):
  each resource (a package, or a file Aqua matched by hash) with its vulnerabilities;
* the Aqua DevOps list: ``[{"image_name", "results": <a scan result>}]``, one per image;
* the older API v2 image report (``image_name``, ``registry``, ``cves``): one row per
  CVE with the file it is in;
* the API v2 vulnerability list (``result``, ``query``, paging keys): rows like a scan
  result's vulnerabilities, each with its ``resource`` and ``image_name``.

The severity is Aqua's own (``aqua_severity``, else the NVD's); the vector the NVD's v3,
else Aqua's, else the NVD's v2.  ``fix_version`` is free text in older scans: only a list
of versions is read, prose is left in the solution.  Sensitive data (keys found in files)
is not a vulnerability: counted as skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._images import ecosystem_of, pick_fix
from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    cve_ids,
    cwe_ids,
    ecosystem_for,
    number,
    read_json,
    text_or_none,
)

_DEVOPS = re.compile(r'^\s*\[\s*\{\s*"image_name"\s*:')
# A version: no spaces, starts with a digit or a letter-digit mix ("4.0.0.M3", "v1.2").
_VERSION = re.compile(r"^v?\d[\w.+~:-]*$")


def detect(sniff: Sniff) -> int:
    keys = sniff.json_keys
    if "image" in keys and keys & {"resources", "scan_started"}:
        return 100
    if "image_name" in keys and keys & {"cves", "cves_counts"}:
        return 100
    if {"result", "query", "more_data_all_pages"} <= keys:
        return 100
    if sniff.json_list and _DEVOPS.match(sniff.text) and '"results"' in sniff.text:
        return 100
    return 0


def _fix(text: Any, installed: str | None) -> str | None:
    """The fixed version from ``fix_version``: its first line when that is a list of
    versions (``"7.23.2, 8.0.0-alpha.4"``), else None (prose: "The vendor has issued …")."""
    first = (text_or_none(text) or "").splitlines()[0:1]
    if not first:
        return None
    parts = [p.strip() for p in first[0].split(",") if p.strip()]
    if not parts or not all(_VERSION.match(p) for p in parts):
        return None
    return pick_fix(", ".join(parts), installed)


def _vector(vuln: dict[str, Any]) -> tuple[str | None, float | None]:
    for vector_key, score_key in (("nvd_vectors_v3", "nvd_score_v3"),
                                  ("vendor_vectors_v3", "vendor_score_v3"),
                                  ("aqua_vectors", "aqua_score"),
                                  ("nvd_vectors", "nvd_score"),
                                  ("vendor_vectors", "vendor_score")):
        vector = text_or_none(vuln.get(vector_key))
        if vector:
            return vector, number(vuln.get(score_key))
    for score_key in ("aqua_score", "nvd_score_v3", "nvd_score", "score"):
        score = number(vuln.get(score_key))
        if score is not None:
            return None, score
    return None, None


def _severity(vuln: dict[str, Any]) -> str:
    for key in ("aqua_severity", "severity", "nvd_severity_v3", "nvd_severity",
                "vendor_severity"):
        severity = band(vuln.get(key))
        if severity != "Unknown":
            return severity
    return "Unknown"


def _item(target: Target, distro: str | None, resource: dict[str, Any],
          vuln: dict[str, Any]) -> ReportItem:
    vuln_id = text_or_none(vuln.get("name")) or "unknown"
    installed = text_or_none(resource.get("version"))
    vector, score = _vector(vuln)
    urls = [u for u in (vuln.get("nvd_url"), vuln.get("vendor_url"), vuln.get("url"))
            if text_or_none(u)]
    return ReportItem(
        target=target,
        scanner_id=vuln_id,
        cves=cve_ids(vuln_id),
        description=text_or_none(vuln.get("description")),
        ecosystem=ecosystem_of(None, resource.get("format"), distro),
        package=text_or_none(resource.get("name")),
        installed_version=installed,
        fixed_version=_fix(vuln.get("fix_version"), installed),
        location=text_or_none(resource.get("path")) or text_or_none(vuln.get("file")),
        severity=_severity(vuln),
        cvss_vector=vector,
        cvss_score=score,
        solution=text_or_none(vuln.get("solution")),
        references=tuple(dict.fromkeys(str(u).strip() for u in urls)),
        cwes=cwe_ids([str(c.get("Id") or "") for c in vuln.get("cwe_info") or []
                      if isinstance(c, dict)]),
    )


def _scan(scan: dict[str, Any], name: str | None) -> Iterator[ReportItem | Target | Skipped]:
    """One scan result (CLI, API v1, or a DevOps list entry's ``results``)."""
    os_name, release = text_or_none(scan.get("os")), text_or_none(scan.get("version"))
    target = Target(artifact=text_or_none(scan.get("image")) or name,
                    os=f"{os_name} {release}" if os_name and release else os_name)
    yield target
    distro = ecosystem_for(os_name, release)
    for node in scan.get("resources") or []:
        resource = node.get("resource") or {}
        for _item_name in resource.get("sensitive_items") or []:
            yield Skipped("sensitive data")
        for vuln in node.get("vulnerabilities") or []:
            yield _item(target, distro, resource, vuln)


def _image_report(report: dict[str, Any]) -> Iterator[ReportItem | Target]:
    """The older API v2 image report: one row per CVE, the file in ``file``."""
    target = Target(artifact=text_or_none(report.get("image_name")))
    yield target
    for row in report.get("cves") or []:
        yield _item(target, None, {}, row)


def _vulnerability_list(report: dict[str, Any]) -> Iterator[ReportItem | Target]:
    """The API v2 vulnerability list: rows of any image (the query names the one asked)."""
    query = report.get("query") or {}
    targets: dict[str | None, Target] = {}
    asked = text_or_none(query.get("image_name"))
    if asked:
        targets[asked] = Target(artifact=asked)
        yield targets[asked]
    for row in report.get("result") or []:
        image = text_or_none(row.get("image_name")) or asked
        if image not in targets:
            targets[image] = Target(artifact=image)
            yield targets[image]
        yield _item(targets[image], None, row.get("resource") or {}, row)


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    report = read_json(stream, source)
    if isinstance(report, list):
        for entry in report:
            if not isinstance(entry, dict) or not isinstance(entry.get("results"), dict):
                raise ReportError(source, "an Aqua DevOps entry has no results object")
            yield from _scan(entry["results"], text_or_none(entry.get("image_name")))
    elif not isinstance(report, dict):
        raise ReportError(source, "not an Aqua report: the document is not an object")
    elif "resources" in report or "image" in report:
        yield from _scan(report, None)
    elif "cves" in report or "cves_counts" in report:
        yield from _image_report(report)
    elif "result" in report and "query" in report:
        yield from _vulnerability_list(report)
    elif report:
        raise ReportError(source, "not an Aqua report: no resources, cves or result")
    # {}: what the Aqua plugins write for an image without findings -- nothing to import.


FORMAT = Format(
    name="aqua", producer="aqua", title="Aqua Security image scan (JSON)",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every vulnerability of a CLI/API v1 scan, a DevOps list, an API v2 image report "
          "or vulnerability list; sensitive data is skipped, malware and policy results "
          "are not read.")
