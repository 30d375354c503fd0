"""A report's items as Findings: one per CVE, the report's fields first, the knowledge base's
where the report has none.

* The vulnerability: each CVE the item names is one finding (like the matcher); the
  scanner's id (``nessus:19506``, a GHSA) is an alias and the finding's advisory id.  An
  item without a CVE takes the CVE the knowledge base knows for its advisory id (a GHSA
  that aliases one), else keeps the scanner's id -- nothing a scanner reports is dropped.
* The package: the report's ecosystem and package (names normalised as the matcher's, so
  the same vulnerability in the same package is one finding whoever reports it); a network
  scanner's item is ``network`` / ``tcp/443`` (``host`` for port 0).
* The eight fields: title, summary, CVSS, severity, exploit, fix, workaround, references
  from the report when it has them, else from the knowledge base (CVE records, KEV, EPSS);
  ``field_sources`` says which, field by field.  KEV and EPSS always come from the
  knowledge base (no scanner report carries them); the scanner's "exploit available" is
  kept beside them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from patchpilot.db.tables import advisory_aliases, advisory_vulns
from patchpilot.findings.build import About, vulnerability_facts
from patchpilot.findings.commands import upgrade_command
from patchpilot.findings.model import Evidence, Exploit, Finding, Fix, Installation
from patchpilot.findings.phrases import NO_WORKAROUND
from patchpilot.importers.model import BANDS, ReportItem, score_band
from patchpilot.knowledge.cvss import metric_from_vector, preferred_metric
from patchpilot.knowledge.names import normalize_name
from patchpilot.models import CvssMetric, Ecosystem, Package, Reference

NETWORK = "network"
REPORT = "report"
KNOWLEDGE = "knowledge base"

# How many ids one lookup binds (SQLite's host-parameter limit is far above it).
_CHUNK = 5000


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def cves_for_advisories(conn: Connection, ids: Iterable[str]) -> dict[str, str]:
    """advisory id (GHSA, RUSTSEC, PYSEC …) -> the CVE the knowledge base says it is, for
    those that alias exactly one CVE."""
    wanted = sorted({i for i in ids if i and not i.startswith("CVE-")})
    found: dict[str, set[str]] = {}
    for chunk in _chunks(wanted):
        rows = conn.execute(
            select(advisory_aliases.c.alias, advisory_vulns.c.vuln_id)
            .join(advisory_vulns, advisory_vulns.c.advisory_pk == advisory_aliases.c.advisory_pk)
            .where(advisory_aliases.c.alias.in_(bindparam("ids", expanding=True)),
                   advisory_vulns.c.vuln_id.like("CVE-%")), {"ids": list(chunk)})
        for alias, vuln in rows:
            found.setdefault(alias, set()).add(vuln)
    return {alias: next(iter(v)) for alias, v in found.items() if len(v) == 1}


def vulnerability_ids(item: ReportItem, known: Mapping[str, str]) -> tuple[str, ...]:
    """The finding ids of ``item``: its CVEs, else the CVE its advisory id aliases, else
    the scanner's id."""
    if item.cves:
        return item.cves
    for candidate in (item.scanner_id, *item.aliases):
        if candidate in known:
            return (known[candidate],)
    return (item.scanner_id,)


def package_key(item: ReportItem) -> tuple[str, str]:
    """(ecosystem, package) of the finding: the report's package, or the network service."""
    if item.package:
        ecosystem = item.ecosystem or "unknown"
        return ecosystem, normalize_name(ecosystem, item.package)
    if item.port:
        return NETWORK, f"{(item.protocol or 'tcp').lower()}/{item.port}"
    return NETWORK, "host"


def _metric(item: ReportItem) -> CvssMetric | None:
    if item.cvss_vector:
        metric = metric_from_vector(item.cvss_vector, source=REPORT)
        if metric is not None:
            return metric
    return None


def _references(item: ReportItem, about: About | None) -> tuple[Reference, ...]:
    refs = [Reference(url) for url in item.references]
    if about:
        refs.extend(about.references)
    return tuple(dict.fromkeys(refs))


def knows(about: About) -> bool:
    """True when the knowledge base says anything at all about the vulnerability (else
    no field of the finding is the knowledge base's)."""
    e = about.exploit
    return bool(about.metrics or about.description or about.title or about.workaround
                or about.references or about.cwes or about.aliases or e.known_exploited
                or e.epss_score is not None)


def exploit_source(known: bool, reported: bool | None) -> str:
    """``field_sources["exploit"]``: KEV and EPSS are the knowledge base's when it knows
    the vulnerability (``known``); a scanner's own exploit claim (``reported``, true or
    false) is kept beside them."""
    if reported is None:
        return KNOWLEDGE if known else "none"
    return f"{REPORT} + {KNOWLEDGE}" if known else REPORT


