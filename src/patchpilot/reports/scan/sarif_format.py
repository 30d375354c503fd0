"""``--format sarif``: SARIF 2.1.0, for code-scanning dashboards.

https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html — one rule per
vulnerability, one result per finding, located at the file the package was read from.
"""

from __future__ import annotations

from typing import Any

import orjson

from patchpilot import __version__
from patchpilot.findings.scan import ScanResult
from patchpilot.reports.scan.json_format import coverage_section

_LEVELS = {"Critical": "error", "High": "error", "Medium": "warning", "Low": "note",
           "None": "none", "Unknown": "warning"}


def document(result: ScanResult) -> dict[str, Any]:
    """The SARIF log of a scan."""
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for f in result.findings:
        if f.vuln_id not in rules:
            rule: dict[str, Any] = {
                "id": f.vuln_id, "name": f.vuln_id,
                "shortDescription": {"text": f.name},
                "fullDescription": {"text": f.summary or f.name},
                "help": {"text": f"Fix: {f.fix.fixed_version or 'none published'}. "
                                 f"Workaround: {f.workaround}."},
                "properties": {"tags": ["security", f.severity]},
            }
            if f.cvss:
                rule["properties"]["security-severity"] = f"{f.cvss.score:.1f}"
            rules[f.vuln_id] = rule
        location = next((p for p in (f.evidence.source,) if p), "inventory")
        pkgs = next(iter(f.evidence.packages), f.package)
        versions = ", ".join(dict.fromkeys(i.installed_version for i in f.installations)) \
            or f.evidence.installed_version
        located = [i for i in f.installations if i.location]
        results.append({
            "ruleId": f.vuln_id,
            "level": _LEVELS.get(f.severity, "warning"),
            "message": {"text": f"{f.package} {versions} is affected by "
                                f"{f.vuln_id} ({f.evidence.affected_range}); "
                                f"fixed in {f.fix.fixed_version or 'no release yet'}"},
            "locations": [{"logicalLocations": [{"name": pkgs, "kind": "package",
                                                 "fullyQualifiedName":
                                                     f"{f.ecosystem}/{f.package}"}]}],
            # Every affected copy: its folder or lock file as an artifact location.
            **({"relatedLocations": [
                {"id": n, "physicalLocation": {"artifactLocation": {"uri": i.location}},
                 "message": {"text": f"{f.package} {i.installed_version}"}}
                for n, i in enumerate(located)]} if located else {}),
            "partialFingerprints": {"finding": f"{f.ecosystem}|{f.package}|{f.vuln_id}"},
            "properties": {"advisory": f.evidence.advisory_id, "source": location},
        })
    # Upstream matches on OS-owned packages: results with an external suppression whose
    # justification says why (SARIF 2.1.0 §3.35), so dashboards show them as dismissed.
    for s in result.set_aside:
        results.append({
            "ruleId": s.vuln_id, "level": "none",
            "message": {"text": f"{s.package} {s.version}: {s.explanation}"},
            "locations": [{"logicalLocations": [{
                "name": s.package, "kind": "package",
                "fullyQualifiedName": f"{s.ecosystem}/{s.package}"}]}],
            "partialFingerprints": {"finding": f"{s.ecosystem}|{s.package}|{s.vuln_id}"},
            "suppressions": [{"kind": "external", "status": "accepted",
                              "justification": s.explanation}],
            "properties": {"advisory": s.advisory_id, "owner": s.owner.name},
        })
        rules.setdefault(s.vuln_id, {"id": s.vuln_id, "name": s.vuln_id,
                                     "shortDescription": {"text": s.vuln_id}})
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "PatchPilot", "version": __version__,
                                      "informationUri": "https://github.com/patchpilot",
                                      "rules": list(rules.values())}},
                  "invocations": [_invocation(result)],
                  "properties": {"coverage": coverage_section(result)},
                  "results": results}],
    }


def _invocation(result: ScanResult) -> dict[str, Any]:
    """The run's invocation (SARIF 2.1.0 §3.20): the inventory's warnings as tool
    execution notifications (§3.20.21), with their count in the properties, and a warning
    notification (§3.58) per ecosystem no advisory covers -- a code-scanning dashboard
    shows those beside the results, so an empty result list is not read as "clean"."""
    warnings = result.inventory.warnings
    notes: list[dict[str, Any]] = [
        {"level": "warning", "message": {"text": text}} for text in warnings]
    notes += [{"level": "warning", "message": {"text": c.describe()},
               "properties": c.to_dict()} for c in result.not_covered()]
    return {"executionSuccessful": True, "toolExecutionNotifications": notes,
            "properties": {"inventoryWarningCount": len(warnings)}}


def render(result: ScanResult) -> str:
    """Indented SARIF JSON."""
    return orjson.dumps(document(result), option=orjson.OPT_INDENT_2).decode() + "\n"
