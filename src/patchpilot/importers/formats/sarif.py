"""SARIF 2.1.0 (https://docs.oasis-open.org/sarif/sarif/v2.1.0/): the static-analysis
interchange format many tools write (govulncheck, Dependency-Check, Black Duck, CodeQL …).

A family reader: SARIF carries code-quality findings as much as vulnerabilities, so only a
result that names a vulnerability id -- a CVE, GHSA, GO-, PYSEC-, BDSA- … id in its
``ruleId``, its rule's id, name or tags, its properties or its message -- becomes an item
(keyed by the first such id, the rule's own id when it is one); any other result is
skipped, counted as "result without a vulnerability id".  Severity comes from the
properties tools put on results and rules (``security-severity``, ``securityRisk``,
``severity``); a result's ``level`` is the tool's verdict on the code, not the
vulnerability's severity, and is not read as one.  The target is the run's repository
(``versionControlProvenance``), else empty (the import uses ``--asset``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._advisories import advisory_ids, split_ids
from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    cwe_ids,
    ecosystem_for,
    number,
    read_json,
    score_band,
    text_or_none,
)

_SKIP = "result without a vulnerability id"


def detect(sniff: Sniff) -> int:
    keys = sniff.json_keys
    # "$schema" (naming sarif) or "version" may come after the runs, past the head.
    if "runs" in keys and '"driver"' in sniff.text and (
            "sarif" in sniff.text.lower() or re.search(r'"version"\s*:\s*"2\.1\.0"',
                                                       sniff.text)):
        return 50
    return 0


def _text(value: Any) -> str | None:
    """A SARIF message object's text (``{"text": …}``), or None."""
    return text_or_none(value.get("text")) if isinstance(value, dict) else None


def _rule(run_rules: list[dict[str, Any]], result: dict[str, Any]) -> dict[str, Any]:
    by_id = result.get("rule") or {}
    index = result.get("ruleIndex", by_id.get("index"))
    if isinstance(index, int) and 0 <= index < len(run_rules):
        return run_rules[index]
    rule_id = result.get("ruleId") or by_id.get("id")
    return next((r for r in run_rules if r.get("id") == rule_id), {})


def _tags(*properties: dict[str, Any]) -> list[str]:
    return [str(t) for p in properties for t in (p.get("tags") or [])
            if isinstance(t, (str, int))]


def _severity(props: dict[str, Any], rule_props: dict[str, Any]) -> tuple[str, float | None]:
    """(band, score) from the properties tools write; Unknown when none says."""
    score = next((s for s in (number(props.get("security-severity")),
                              number(rule_props.get("security-severity")),
                              number(props.get("cvssv3_baseScore")),
                              number(props.get("cvssv2_score"))) if s is not None), None)
    for key in ("securityRisk", "severity", "cvssv3_baseSeverity", "issue_severity"):
        for bag in (props, rule_props):
            word = band(bag.get(key)) if isinstance(bag.get(key), str) else "Unknown"
            if word != "Unknown":
                return word, score
    return score_band(score), score


def _location(result: dict[str, Any]) -> str | None:
    for location in result.get("locations") or []:
        uri = ((location.get("physicalLocation") or {}).get("artifactLocation") or {}).get("uri")
        if uri:
            return str(uri)
    return None


def _item(target: Target, rule: dict[str, Any], result: dict[str, Any]
          ) -> ReportItem | None:
    rule_id = text_or_none(result.get("ruleId")) or text_or_none(rule.get("id"))
    props = result.get("properties") or {}
    rule_props = rule.get("properties") or {}
    message = _text(result.get("message"))
    own = advisory_ids(rule_id, text_or_none(rule.get("id")), text_or_none(rule.get("name")))
    ids = list(dict.fromkeys([
        *own, *advisory_ids(*_tags(rule_props, props)),
        *advisory_ids(*(str(v) for v in (*props.values(), *rule_props.values())
                        if isinstance(v, str))),
        *advisory_ids(message)]))
    if not ids:
        return None
    scanner_id = next((i for i in own if not i.startswith("CVE-")), ids[0])
    cves, others = split_ids(ids)
    severity, score = _severity(props, rule_props)
    exploit = props.get("exploitAvailable")
    return ReportItem(
        target=target,
        scanner_id=scanner_id,
        cves=cves,
        aliases=tuple(o for o in others if o != scanner_id),
        title=_text(rule.get("shortDescription")) or text_or_none(rule.get("name")) or message,
        description=_text(rule.get("fullDescription")) or _text(rule.get("help")),
        ecosystem=ecosystem_for(props.get("componentOrigin")) or text_or_none(
            props.get("componentOrigin")),
        package=text_or_none(props.get("component")),
        installed_version=text_or_none(props.get("componentVersion")),
        location=_location(result),
        severity=severity,
        cvss_score=score,
        exploit_available=exploit if isinstance(exploit, bool) else None,
        solution=next((_text(f.get("description")) for f in result.get("fixes") or []
                       if _text(f.get("description"))), None),
        references=tuple(u for u in (text_or_none(rule.get("helpUri")),) if u),
        cwes=cwe_ids(_tags(rule_props, props), rule_props.get("cwe"), props.get("cwe"),
                     [str((r.get("target") or {}).get("id", ""))
                      for r in rule.get("relationships") or []]),
        output=message,
    )


def _suppressed(result: dict[str, Any]) -> bool:
    """SARIF 3.35.4: suppressed when it has suppressions, none of them under review or
    rejected."""
    suppressions = result.get("suppressions") or []
    return bool(suppressions) and all(
        s.get("state", "accepted") == "accepted" for s in suppressions)


def _target(run: dict[str, Any]) -> Target:
    for provenance in run.get("versionControlProvenance") or []:
        uri = text_or_none(provenance.get("repositoryUri"))
        if uri:
            return Target(artifact=uri)
    return Target()


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    document = read_json(stream, source)
    if not isinstance(document, dict) or not isinstance(document.get("runs"), list):
        raise ReportError(source, "not a SARIF log: no \"runs\" list")
    seen: set[Target] = set()
    for run in document["runs"]:
        target = _target(run)
        if target not in seen:
            seen.add(target)
            yield target
        rules = ((run.get("tool") or {}).get("driver") or {}).get("rules") or []
        for result in run.get("results") or []:
            item = _item(target, _rule(rules, result), result)
            if item is None:
                yield Skipped(_SKIP)
            elif _suppressed(result):
                yield Skipped("suppressed in the SARIF log")
            else:
                yield item


FORMAT = Format(
    name="sarif", producer="sarif", title="SARIF 2.1.0 (any tool)",
    detect=detect, parse=parse, extensions=(".sarif", ".json"),
    notes="Results that name a vulnerability id (CVE, GHSA, GO-, BDSA- …) in the rule, "
          "its tags or properties or the message; code-quality results are skipped.")
