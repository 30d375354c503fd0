"""Trivy JSON (``trivy image|fs|repo|sbom -f json``, ``trivy k8s -f json``).

Four shapes, all read here:

* schema 2 (``SchemaVersion``, ``ArtifactName``, ``Results``): one artifact -- an image,
  a directory, a repository, an SBOM -- and one result per OS or lock file;
* the Kubernetes cluster report (``ClusterName`` with ``Resources``, or with
  ``Vulnerabilities`` and ``Misconfigurations`` before Trivy 0.50): one entry per workload,
  each with its own results;
* the legacy list (Trivy < 0.20): the results themselves, ``[{"Target", "Type",
  "Vulnerabilities"}]``;
* ``null``: what the legacy format wrote for a scan without results.

Each vulnerability is one item on its package (the ecosystem from the purl, else from the
result's type word and the image's OS).  Misconfigurations, secrets and license findings
are not vulnerabilities: they are counted as skipped, by kind.  A vulnerability Trivy
itself marks ``not_affected`` (a VEX statement it applied) is skipped too.

Trivy writes the artifact's metadata before its results, but a report is one document
either way, so it is read whole (``read_json``); the legacy list is streamed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._images import (
    ecosystem_of,
    pick_fix,
    references,
    split_os_suffix,
)
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
    json_items,
    read_json,
    text_or_none,
)

# The legacy list starts with its first result's Target.
_LEGACY = re.compile(rb'^\s*\[\s*\{\s*"Target"\s*:')
# Classes of results that list packages checked for vulnerabilities.
_PACKAGE_CLASSES = {"os-pkgs", "lang-pkgs", "custom", None}
# Trivy's labels for a language result that aggregates packages found in many files.
_AGGREGATES = {"Java", "Node.js", "Python", "Ruby", "PHP", ".NET", "Go", "Rust", "Elixir",
               "Dart", "Conda", "Julia", "Swift", "C++", "Python (egg-info)"}


def detect(sniff: Sniff) -> int:
    keys = sniff.json_keys
    if "SchemaVersion" in keys and ("ArtifactName" in keys or "Results" in keys):
        return 100
    if "ClusterName" in keys and keys & {"Resources", "Vulnerabilities", "Misconfigurations"}:
        return 100
    if sniff.json_list and _LEGACY.match(sniff.head.lstrip(b"\xef\xbb\xbf")):
        return 100
    # A bare ``null`` is what legacy Trivy wrote for "no results": nothing else claims it.
    if sniff.head.strip() == b"null":
        return 10
    return 0


def _vector(vuln: dict[str, Any]) -> tuple[str | None, float | None]:
    """The CVSS vector and score of the source Trivy took the severity from, else NVD's,
    else the first source's: v3 before v4 before v2 within a source."""
    cvss = vuln.get("CVSS")
    if not isinstance(cvss, dict) or not cvss:
        return None, None
    order = [vuln.get("SeveritySource"), "nvd", *cvss]
    for source in order:
        entry = cvss.get(source) if isinstance(source, str) else None
        if not isinstance(entry, dict):
            continue
        for vector_key, score_key in (("V3Vector", "V3Score"), ("V40Vector", "V40Score"),
                                      ("V2Vector", "V2Score")):
            vector = text_or_none(entry.get(vector_key))
            if vector:
                score = entry.get(score_key)
                return vector, float(score) if isinstance(score, (int, float)) else None
    return None, None


class _Context:
    """What a result's items share: the target and the OS its packages belong to."""

    def __init__(self, target: Target, distro: str | None) -> None:
        self.target = target
        self.distro = distro


def _item(context: _Context, result: dict[str, Any], vuln: dict[str, Any]) -> ReportItem:
    vuln_id = text_or_none(vuln.get("VulnerabilityID")) or "unknown"
    installed = text_or_none(vuln.get("InstalledVersion"))
    location = text_or_none(vuln.get("PkgPath"))
    result_target = text_or_none(result.get("Target"))
    if location is None and result.get("Class") == "lang-pkgs" and result_target \
            and result_target not in _AGGREGATES:
        location = result_target  # the lock file the packages came from
    identifier = vuln.get("PkgIdentifier")
    purl = identifier.get("PURL") if isinstance(identifier, dict) else None
    vector, score = _vector(vuln)
    vendor_ids = vuln.get("VendorIDs")
    if not isinstance(vendor_ids, list):
        vendor_ids = []
    return ReportItem(
        target=context.target,
        scanner_id=vuln_id,
        cves=cve_ids(vuln_id),
        aliases=tuple(str(v) for v in vendor_ids if v and str(v) != vuln_id),
        title=text_or_none(vuln.get("Title")),
        description=text_or_none(vuln.get("Description")),
        ecosystem=ecosystem_of(purl, result.get("Type"), context.distro, location),
        package=text_or_none(vuln.get("PkgName")),
        installed_version=installed,
        fixed_version=pick_fix(vuln.get("FixedVersion"), installed),
        location=location,
        severity=band(vuln.get("Severity")),
        cvss_vector=vector,
        cvss_score=score,
        references=references([vuln.get("PrimaryURL"), *(vuln.get("References") or [])]),
        cwes=cwe_ids(vuln.get("CweIDs") or []),
    )


