"""Prisma Cloud Compute (Twistlock) image scans: the ``twistcli images scan
--output-file`` JSON and the Console's vulnerability CSV export.

JSON: ``results``, one per image (its name, else its digest, and its distro), each with
``vulnerabilities`` (``packageName`` is the source package, with the binaries it builds in
brackets: ``glibc (used in libc6, libc-bin)``; ``status`` says ``fixed in 4.1.3, 4.0.9``
or ``open``) and ``compliances`` (configuration checks: skipped).  When the report lists
``packages`` their type tells an OS package from an application one.

CSV: one row per CVE or compliance check, the image in Registry/Repository/Tag.  The
header names two columns ``Type``: the second (the package's type) is the one read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._images import ecosystem_of, image_name, pick_fix
from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    csv_rows,
    cve_ids,
    ecosystem_for,
    read_json,
    text_or_none,
)

_JSON_MARKS = ('"vulnerabilityDistribution"', '"complianceDistribution"')
_CSV_COLUMNS = {"cve id", "compliance id", "fix status", "packages"}
_VERSION = re.compile(r"^v?\d[\w.+~:-]*$")
# "Debian GNU/Linux 9 (stretch)", "Rocky Linux 9.5 (Blue Onyx)": the first word and number.
_DISTRO = re.compile(r"^\s*(?P<name>[A-Za-z]+)\D*?(?P<release>\d+(?:\.\d+)*)")


def detect(sniff: Sniff) -> int:
    if "results" in sniff.json_keys and any(m in sniff.text for m in _JSON_MARKS):
        return 100
    return 0


def detect_csv(sniff: Sniff) -> int:
    return 100 if _CSV_COLUMNS <= set(sniff.csv_header) else 0


def _fix(status: Any, installed: str | None) -> str | None:
    """The version of ``"fixed in 1.2.11"`` / ``"fixed in 4.1.3, 4.0.9"`` for the
    installed one; None for ``open`` and for fixes given in words only."""
    text = text_or_none(status)
    if not text or not text.lower().startswith("fixed in"):
        return None
    parts = [p.strip().lstrip("><=~ ") for p in text[len("fixed in"):].split(",")]
    return pick_fix(", ".join(p for p in parts if _VERSION.match(p)), installed)


def _distro(text: str | None) -> str | None:
    found = _DISTRO.match(text or "")
    return ecosystem_for(found.group("name"), found.group("release")) if found else None


def _package_name(text: str | None) -> str | None:
    """``glibc (used in libc6, libc-bin)`` -> ``glibc``."""
    return text_or_none((text or "").split(" (", 1)[0])


def _json_item(target: Target, vuln: dict[str, Any], kinds: dict[str, str],
               distro: str | None) -> ReportItem:
    vuln_id = text_or_none(vuln.get("id")) or "unknown"
    package = _package_name(vuln.get("packageName"))
    installed = text_or_none(vuln.get("packageVersion"))
    kind = kinds.get(package or "")
    score = vuln.get("cvss")
    return ReportItem(
        target=target,
        scanner_id=vuln_id,
        cves=cve_ids(vuln_id),
        description=text_or_none(vuln.get("description")),
        ecosystem=(distro if kind == "os" else ecosystem_of(None, kind, distro))
        if kind else None,
        package=package,
        installed_version=installed,
        fixed_version=_fix(vuln.get("status"), installed),
        location=text_or_none(vuln.get("packagePath")),
        severity=band(vuln.get("severity")),
        cvss_vector=text_or_none(vuln.get("vector")),
        cvss_score=float(score) if isinstance(score, (int, float)) else None,
        references=(str(vuln["link"]).strip(),) if text_or_none(vuln.get("link")) else (),
    )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    report = read_json(stream, source)
    if not isinstance(report, dict) or not isinstance(report.get("results"), list):
        raise ReportError(source, "not a Twistlock report: no list of results")
    for result in report["results"]:
        if not isinstance(result, dict):
            raise ReportError(source, "a Twistlock result is not an object")
        os_name = text_or_none(result.get("distro"))
        target = Target(artifact=text_or_none(result.get("name")) or text_or_none(
            result.get("id")), os=os_name)
        yield target
        distro = _distro(os_name)
        kinds = {str(p.get("name")): str(p.get("type")) for p in result.get("packages") or []
                 if isinstance(p, dict) and p.get("name") and p.get("type")}
        for vuln in result.get("vulnerabilities") or []:
            yield _json_item(target, vuln, kinds, distro)
        for _check in result.get("compliances") or []:
            yield Skipped("compliance check")


def parse_csv(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    targets: dict[str | None, Target] = {}
    for line, row in csv_rows(stream, source):
        if not _CSV_COLUMNS <= {k.lower() for k in row}:
            raise ReportError(source, "not a Twistlock CSV: no CVE ID/Compliance ID/Fix "
                                      "Status/Packages columns", line=line)
        artifact = image_name(row.get("Registry"), row.get("Repository"), row.get("Tag"),
                              row.get("Id"))
        if artifact not in targets:
            targets[artifact] = Target(artifact=artifact, os=text_or_none(row.get("Distro")))
            yield targets[artifact]
        target = targets[artifact]
        vuln_id = text_or_none(row.get("CVE ID"))
        if vuln_id is None:
            yield Skipped("compliance check", line=line)
            continue
        installed = text_or_none(row.get("Package Version"))
        score = text_or_none(row.get("CVSS"))
        try:
            cvss = float(score) if score else None
        except ValueError:
            cvss = None
        yield ReportItem(
            target=target,
            scanner_id=vuln_id,
            cves=cve_ids(vuln_id),
            description=text_or_none(row.get("Description")),
            # The second "Type" column (the package's) is the one the dict kept.
            ecosystem=ecosystem_of(None, row.get("Type"), None),
            package=_package_name(row.get("Packages")),
            installed_version=installed,
            fixed_version=_fix(row.get("Fix Status"), installed),
            severity=band(row.get("Severity")),
            cvss_score=cvss,
            line=line,
        )


FORMAT = Format(
    name="twistlock", producer="twistlock", title="Prisma Cloud / Twistlock JSON (twistcli)",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every vulnerability of every image result on its package; compliance checks are "
          "skipped.")

FORMAT_CSV = Format(
    name="twistlock-csv", producer="twistlock", title="Prisma Cloud / Twistlock CSV export",
    detect=detect_csv, parse=parse_csv, extensions=(".csv",),
    notes="Every CVE row on its package and image; compliance rows are skipped; the CVSS "
          "vector is not in the export.")
