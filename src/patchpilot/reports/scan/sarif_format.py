"""``--format sarif``: SARIF 2.1.0, for code-scanning dashboards.

https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html — one rule per
vulnerability, one result per finding, located at the file the package was read from.
"""

from __future__ import annotations

from typing import Any

import orjson

from patchpilot import __version__
from patchpilot.findings.scan import ScanResult

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
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "PatchPilot", "version": __version__,
                                      "informationUri": "https://github.com/patchpilot",
                                      "rules": list(rules.values())}},
                  "results": results}],
    }


def render(result: ScanResult) -> str:
    """Indented SARIF JSON."""
    return orjson.dumps(document(result), option=orjson.OPT_INDENT_2).decode() + "\n"