def _result(context: _Context, result: Any, source: str
            ) -> Iterator[ReportItem | Skipped]:
    if not isinstance(result, dict):
        raise ReportError(source, "a Trivy result is not an object")
    for vuln in result.get("Vulnerabilities") or []:
        if vuln.get("Status") == "not_affected":
            yield Skipped("not affected (Trivy status not_affected)")
            continue
        yield _item(context, result, vuln)
    for misconf in result.get("Misconfigurations") or []:
        if misconf.get("Status", "FAIL") == "FAIL":
            yield Skipped("misconfiguration")
    for _secret in result.get("Secrets") or []:
        yield Skipped("secret")
    for _license in result.get("Licenses") or []:
        yield Skipped("license finding")


def _os_of(results: list[Any]) -> tuple[str | None, str | None, str | None]:
    """(image name, OS family, OS release) from the OS result's ``Target``
    (``"redis:6.0.5 (debian 10.4)"``), or Nones."""
    for result in results:
        if isinstance(result, dict) and result.get("Class", "os-pkgs") == "os-pkgs":
            name, family, release = split_os_suffix(str(result.get("Target") or ""))
            if family:
                return name, family, release
    return None, None, None


def _scans_packages(results: list[Any]) -> bool:
    return any(isinstance(r, dict) and r.get("Class") in _PACKAGE_CLASSES for r in results)


def _schema2(report: dict[str, Any], source: str) -> Iterator[ReportItem | Target | Skipped]:
    results = report.get("Results") or []
    metadata = report.get("Metadata") or {}
    os_info = metadata.get("OS") or {}
    image, family, release = _os_of(results)
    family = text_or_none(os_info.get("Family")) or family
    release = text_or_none(os_info.get("Name")) or release
    artifact = text_or_none(report.get("ArtifactName")) or image
    target = Target(artifact=artifact, os=f"{family} {release}" if family and release
                    else family)
    yield target
    context = _Context(target, ecosystem_for(family, release))
    for result in results:
        yield from _result(context, result, source)


def _resource(resource: dict[str, Any], source: str
              ) -> Iterator[ReportItem | Target | Skipped]:
    """One workload of a cluster report: its image's target when it was scanned for
    vulnerabilities (named after the workload when no result names the image)."""
    results = resource.get("Results") or []
    image, family, release = _os_of(results)
    target = Target(artifact=image or "/".join(
        str(resource.get(k)) for k in ("Namespace", "Kind", "Name") if resource.get(k)),
        os=f"{family} {release}" if family and release else None)
    if _scans_packages(results):
        yield target
    context = _Context(target, ecosystem_for(family, release))
    for result in results:
        yield from _result(context, result, source)


def _legacy(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    """The legacy list: the image is named by the OS result, which Trivy wrote first."""
    context: _Context | None = None
    for result in json_items(stream, source, "item"):
        if context is None:
            image, family, release = _os_of([result])
            target = Target(artifact=image, os=f"{family} {release}" if family else None)
            if not target.empty:
                yield target
            context = _Context(target, ecosystem_for(family, release))
        yield from _result(context, result, source)


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    start = stream.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    stream.seek(0)
    if start.startswith(b"["):
        yield from _legacy(stream, source)
        return
    report = read_json(stream, source)
    if report is None:
        return  # legacy "no results"
    if not isinstance(report, dict):
        raise ReportError(source, "not a Trivy report: the document is not an object")
    if "ClusterName" in report:
        resources = [*(report.get("Resources") or []), *(report.get("Vulnerabilities") or []),
                     *(report.get("Misconfigurations") or [])]
        for resource in resources:
            if isinstance(resource, dict):
                yield from _resource(resource, source)
        return
    if "Results" not in report and "ArtifactName" not in report:
        raise ReportError(source, "not a Trivy report: no Results and no ArtifactName")
    yield from _schema2(report, source)


FORMAT = Format(
    name="trivy", producer="trivy", title="Trivy JSON (image, file system, Kubernetes)",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every vulnerability of schema 2, Kubernetes and legacy reports on its package; "
          "misconfigurations, secrets, license findings and not_affected entries are "
          "skipped.")
