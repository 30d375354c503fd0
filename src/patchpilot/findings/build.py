"""Turning matches into findings: merging advisory, CVE record, KEV and EPSS data.

Only the hit vulnerabilities are looked up (three set queries), and only their records are
decoded.  Where sources disagree: the title is a real title (see :func:`finding_title`:
the advisory's summary, the CVE record's title, KEV's name, the distribution's own line
for the CVE, then "<package>: <CWE name>"), never the opening of a description; the
description (the finding's summary) from NVD, then the CVE record, then the advisory; CVSS
per :func:`patchpilot.knowledge.cvss.preferred_metric` (JVN's only when neither NVD nor the
CVE record scores the CVE); the workaround from the CVE record
(CVE JSON 5 ``workarounds``), then the advisory.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from patchpilot.db.tables import (
    advisories,
    advisory_aliases,
    advisory_vulns,
    cve_records,
    epss,
    kev,
)
from patchpilot.findings.installations import installations_of, merge_findings
from patchpilot.findings.model import Evidence, Exploit, Finding, Fix
from patchpilot.findings.owned import owners_of
from patchpilot.findings.phrases import NO_WORKAROUND
from patchpilot.knowledge.cvss import SEVERITY_ORDER, preferred_metric
from patchpilot.knowledge.cwe import cwe_name
from patchpilot.knowledge.ecosystems import is_distribution
from patchpilot.knowledge.matcher import Match
from patchpilot.models import CvssMetric, Reference

# Distribution ratings (Debian urgency, Ubuntu priority) when no CVSS vector exists.
_DISTRO_BANDS = {"critical": "Critical", "high": "High", "important": "High",
                 "medium": "Medium", "moderate": "Medium", "low": "Low",
                 "unimportant": "Low", "negligible": "Low"}


def _metrics(items: Iterable[dict[str, Any]]) -> list[CvssMetric]:
    return [CvssMetric(**m) for m in items]


def _refs(items: Iterable[dict[str, Any]]) -> list[Reference]:
    return [Reference(url=r["url"], type=r.get("type") or "web") for r in items]


def _unique(refs: Iterable[Reference]) -> tuple[Reference, ...]:
    """References without repeats of a URL (the first kind given wins), in order."""
    seen: dict[str, Reference] = {}
    for r in refs:
        seen.setdefault(r.url, r)
    return tuple(seen.values())


def _squeeze(text: str, limit: int) -> tuple[str, bool]:
    """``text`` with its whitespace runs made single spaces, enough of it for ``limit``
    characters, and whether that is all of it."""
    if len(text) <= limit * 4:
        return " ".join(text.split()), True
    head = " ".join(text[:limit * 4].split())
    if len(head) <= limit:  # mostly whitespace: squeeze it all
        return " ".join(text.split()), True
    return head, False


def _first_sentence(text: str | None, limit: int = 160) -> str | None:
    if not text:
        return None
    line, whole = _squeeze(text, limit)
    cut = line.find(". ")
    if 0 < cut < limit:
        return line[:cut + 1]
    if whole and len(line) <= limit:
        return line
    head = line[:limit - 1]
    if " " in head:
        head = head.rsplit(" ", 1)[0]  # whole words only
    return head.rstrip(" ,;:") + "…"


# A distribution erratum's summary names the update, not the vulnerability: Red Hat-family
# "Important: openssh security update", Debian "openssl - security update", Ubuntu's
# "wayland vulnerability".
_ERRATUM_SUMMARY = re.compile(
    r"^(?:critical|important|moderate|low):\s|\bsecurity(?: and bug fix| and enhancement|"
    r" bug fix and enhancement|,? bug fix,? and enhancement)? update\b|"
    r"^\S+(?: \S+)? (?:vulnerability|vulnerabilities|regression)$", re.IGNORECASE)
# Red Hat-family errata list each fix as "* <package>: <title> (CVE-…)".
_ERRATUM_LINE = re.compile(r"^\* (.+?) \(((?:CVE-\d{4}-\d+(?:,\s*)?)+)\)\s*$", re.M)
# The product blurb GitHub's CNA opens its descriptions with ("cryptography is a package
# designed to …", "The libwebp packages provide …"): no title.
_BLURB = re.compile(r"^(?:[^.]{0,80}? (?:is|are) (?:a|an)\b|(?:The )?\S+ packages? provides?\b)")


def _distribution_line(vuln_id: str, details: str | None) -> str | None:
    """The erratum's own line for ``vuln_id`` ("openssh: Remote code execution in …")."""
    if not details or vuln_id not in details:
        return None
    for m in _ERRATUM_LINE.finditer(details):
        if vuln_id in re.split(r",\s*", m.group(2)):
            return " ".join(m.group(1).split())
    return None