def build(item: ReportItem, vuln_id: str, facts: Mapping[str, About], *, feed: str,
          source: str) -> Finding:
    """The Finding for ``vuln_id`` of ``item`` (``feed``: ``importer:<format>``;
    ``source``: the report's file name)."""
    about = facts.get(vuln_id)
    if about is not None and not knows(about):
        about = None  # the knowledge base has nothing on it: no field is its
    ecosystem, package = package_key(item)
    sources: dict[str, str] = {}

    def pick(name: str, reported: str | None, known: str | None) -> str | None:
        if reported:
            sources[name] = REPORT
            return reported
        if known:
            sources[name] = KNOWLEDGE
            return known
        return None

    title = pick("name", item.title, about.title if about else None) or vuln_id
    summary = pick("summary", item.description,
                   about.description if about else None) or ""
    cvss = _metric(item)
    if cvss is not None:
        sources["cvss"] = REPORT
    elif about and about.metrics:
        cvss = preferred_metric(about.metrics)
        sources["cvss"] = KNOWLEDGE
    if item.severity in BANDS:
        severity, severity_source = item.severity, REPORT
    elif cvss is not None:
        severity, severity_source = cvss.severity, "cvss"
    elif item.cvss_score is not None:
        severity, severity_source = score_band(item.cvss_score), REPORT
    else:
        severity, severity_source = "Unknown", "none"
    sources["severity"] = REPORT if severity_source == REPORT else sources.get("cvss", "none")
    workaround = pick("workaround", item.workaround, about.workaround if about else None)
    exploit = about.exploit if about else Exploit()
    sources["exploit"] = exploit_source(about is not None, item.exploit_available)
    fixed = item.fixed_version
    if fixed:
        sources["fix"] = REPORT
    elif item.solution:
        sources["fix"] = REPORT
    installed = item.installed_version or ""
    command = None
    if item.package and item.ecosystem and installed and fixed:
        command = upgrade_command(item.ecosystem, [Package(
            ecosystem=Ecosystem(item.ecosystem), name=item.package, version=installed,
            location=item.location)], fixed, item.location)
    installations = ((Installation(item.location, installed, fixed, command),)
                     if item.package and installed else ())
    aliases = {item.scanner_id, *item.aliases, *(about.aliases if about else ())}
    aliases.discard(vuln_id)
    cwes = item.cwes or (about.cwes if about else ())
    return Finding(
        vuln_id=vuln_id, name=title, summary=summary, ecosystem=ecosystem, package=package,
        aliases=tuple(sorted(aliases)), cvss=cvss, severity=severity,
        severity_source=severity_source, exploit=exploit, fix=Fix(fixed, command),
        workaround=workaround or NO_WORKAROUND,
        evidence=Evidence(
            installed_version=installed, advisory_id=item.scanner_id,
            affected_range=f"< {fixed}" if fixed else "", feed=feed, source=source,
            packages=(item.package,) if item.package else
            tuple(s for s in (item.service,) if s),
            detail=item.output),
        cwes=tuple(cwes), references=_references(item, about), installations=installations,
        solution=item.solution, exploit_reported=item.exploit_available,
        field_sources=tuple(sorted(sources.items())))


def _json(value: Any) -> Any:
    """A dataclass as the plain JSON value ``Finding.to_dict`` stores for it."""
    return orjson.loads(orjson.dumps(value))


def refresh_stored(data: Mapping[str, Any], about: About | None) -> dict[str, Any]:
    """A stored imported finding's JSON (``Finding.to_dict`` and its ``sources``) with the
    knowledge-base fields :func:`build` would give it from ``about`` now.

    The report item is gone, so ``field_sources`` says what the report gave: those fields
    stay, whatever the knowledge base says now; the rest are filled (or emptied) by the
    rules of :func:`build`.  Exploit evidence (KEV, EPSS, exploit references) is always the
    knowledge base's; the scanner's own claim (``exploit_reported``) stays beside it.
    Two things cannot be told apart afterwards and are left alone: a severity the report
    gave (a band, or the band of a bare score that a knowledge-base vector would now
    replace), and which of the stored references and CWEs were the report's (new
    knowledge-base references are added; CWEs are filled only when there are none).
    """
    if about is not None and not knows(about):
        about = None
    out = dict(data)
    sources: dict[str, str] = dict(data.get("field_sources") or {})
    exploit = about.exploit if about else Exploit()
    out["exploit"] = {**_json(exploit), "summary": exploit.summary}
    sources["exploit"] = exploit_source(about is not None, data.get("exploit_reported"))
    for name, known, fallback in (
            ("name", about.title if about else None, data["vuln_id"]),
            ("summary", about.description if about else None, ""),
            ("workaround", about.workaround if about else None, NO_WORKAROUND)):
        if sources.get(name) == REPORT:
            continue
        out[name] = known or fallback
        if known:
            sources[name] = KNOWLEDGE
        else:
            sources.pop(name, None)
    if sources.get("cvss") != REPORT:
        metric = preferred_metric(about.metrics) if about and about.metrics else None
        out["cvss"] = _json(metric) if metric is not None else None
        if metric is not None:
            sources["cvss"] = KNOWLEDGE
        else:
            sources.pop("cvss", None)
    if sources.get("severity") != REPORT:
        cvss = out.get("cvss")
        if cvss:
            out["severity"], out["severity_source"] = cvss["severity"], "cvss"
        else:
            out["severity"], out["severity_source"] = "Unknown", "none"
        sources["severity"] = sources.get("cvss", "none")
    if about is not None:
        # build lists the report's references first, then the knowledge base's.
        refs = list(data.get("references") or ())
        for ref in about.references:
            value = _json(ref)
            if value not in refs:
                refs.append(value)
        out["references"] = refs
        if not data.get("cwes"):
            out["cwes"] = list(about.cwes)
    out["field_sources"] = dict(sorted(sources.items()))
    return out


def findings_for(conn: Connection, items: Sequence[ReportItem], *, feed: str,
                 source: str) -> list[list[Finding]]:
    """Each item's findings (one per vulnerability id), in a handful of queries for all
    of them: the advisories' CVEs, then the CVE records, KEV and EPSS."""
    known = cves_for_advisories(conn, {i for item in items if not item.cves
                                       for i in (item.scanner_id, *item.aliases)})
    ids = [vulnerability_ids(item, known) for item in items]
    cves = sorted({v for group in ids for v in group if v.startswith("CVE-")})
    facts: dict[str, About] = {}
    for chunk in _chunks(cves):
        facts.update(vulnerability_facts(conn, chunk))
    return [[build(item, v, facts, feed=feed, source=source) for v in group]
            for item, group in zip(items, ids, strict=True)]
