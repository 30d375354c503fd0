"""Anchore Engine / Anchore Enterprise vulnerability reports.

Two shapes:

* ``anchore-cli image vuln <image> all --json`` (Engine): ``imageDigest`` and
  ``vulnerabilities``, each with the package's name, version, type and path, the fix
  (``"None"`` when there is none) and NVD/vendor CVSS scores (no vectors; ``-1`` for none);
* the Enterprise export (``anchorectl image vulnerabilities -o json``, 2025):
  ``metadata`` (registry, repository, tag) and ``securityEvaluation``, whose ``package``
  is ``name-version`` in one string and whose ``fixAvailable`` may list one fix per branch.

The target is the image: by name when the report gives one, else by its digest.
"""

from __future__ import annotations

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
    cve_ids,
    read_json,
    text_or_none,
)

_NO_FIX = {"none", "n/a", ""}
# Where an OS package's rpm or dpkg database is, not a file the package is in.
_DATABASES = {"pkgdb", "/var/lib/dpkg/status", "/var/lib/rpm/Packages", "/lib/apk/db/installed"}


def detect(sniff: Sniff) -> int:
    keys = sniff.json_keys
    if {"imageDigest", "vulnerabilities"} <= keys:
        return 100
    if {"metadata", "securityEvaluation"} <= keys:
        return 100
    return 0


def _fix(text: Any, installed: str | None) -> str | None:
    value = text_or_none(text)
    if value is None or value.lower() in _NO_FIX:
        return None
    return pick_fix(value, installed)


def _score(records: Any) -> float | None:
    """The first CVSS v3, else v2, base score of NVD/vendor records (``-1``: none)."""
    for key in ("cvss_v3", "cvss_v2"):
        for record in records if isinstance(records, list) else []:
            score = (record.get(key) or {}).get("base_score")
            if isinstance(score, (int, float)) and score >= 0:
                return float(score)
    return None


def _split_package(package: str, kind: str | None) -> tuple[str, str | None]:
    """``name-version`` into its parts: rpm's last two dash-parts are version-release
    (``cups-libs-1:2.2.6-61.el8_10``), other packages' version starts at the last dash
    before a digit (``tomcat-embed-core-9.0.97``)."""
    if (kind or "").lower() == "rpm" and package.count("-") >= 2:
        name, version, release = package.rsplit("-", 2)
        return name, f"{version}-{release}"
    # The last "-<digit>" split, so names with digits ("java-11-openjdk") stay whole.
    parts = package.split("-")
    for index in range(len(parts) - 1, 0, -1):
        if parts[index][:1].isdigit():
            return "-".join(parts[:index]), "-".join(parts[index:])
    return package, None


def _engine(report: dict[str, Any], source: str) -> Iterator[ReportItem | Target]:
    target = Target(artifact=text_or_none(report.get("imageDigest")))
    yield target
    for vuln in report.get("vulnerabilities") or []:
        if not isinstance(vuln, dict):
            raise ReportError(source, "an Anchore vulnerability is not an object")
        vuln_id = text_or_none(vuln.get("vuln")) or "unknown"
        installed = text_or_none(vuln.get("package_version"))
        location = text_or_none(vuln.get("package_path"))
        nvd = vuln.get("nvd_data") or []
        yield ReportItem(
            target=target,
            scanner_id=vuln_id,
            cves=cve_ids(vuln_id, [str(r.get("id") or "") for r in nvd if isinstance(r, dict)]),
            ecosystem=ecosystem_of(None, vuln.get("package_type"), None),
            package=text_or_none(vuln.get("package_name")) or text_or_none(vuln.get("package")),
            installed_version=installed,
            fixed_version=_fix(vuln.get("fix"), installed),
            location=None if location in _DATABASES else location,
            severity=band(vuln.get("severity")),
            cvss_score=_score(nvd) or _score(vuln.get("vendor_data")),
            references=(str(vuln["url"]),) if text_or_none(vuln.get("url")) else (),
        )


def _enterprise(report: dict[str, Any], source: str) -> Iterator[ReportItem | Target]:
    metadata = report.get("metadata") or {}
    target = Target(artifact=image_name(metadata.get("registry"), metadata.get("repository"),
                                        metadata.get("tag"), metadata.get("imageDigest"))
                    or text_or_none(metadata.get("imageDigest")))
    yield target
    for vuln in report.get("securityEvaluation") or []:
        if not isinstance(vuln, dict):
            raise ReportError(source, "an Anchore security evaluation is not an object")
        vuln_id = text_or_none(vuln.get("vulnerabilityId")) or "unknown"
        kind = text_or_none(vuln.get("packageType"))
        name, installed = _split_package(str(vuln.get("package") or ""), kind)
        location = text_or_none(vuln.get("path"))
        score = vuln.get("nvdCvssBaseScore")  # "N/A" when NVD has none
        yield ReportItem(
            target=target,
            scanner_id=vuln_id,
            cves=cve_ids(vuln_id, vuln.get("cves")),
            ecosystem=ecosystem_of(None, kind, None),
            package=name or None,
            installed_version=installed,
            fixed_version=_fix(vuln.get("fixAvailable"), installed),
            location=None if location in _DATABASES else location,
            severity=band(vuln.get("severity")),
            cvss_score=float(score) if isinstance(score, (int, float)) else None,
            references=(str(vuln["link"]),) if text_or_none(vuln.get("link")) else (),
        )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    report = read_json(stream, source)
    if isinstance(report, dict) and "securityEvaluation" in report:
        yield from _enterprise(report, source)
    elif isinstance(report, dict) and "vulnerabilities" in report:
        yield from _engine(report, source)
    else:
        raise ReportError(source, "not an Anchore report: no vulnerabilities and no "
                                  "securityEvaluation")


FORMAT = Format(
    name="anchore-engine", producer="anchore", title="Anchore Engine / Enterprise JSON",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every vulnerability of the Engine's vuln list or the Enterprise securityEvaluation "
          "on its package; scores only (the reports carry no CVSS vectors).")