def _telling_sentence(text: str | None, limit: int = 160) -> str | None:
    """The first sentence of ``text`` that is not a product blurb, or None."""
    line, _ = _squeeze(text or "", limit * 2)  # a blurb and the sentence after it fit
    while line:
        sentence = _first_sentence(line, limit)
        if sentence is None or not _BLURB.match(sentence):
            return sentence
        cut = line.find(". ")
        line = line[cut + 2:] if cut > 0 else ""
    return None


def finding_title(m: Match, adv: dict[str, Any], source: str, info: About) -> str:
    """The finding's name: a real title, never the opening of a product description.

    In order: the advisory's summary (when the advisory is about this vulnerability alone
    and the summary is not an erratum header such as "Important: openssh security
    update"); the CVE record's title (CVE JSON 5 ``cnaContainer.title``), then KEV's
    vulnerability name; the distribution's own words for this CVE (a Red Hat-family
    erratum's "* openssh: … (CVE-…)" line, the Debian tracker's ``description``, or a
    distribution's per-CVE record); "<package>: <CWE name>" from the CVE record's
    weaknesses.  Only when none exists: "<package>: " and the first sentence of the
    description that is not a product blurb, else "<package>: <vulnerability id>".
    """
    summary = " ".join((adv.get("summary") or "").split())
    cves = {i for i in (adv.get("id") or "", *adv.get("aliases", ())) if i.startswith("CVE-")}
    if summary and len(cves) <= 1 and not _ERRATUM_SUMMARY.search(summary):
        return summary
    if info.title:
        return info.title
    details = adv.get("details")
    distro = _distribution_line(m.vuln_id, details)
    if distro is None and not summary and cves <= {m.vuln_id} and (
            source == "debian-tracker" or is_distribution(m.ecosystem)):
        distro = _first_sentence(details)  # the tracker's or a per-CVE record's description
    if distro:
        return distro
    for cwe in info.cwes:
        name = cwe_name(cwe)
        if name:
            return f"{m.name}: {name}"
    sentence = _telling_sentence(info.description or details)
    return f"{m.name}: {sentence}" if sentence else f"{m.name}: {m.vuln_id}"


def _in(column, values: Sequence[Any]):  # type: ignore[no-untyped-def]
    return column.in_(bindparam(f"p_{column.name}", expanding=True)), {
        f"p_{column.name}": list(values)}


def _lookup(conn: Connection, vuln_ids: Sequence[str], advisory_pks: Sequence[int]) -> dict:
    """Everything needed to describe the hit vulnerabilities, in a handful of queries."""
    data: dict[str, Any] = {"adv": {}, "cve": defaultdict(dict), "kev": {}, "epss": {},
                            "aliases": defaultdict(set)}
    if not vuln_ids:
        return data
    if advisory_pks:
        clause, params = _in(advisories.c.pk, advisory_pks)
        for pk, adv_id, source, record in conn.execute(
                select(advisories.c.pk, advisories.c.id, advisories.c.source,
                       advisories.c.record).where(clause), params):
            data["adv"][pk] = (adv_id, source, orjson.loads(record))
    clause, params = _in(cve_records.c.id, vuln_ids)
    for cve, feed, record in conn.execute(
            select(cve_records.c.id, cve_records.c.feed, cve_records.c.record)
            .where(clause), params):
        data["cve"][cve][feed] = orjson.loads(record)
    clause, params = _in(kev.c.cve, vuln_ids)
    for row in conn.execute(select(kev).where(clause), params):
        data["kev"][row.cve] = row
    clause, params = _in(epss.c.cve, vuln_ids)
    for row in conn.execute(select(epss).where(clause), params):
        data["epss"][row.cve] = row
    # Aliases: every id of every advisory about these vulnerabilities.
    clause, params = _in(advisory_vulns.c.vuln_id, vuln_ids)
    for vuln, alias in conn.execute(
            select(advisory_vulns.c.vuln_id, advisory_aliases.c.alias)
            .join(advisory_aliases,
                  advisory_aliases.c.advisory_pk == advisory_vulns.c.advisory_pk)
            .where(clause), params):
        if alias != vuln:
            data["aliases"][vuln].add(alias)
    return data


@dataclass(frozen=True, slots=True)
class About:
    """What the CVE records, KEV and EPSS say about one vulnerability (built once)."""

    metrics: list[CvssMetric]
    references: list[Reference]
    exploit: Exploit
    description: str | None
    title: str | None
    workaround: str | None
    cwes: tuple[str, ...]
    aliases: tuple[str, ...]


