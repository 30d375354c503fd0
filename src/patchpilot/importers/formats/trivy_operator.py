"""Trivy Operator reports (``kubectl get vulnerabilityreports -o json`` and friends).

The operator keeps its results as Kubernetes custom resources of the
``aquasecurity.github.io`` group.  Read here: one resource, a list of them, a ``kubectl``
``List`` (``items``), or a dict of lists keyed by the resources' plural names (what a
cluster dump writes).

A ``VulnerabilityReport`` is one container image: its target is the image
(``registry/repository:tag``) and each vulnerability one item on its package.  The
others -- ``ConfigAuditReport``, ``RbacAssessmentReport``, ``InfraAssessmentReport``,
``ClusterComplianceReport`` (failed checks), ``ExposedSecretReport`` (secrets) -- hold
no vulnerabilities and are counted as skipped; ``SbomReport`` lists packages only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._images import image_name, references, split_os_suffix
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

_GROUP = "aquasecurity.github.io"
_CHECK_KINDS = {"ConfigAuditReport", "ClusterConfigAuditReport", "RbacAssessmentReport",
                "ClusterRbacAssessmentReport", "InfraAssessmentReport",
                "ClusterInfraAssessmentReport"}


def detect(sniff: Sniff) -> int:
    if sniff.kind != "json" or _GROUP not in sniff.text:
        return 0
    keys = sniff.json_keys
    if {"apiVersion", "kind"} <= keys or any(k.endswith("." + _GROUP) for k in keys):
        return 100
    if sniff.json_list or "items" in keys:
        return 100
    return 0


def _resources(document: Any) -> Iterator[dict[str, Any]]:
    """Every custom resource of the document, whichever way it is wrapped."""
    if isinstance(document, list):
        for entry in document:
            yield from _resources(entry)
    elif isinstance(document, dict):
        if "kind" in document and ("report" in document or "status" in document):
            yield document
        elif isinstance(document.get("items"), list):
            yield from _resources(document["items"])
        else:
            for key, value in document.items():
                if key.endswith("." + _GROUP):
                    yield from _resources(value)


def _vulnerabilities(resource: dict[str, Any]) -> Iterator[ReportItem | Target]:
    report = resource.get("report") or {}
    artifact = report.get("artifact") or {}
    registry = report.get("registry") or {}
    os_info = report.get("os") or {}
    family, release = text_or_none(os_info.get("family")), text_or_none(os_info.get("name"))
    target = Target(
        artifact=image_name(registry.get("server"), artifact.get("repository"),
                            artifact.get("tag"), artifact.get("digest")),
        os=f"{family} {release}" if family and release else family)
    yield target
    distro = ecosystem_for(family, release)
    for vuln in report.get("vulnerabilities") or []:
        vuln_id = text_or_none(vuln.get("vulnerabilityID")) or "unknown"
        kind = text_or_none(vuln.get("packageType"))
        if vuln.get("class") == "lang-pkgs":
            ecosystem = ecosystem_for(kind) or kind
        else:
            # OS packages: the type word is the distribution, its release the report's OS
            # (or the one in the result target: "ubuntu:20.04 (ubuntu 20.04)").
            _name, t_family, t_release = split_os_suffix(str(vuln.get("target") or ""))
            ecosystem = (ecosystem_for(kind or t_family, release or t_release) or distro
                         or kind)
        score = vuln.get("score")
        yield ReportItem(
            target=target,
            scanner_id=vuln_id,
            cves=cve_ids(vuln_id),
            title=text_or_none(vuln.get("title")),
            description=text_or_none(vuln.get("description")),
            ecosystem=ecosystem,
            package=text_or_none(vuln.get("resource")),
            installed_version=text_or_none(vuln.get("installedVersion")),
            fixed_version=text_or_none(vuln.get("fixedVersion")),
            location=text_or_none(vuln.get("pkgPath")),
            severity=band(vuln.get("severity")),
            cvss_score=float(score) if isinstance(score, (int, float)) and score > 0 else None,
            references=references([vuln.get("primaryLink"), *(vuln.get("links") or [])]),
        )


def _failed(checks: Any) -> int:
    return sum(1 for c in checks or [] if isinstance(c, dict) and not c.get("success"))


def _resource(resource: dict[str, Any]) -> Iterator[ReportItem | Target | Skipped]:
    kind = resource.get("kind")
    report = resource.get("report") or {}
    if kind == "VulnerabilityReport":
        yield from _vulnerabilities(resource)
    elif kind in _CHECK_KINDS:
        for _ in range(_failed(report.get("checks"))):
            yield Skipped("misconfiguration")
    elif kind == "ClusterComplianceReport":
        detail = (resource.get("status") or {}).get("detailReport") or {}
        for result in detail.get("results") or []:
            for _ in range(_failed(result.get("checks"))):
                yield Skipped("compliance check")
    elif kind == "ExposedSecretReport":
        for _secret in report.get("secrets") or []:
            yield Skipped("secret")


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    document = read_json(stream, source)
    found = False
    for resource in _resources(document):
        found = True
        yield from _resource(resource)
    if not found and not (isinstance(document, (dict, list)) and _is_empty_dump(document)):
        raise ReportError(source, "not a Trivy Operator report: no aquasecurity.github.io "
                                  "resource in it")


def _is_empty_dump(document: dict[str, Any] | list[Any]) -> bool:
    """An empty list, an empty ``List`` or a dump whose resource lists are all empty:
    a cluster without reports."""
    if isinstance(document, list):
        return not document
    if isinstance(document.get("items"), list):
        return not document["items"]
    lists = [v for k, v in document.items() if k.endswith("." + _GROUP)]
    return bool(lists) and all(isinstance(v, list) and not v for v in lists)


FORMAT = Format(
    name="trivy-operator", producer="trivy", title="Trivy Operator reports (Kubernetes)",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every vulnerability of VulnerabilityReports on its image; failed config, RBAC, "
          "infra and compliance checks and exposed secrets are skipped; SBOM reports are "
          "not read.")
