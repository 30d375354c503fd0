"""``--format json``: the whole scan as one JSON document."""

from __future__ import annotations

from typing import Any

import orjson

from patchpilot import __version__
from patchpilot.findings.scan import ScanResult


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
        # Upstream matches on packages an OS package owns, judged through it instead.
        "set_aside": [s.to_dict() for s in result.set_aside],
    }


def render(result: ScanResult) -> str:
    """Indented JSON."""
    return orjson.dumps(document(result), option=orjson.OPT_INDENT_2).decode() + "\n"