def _about(vuln_id: str, data: dict) -> About:  # type: ignore[type-arg]
    cves = data["cve"].get(vuln_id, {})
    nvd, cve5 = cves.get("nvd", {}), cves.get("cve5", {})
    refs = _refs(nvd.get("references", ())) + _refs(cve5.get("references", ()))
    k, e = data["kev"].get(vuln_id), data["epss"].get(vuln_id)
    exploit = Exploit(
        known_exploited=k is not None, kev_date_added=k.date_added if k else None,
        kev_due_date=k.due_date if k else None, kev_ransomware=bool(k and k.ransomware),
        epss_score=e.score if e else None, epss_percentile=e.percentile if e else None,
        references=_unique(r for r in refs if "exploit" in r.type))
    metrics = _metrics(nvd.get("cvss", ())) + _metrics(cve5.get("cvss", ()))
    if not metrics:
        # JVN's score (v3, then v2) only where neither NVD nor the CNA scores the CVE:
        # JVN restates them when they do.  Its Japanese text is read for display
        # (knowledge.jvn_text), never as the English description.
        metrics = _metrics(cves.get("jvn", {}).get("cvss", ()))
    return About(
        metrics=metrics,
        references=refs, exploit=exploit,
        description=nvd.get("description") or cve5.get("description"),
        title=cve5.get("title") or (k.name if k is not None else None),
        workaround=cve5.get("workaround"),
        cwes=tuple(nvd.get("cwes") or cve5.get("cwes") or ()),
        aliases=tuple(sorted(data["aliases"].get(vuln_id, ()))))


def vulnerability_facts(conn: Connection, vuln_ids: Sequence[str]) -> dict[str, About]:
    """What the CVE records, KEV, EPSS and advisory aliases say about each of ``vuln_ids``.

    For findings that do not come from an advisory match (the host's own pending updates):
    the same enrichment build_findings gives a match, in the same handful of queries.
    """
    ids = sorted(set(vuln_ids))
    data = _lookup(conn, ids, ())
    return {vuln_id: _about(vuln_id, data) for vuln_id in ids}


def distribution_band(rating: str | None) -> str | None:
    """The severity band of a distribution's own rating (Debian urgency, Red Hat severity:
    ``Important`` -> ``High``), or None when the rating is missing or unknown."""
    return _DISTRO_BANDS.get((rating or "").lower())


def build_findings(conn: Connection, matches: Sequence[Match], *,
                   merge: bool = True) -> list[Finding]:
    """One Finding per (vulnerability, package), sorted most severe first.

    The matches of one vulnerability in several versions of one package (pip 18.1 and
    19.2.3 in two Pythons) make one finding listing every installation
    (:mod:`patchpilot.findings.installations`); without ``merge``, one per match (a
    re-match of the estate builds each distinct version's finding once, for every host).
    """
    data = _lookup(conn, sorted({m.vuln_id for m in matches}),
                   sorted({m.advisory_pk for m in matches}))
    about: dict[str, About] = {}
    adv_refs: dict[int, list[Reference]] = {}
    findings = []
    for m in matches:
        adv_id, source, adv = data["adv"][m.advisory_pk]
        info = about.get(m.vuln_id) or about.setdefault(m.vuln_id, _about(m.vuln_id, data))
        if m.advisory_pk not in adv_refs:
            adv_refs[m.advisory_pk] = _refs(adv.get("references", ()))
        cvss = preferred_metric(info.metrics + _metrics(adv.get("cvss", ())))
        distro_band = distribution_band(m.distro_severity)
        severity = cvss.severity if cvss else (distro_band or "Unknown")
        severity_source = "cvss" if cvss else ("distribution" if distro_band else "none")
        description = (info.description or adv.get("details") or adv.get("summary") or "")
        title = finding_title(m, adv, source, info)
        findings.append(Finding(
            vuln_id=m.vuln_id, name=title, summary=description, ecosystem=m.ecosystem,
            package=m.name, aliases=info.aliases,
            cvss=cvss, severity=severity, severity_source=severity_source,
            exploit=info.exploit,
            fix=Fix(m.fixed, None),
            workaround=info.workaround or adv.get("workaround") or NO_WORKAROUND,
            evidence=Evidence(installed_version=m.version, advisory_id=adv_id,
                              affected_range=m.affected_range, feed=m.feed,
                              source=source, packages=tuple(sorted({p.name for p in m.packages})),
                              owners=owners_of(m.packages)),
            cwes=info.cwes,
            references=_unique(info.references + adv_refs[m.advisory_pk]),
            installations=installations_of(m.ecosystem, m.version, m.fixed, m.packages)))
    findings = [with_commands(f) for f in (merge_findings(findings) if merge else findings)]
    findings.sort(key=sort_key)
    return findings


def with_commands(f: Finding) -> Finding:
    """``f`` with its fix command made of its installations' (one a line)."""
    commands = [c for c in dict.fromkeys(i.command for i in f.installations) if c]
    return replace(f, fix=Fix(f.fix.fixed_version, "\n".join(commands) or None))


def sort_key(f: Finding) -> tuple:
    """Most severe first: band, then score, then exploited (KEV or the vendor's word),
    then EPSS, then id."""
    return (-SEVERITY_ORDER.get(f.severity, -1), -(f.cvss.score if f.cvss else 0.0),
            not (f.exploit.known_exploited or f.exploit.vendor_exploited),
            -(f.exploit.epss_score or 0.0),
            f.vuln_id, f.package)
