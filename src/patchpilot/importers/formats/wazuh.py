"""Wazuh vulnerability detection results (JSON).

* Wazuh ≤ 4.7, the manager API's ``GET /vulnerability/{agent_id}``: the API envelope
  (``data.affected_items``, ``error``, ``message``), one item per CVE and package.  The
  answer names the agent only when the items carry ``agent_name``/``agent_ip`` (exports
  that merge agents do); otherwise the target is empty and the import puts the items on
  the asset the user names -- the agent the call was about.
* Wazuh ≥ 4.8, a search of the ``wazuh-states-vulnerabilities-*`` index (the hits, or
  the list of their ``_source`` documents): ECS fields ``agent``, ``host``, ``package``
  and ``vulnerability``.

The target is the agent, by name and address.  ``condition`` ("Package less than 4.3.2")
gives the fixed version; "Package unfixed" none.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._images import references
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
    score_band,
    text_or_none,
)

_FIXED = re.compile(r"^Package less than (?P<version>v?\d\S*)$", re.IGNORECASE)
_INDEX = "wazuh-states-vulnerabilities"


def detect(sniff: Sniff) -> int:
    text = sniff.text
    if {"data", "error"} <= sniff.json_keys and '"affected_items"' in text and re.search(
            r"vulnerabilit|\"cve\"", text, re.IGNORECASE):
        return 100
    if _INDEX in text and '"vulnerability"' in text:
        return 100
    return 0


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _api_item(item: dict[str, Any]) -> tuple[Target, ReportItem]:
    target = Target(hostname=text_or_none(item.get("agent_name")),
                    ip=text_or_none(item.get("agent_ip")))
    vuln_id = text_or_none(item.get("cve")) or "unknown"
    fixed = _FIXED.match(str(item.get("condition") or "").strip())
    score = _number(item.get("cvss3_score")) or _number(item.get("cvss2_score"))
    severity = band(item.get("severity"))
    return target, ReportItem(
        target=target,
        scanner_id=vuln_id,
        cves=cve_ids(vuln_id),
        title=text_or_none(item.get("title")),
        package=text_or_none(item.get("name")),
        installed_version=text_or_none(item.get("version")),
        fixed_version=fixed.group("version") if fixed else None,
        severity=severity,
        cvss_score=score,
        references=references(item.get("external_references")),
    )


def _index_item(document: dict[str, Any]) -> tuple[Target, ReportItem]:
    agent = document.get("agent") or {}
    host = document.get("host") or {}
    os_info = host.get("os") or {}
    package = document.get("package") or {}
    vuln = document.get("vulnerability") or {}
    ips = host.get("ip")
    target = Target(hostname=text_or_none(agent.get("name")),
                    ip=text_or_none(ips[0] if isinstance(ips, list) and ips else ips),
                    os=text_or_none(os_info.get("full")) or text_or_none(os_info.get("name")))
    vuln_id = text_or_none(vuln.get("id")) or "unknown"
    score = _number((vuln.get("score") or {}).get("base"))
    severity = band(vuln.get("severity"))
    distro = ecosystem_for(text_or_none(os_info.get("platform")),
                           text_or_none(os_info.get("version")))
    kind = text_or_none(package.get("type"))
    return target, ReportItem(
        target=target,
        scanner_id=vuln_id,
        cves=cve_ids(vuln_id),
        description=text_or_none(vuln.get("description")),
        ecosystem=ecosystem_for(kind) or (distro if kind in ("deb", "rpm", "apk") else kind),
        package=text_or_none(package.get("name")),
        installed_version=text_or_none(package.get("version")),
        location=text_or_none(package.get("path")),
        severity=severity if severity != "Unknown" else score_band(score),
        cvss_score=score,
        references=references(str(vuln.get("reference") or "").split(", ")),
    )


def _index_documents(document: Any) -> list[dict[str, Any]] | None:
    """The ``_source`` documents of an index search (or a list of them), or None."""
    if isinstance(document, dict) and isinstance(document.get("hits"), dict):
        document = document["hits"].get("hits") or []
    if isinstance(document, list):
        return [d.get("_source", d) for d in document if isinstance(d, dict)]
    return None


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    document = read_json(stream, source)
    data = document.get("data") if isinstance(document, dict) else None
    if isinstance(data, dict) and isinstance(data.get("affected_items"), list):
        if document.get("error"):
            raise ReportError(source, f"the Wazuh API answered an error: "
                                      f"{document.get('message') or document.get('error')}")
        rows = [_api_item(i) for i in data["affected_items"] if isinstance(i, dict)]
    else:
        documents = _index_documents(document)
        if documents is None:
            raise ReportError(source, "not a Wazuh vulnerability report: no "
                                      "data.affected_items and no index hits")
        rows = [_index_item(d) for d in documents if "vulnerability" in d]
    if not rows:
        yield Target()  # the agent the query was about: a re-import closes its findings
        return
    seen: set[tuple[str | None, ...]] = set()
    for target, item in rows:
        if target.key not in seen:
            seen.add(target.key)
            yield target
        yield item


FORMAT = Format(
    name="wazuh", producer="wazuh", title="Wazuh vulnerability detection (JSON)",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every vulnerability of the ≤ 4.7 API answer or the ≥ 4.8 states index on its "
          "agent and package; the 4.7 answer names the agent only in merged exports.")
