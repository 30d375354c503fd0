"""``--format json``: the whole scan as one JSON document."""

from __future__ import annotations

from typing import Any

import orjson

from patchpilot import __version__
from patchpilot.findings.scan import ScanResult
from patchpilot.knowledge.coverage import MIN_ADVISORIES


def document(result: ScanResult) -> dict[str, Any]:
    """The JSON document of a scan."""
    inv = result.inventory
    return {
        "tool": {"name": "patchpilot", "version": __version__},
        "asset": inv.asset.model_dump(mode="json"),
        "os": inv.os.model_dump(mode="json") if inv.os else None,
        "collected_at": inv.collected_at.isoformat(),
        "packages": result.packages,
        "summary": result.counts(),
        "findings": [f.to_dict() for f in result.findings],
        "undetermined": [
            {"package": u.package.name, "version": u.package.version,
             "ecosystem": u.package.ecosystem, "reason": u.reason,
             "advisories": list(u.advisory_ids)} for u in result.undetermined],
        # What reading the inventory skipped or inferred (a line it could not read, a
        # package without a purl, the release it read from the versions), never dropped.
        "warning_count": len(inv.warnings),
        "warnings": list(inv.warnings),
        "coverage": coverage_section(result),
        # Upstream matches on packages an OS package owns, judged through it instead.
        "set_aside": [s.to_dict() for s in result.set_aside],
    }


def coverage_section(result: ScanResult) -> dict[str, Any]:
    """Per ecosystem of the scan: its packages, the advisories loaded for it and whether
    that covers it (``knowledge.coverage``), with the ecosystems not covered named."""
    return {"min_advisories": MIN_ADVISORIES,
            "ecosystems": [c.to_dict() for c in result.coverage],
            "not_covered": [c.ecosystem for c in result.not_covered()]}


def render(result: ScanResult) -> str:
    """Indented JSON."""
    return orjson.dumps(document(result), option=orjson.OPT_INDENT_2).decode() + "\n"
