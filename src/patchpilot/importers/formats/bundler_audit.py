"""``bundler-audit check``: the Ruby advisory database against ``Gemfile.lock``, as its
text output (``Name:``/``Version:``/``Advisory:`` blocks) or ``--format json``.

One item per vulnerable gem and advisory: the advisory id (``CVE-…``, ``GHSA-…``,
``OSVDB-…``) is the scanner id; the fixed version is the lowest patched bound above the
installed version (``Solution: upgrade to ~> 1.6.11, >= 2.0.6`` with 1.4.7 -> 1.6.11); the
criticality is the severity (``Unknown`` when the advisory has none), the JSON's CVSS v3
(else v2) base score the score -- bundler-audit prints scores, not vectors.  An insecure
gem source (``http://``, ``git://``) is not a vulnerability of a package and is counted as
skipped.  The report names no project: an empty :class:`Target`, once.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._audit import first_fix
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
    score_band,
    text_or_none,
)

_BLOCK = re.compile(r"^Name: \S+\r?\nVersion: \S+", re.MULTILINE)
_VERDICT = re.compile(r"^(?:No vulnerabilities found|Vulnerabilities found!|"
                      r"Insecure Source URI found: )", re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def detect(sniff: Sniff) -> int:
    return 100 if sniff.kind == "text" and (
        _BLOCK.search(sniff.text) or _VERDICT.search(sniff.text)) else 0


def detect_json(sniff: Sniff) -> int:
    return 100 if {"version", "created_at", "results"} <= sniff.json_keys else 0


def _score(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _json_item(target: Target, result: dict[str, Any]) -> ReportItem:
    gem = result.get("gem") or {}
    advisory = result.get("advisory") or {}
    version = text_or_none(gem.get("version"))
    cve = text_or_none(advisory.get("cve"))  # "2020-8161" (the database's spelling)
    cve = cve if cve is None or cve.upper().startswith("CVE-") else f"CVE-{cve}"
    ghsa = text_or_none(advisory.get("ghsa"))  # "5f9h-…" (older) or "GHSA-5f9h-…"
    ghsa = ghsa if ghsa is None or ghsa.upper().startswith("GHSA-") else f"GHSA-{ghsa}"
    osvdb = text_or_none(advisory.get("osvdb"))
    score = _score(advisory.get("cvss_v3")) or _score(advisory.get("cvss_v2"))
    criticality = band(advisory.get("criticality"))
    advisory_id = text_or_none(advisory.get("id"))
    aliases = [a for a in (ghsa,
                           f"OSVDB-{osvdb}" if osvdb else None) if a and a != advisory_id]
    url = text_or_none(advisory.get("url"))
    return ReportItem(
        target=target,
        scanner_id=advisory_id or cve or str(ghsa),
        cves=cve_ids(cve, advisory_id),
        aliases=tuple(aliases),
        title=text_or_none(advisory.get("title")),
        description=text_or_none(advisory.get("description")),
        ecosystem="RubyGems",
        package=text_or_none(gem.get("name")),
        installed_version=version,
        fixed_version=first_fix("RubyGems", version, advisory.get("patched_versions")),
        severity=criticality if criticality != "Unknown" else score_band(score),
        cvss_score=score,
        references=(url,) if url else (),
    )


def parse_json(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    data = read_json(stream, source)
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise ReportError(source, "not a bundler-audit JSON report: no 'results' list")
    target = Target()
    yield target
    for result in results:
        if result.get("type") == "unpatched_gem":
            yield _json_item(target, result)
        elif result.get("type") == "insecure_source":
            yield Skipped("insecure gem source")
        else:
            yield Skipped(f"bundler-audit result {result.get('type')!r}")


def _text_item(target: Target, fields: dict[str, str], line: int) -> ReportItem:
    version = fields.get("version")
    advisory = fields.get("advisory") or fields.get("cve") or fields.get("ghsa") or ""
    ghsa = fields.get("ghsa")
    solution = fields.get("solution")
    url = fields.get("url")
    criticality = band(fields.get("criticality"))
    return ReportItem(
        target=target,
        scanner_id=advisory,
        cves=cve_ids(fields.get("cve"), advisory),
        aliases=(ghsa,) if ghsa and ghsa != advisory else (),
        title=fields.get("title"),
        ecosystem="RubyGems",
        package=fields.get("name"),
        installed_version=version,
        # "upgrade to ~> 1.6.11, >= 2.0.6" (0.6), "update to '~> 2.1.3', '>= 2.2.0'" (0.9)
        fixed_version=first_fix("RubyGems", version, solution),
        severity=criticality,
        solution=solution,
        references=(url,) if url else (),
        line=line,
    )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace")
    target = Target()
    fields: dict[str, str] = {}
    start: int | None = None  # the line of the entry being read
    empty = True

    def flush() -> Iterator[ReportItem]:
        nonlocal start
        if start is not None:
            if not (fields.get("advisory") or fields.get("cve") or fields.get("ghsa")):
                raise ReportError(source, "an entry without an advisory id", line=start)
            yield _text_item(target, dict(fields), start)
            fields.clear()
            start = None

    recognised = False
    for number, raw in enumerate(text, start=1):
        line = _ANSI.sub("", raw).rstrip()  # a report captured from a terminal
        empty = empty and not line.strip()
        if not recognised and (line.startswith(("Name: ", "Insecure Source URI found: ",
                                                "No vulnerabilities found",
                                                "Vulnerabilities found!"))):
            recognised = True
            yield target
        if line.startswith("Insecure Source URI found: "):
            yield Skipped("insecure gem source", line=number)
            continue
        key, sep, value = line.partition(": ")
        if not sep or " " in key:  # the verdict, blank lines, anything else
            continue
        if key == "Name":
            yield from flush()
            start = number
        if start is not None:
            fields[key.lower()] = value.strip()
    if empty:
        raise ReportError(source, "the file is empty")
    if not recognised:
        raise ReportError(source, "not a bundler-audit report: no 'Name:' entry and no "
                                  "verdict line")
    yield from flush()


FORMAT = Format(
    name="bundler-audit", producer="bundler-audit", title="bundler-audit check (text)",
    detect=detect, parse=parse, extensions=(".txt", ".log"),
    notes="Every Name/Version/Advisory entry; insecure gem sources are counted as skipped, "
          "and the report names no project.")

FORMAT_JSON = Format(
    name="bundler-audit-json", producer="bundler-audit",
    title="bundler-audit check --format json",
    detect=detect_json, parse=parse_json, extensions=(".json",),
    notes="Every unpatched_gem result with its CVSS score (bundler-audit prints no vector); "
          "insecure sources are counted as skipped, and the report names no project.")
