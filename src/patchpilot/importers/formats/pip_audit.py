"""``pip-audit -f json``: the list of audited dependencies (pip-audit 1.x) or the object
``{"dependencies": [...], "fixes": [...]}`` (2.x), streamed dependency by dependency.

One item per dependency and vulnerability: the advisory id (``PYSEC-…``, ``GHSA-…``) is
the scanner id, its CVE aliases the CVEs; the fixed version is the lowest of
``fix_versions`` above the installed version (Django 3.2.9 with fixes 2.2.25, 3.1.14,
3.2.10 -> 3.2.10).  pip-audit gives no severity (``Unknown``: the knowledge base
completes it).  A dependency pip-audit could not audit (``skip_reason``) is counted as
skipped.  The report names no project: an empty :class:`Target`, once.  An empty list
names no tool at all, so it is not recognised by content (``--format pip-audit`` reads it
as an audit of no dependencies).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import IO, Any

import ijson

from patchpilot.importers.formats._audit import first_fix
from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    cve_ids,
    json_items,
    read_json,
    text_or_none,
)


def _first_item_keys(head: bytes) -> set[str]:
    keys: set[str] = set()
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(head)):
            if prefix == "item" and event == "map_key":
                keys.add(value)
            elif prefix == "item" and event == "end_map":
                break
    except (ijson.common.IncompleteJSONError, ijson.common.JSONError, ValueError):
        pass
    return keys


def detect(sniff: Sniff) -> int:
    if {"dependencies", "fixes"} <= sniff.json_keys:
        return 100
    if sniff.json_list:
        keys = _first_item_keys(sniff.head)
        if "name" in keys and ("vulns" in keys or "skip_reason" in keys):
            return 100
    return 0


def _items(target: Target, dependency: dict[str, Any]) -> Iterator[ReportItem | Skipped]:
    name = text_or_none(dependency.get("name"))
    if "skip_reason" in dependency:
        yield Skipped("dependency not audited")
        return
    version = text_or_none(dependency.get("version"))
    for vuln in dependency.get("vulns") or ():
        vuln_id = str(vuln.get("id") or "").strip()
        if not vuln_id:
            continue
        aliases = [str(a) for a in vuln.get("aliases") or ()]
        fixes = [f">={v}" for v in vuln.get("fix_versions") or ()]
        yield ReportItem(
            target=target,
            scanner_id=vuln_id,
            cves=cve_ids(vuln_id, aliases),
            aliases=tuple(a for a in aliases if not a.upper().startswith("CVE-")),
            description=text_or_none(vuln.get("description")),
            ecosystem="PyPI",
            package=name,
            installed_version=version,
            fixed_version=first_fix("PyPI", version, fixes),
        )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    head = stream.read(4096)
    stream.seek(0)
    start = head.lstrip()[:1]
    if not start:
        raise ReportError(source, "the file is empty")
    if start not in (b"[", b"{"):
        raise ReportError(source, "not a pip-audit JSON report (neither a list nor an object)",
                          line=1)
    dependencies: Iterable[Any]
    if start == b"[":
        dependencies = json_items(stream, source, "item")
    else:  # 2.x: a small object around the same list; read whole to check its shape
        data = read_json(stream, source)
        dependencies = data.get("dependencies")
        if not isinstance(dependencies, list):
            raise ReportError(source, "not a pip-audit report: no 'dependencies' list")
    target = Target()
    yield target
    for dependency in dependencies:
        if not isinstance(dependency, dict):
            raise ReportError(source, "not a pip-audit report: a dependency is not an object")
        yield from _items(target, dependency)


FORMAT = Format(
    name="pip-audit", producer="pip-audit", title="pip-audit -f json",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every vulnerability of every audited dependency (no severity: pip-audit gives "
          "none); dependencies it could not audit are counted as skipped, the 'fixes' list "
          "is not read and the report names no project.")
