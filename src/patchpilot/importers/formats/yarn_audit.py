"""``yarn audit --json`` (Yarn 1): one JSON message a line.

``auditAdvisory`` lines carry npm-shaped advisories (the v6 ``npm audit`` shape), one line
per dependency path that resolves to the advisory, each with the advisory's every
installed version: the items are one per advisory and installed version, once, however
many lines repeat them -- and two advisory numbers of one GitHub advisory (npm renumbered
its database) are one item.  ``auditSummary`` closes the report; ``info``/``warning``
lines (``No lockfile found.``) are progress.  The report names no project: an empty
:class:`Target`, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import orjson

from patchpilot.importers.formats._audit import npm_advisory_items
from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
)

_AUDIT_TYPES = frozenset({"auditAdvisory", "auditSummary", "auditAction"})


def _message(line: str) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def detect(sniff: Sniff) -> int:
    # The last line of the head may be cut short: judge by the whole lines before it.
    for line in sniff.text.splitlines()[:50]:
        message = _message(line)
        if not isinstance(message, dict):
            return 0
        if message.get("type") in _AUDIT_TYPES and "data" in message:
            return 100
    return 0


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    target: Target | None = None
    seen: set[tuple[str, str | None, str | None]] = set()
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ReportError(source, f"malformed JSON: {exc.msg}", line=number) from None
        if not isinstance(message, dict):
            raise ReportError(source, "not a yarn audit message (an object with a 'type')",
                              line=number)
        kind = message.get("type")
        if kind == "error":
            raise ReportError(source, f"yarn audit failed: {message.get('data')}", line=number)
        if kind not in _AUDIT_TYPES:
            continue
        if target is None:
            target = Target()
            yield target
        if kind != "auditAdvisory":
            continue
        advisory = (message.get("data") or {}).get("advisory")
        if not isinstance(advisory, dict):
            raise ReportError(source, "auditAdvisory without an advisory", line=number)
        for item in npm_advisory_items(target, advisory, line=number):
            key = (item.scanner_id, item.package, item.installed_version)
            if key not in seen:
                seen.add(key)
                yield item
    if target is None:
        raise ReportError(source, "not a yarn audit report: no auditAdvisory or "
                                  "auditSummary line")


FORMAT = Format(
    name="yarn-audit", producer="yarn-audit", title="yarn audit --json (Yarn 1)",
    detect=detect, parse=parse, extensions=(".json", ".jsonl", ".ndjson"),
    notes="Every auditAdvisory once per advisory and installed version (the repeated "
          "lines of each dependency path merged); auditAction lines and Yarn 2+ "
          "'yarn npm audit' output are not read, and the report names no project.")
