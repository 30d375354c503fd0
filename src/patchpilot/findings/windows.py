"""Windows findings: what :func:`patchpilot.knowledge.windows.match_windows` decided, as
Finding objects of the producer ``msrc`` (docs: /work/notes/windows-contract.md).

* the title, description and workaround come from the MSRC document (the source); the
  CVE record's, NVD's, KEV's and EPSS's facts are added as for any finding
  (:func:`patchpilot.findings.build.vulnerability_facts`);
* CVSS: MSRC's vector for the product, weighed with NVD's and the CVE record's by
  :func:`patchpilot.knowledge.cvss.preferred_metric` (NVD's v3.1 first when it has one);
* MSRC's "Exploited: Yes" is exploit evidence next to KEV (``Exploit.vendor_exploited``);
* the fix is the update to install, "install KB5078766 (2026-03 cumulative update),
  restart required"; the evidence names the product id, the fixed build and the KB chain
  that decided.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.engine import Connection

from patchpilot.db.tables import msrc_vulns
from patchpilot.findings.build import sort_key, vulnerability_facts
from patchpilot.findings.model import MSRC, WINDOWS, Evidence, Finding, Fix, Installation
from patchpilot.findings.phrases import NO_WORKAROUND
from patchpilot.inventory.model import WindowsInfo
from patchpilot.knowledge.cvss import metric_from_vector, preferred_metric
from patchpilot.knowledge.windows import (
    WindowsHost,
    WindowsMatch,
    WindowsMatchResult,
    match_windows,
    month_key,
    month_number,
)

# Severity bands of MSRC ratings, used only when no CVSS vector is given.
_MSRC_BANDS = {"Critical": "Critical", "Important": "High", "Moderate": "Medium",
               "Low": "Low"}
# How the fix command names an update of each MSRC subtype.
_KINDS = {"security update": "cumulative update", "monthly rollup": "monthly rollup",
          "security only": "security-only update", "security hotpatch update": "hotpatch",
          "ie cumulative": "Internet Explorer cumulative update"}


def windows_host(info: WindowsInfo) -> WindowsHost:
    """The knowledge layer's view of an inventory's ``windows`` part."""
    return WindowsHost(
        family=info.family, release=info.release, installation_type=info.installation_type,
        architecture=info.architecture, build=info.build, ubr=info.ubr,
        service_pack=info.service_pack, kbs=frozenset(kb.upper() for kb in info.kbs),
        kbs_complete=info.kbs_complete, components=dict(info.components))


def os_row(info: WindowsInfo) -> tuple[str, str]:
    """The ``asset_packages`` (name, version) of a Windows host's OS:
    ``("Windows Server 2022|21H2|Server Core|x64|0", "10.0.20348.3270")``.

    The name holds what picks the host's MSRC products, so an emergency sweep finds the
    Windows hosts of a vulnerability's products with one set query, as it finds packages
    (:func:`host_of_row` reads it back); the version is build.UBR as findings show it.
    """
    host = windows_host(info)
    name = "|".join((info.family or "", info.release or "", info.installation_type or "",
                     info.architecture or "", str(info.service_pack or 0)))
    return name, host.installed or "unknown"


def host_of_row(name: str) -> WindowsHost:
    """The product facts an :func:`os_row` name holds (KBs and build are not in it)."""
    family, release, installation, arch, sp = ([*name.split("|"), "", "", "", ""])[:5]
    return WindowsHost(family=family or None, release=release or None,
                       installation_type=installation or None, architecture=arch or None,
                       service_pack=int(sp) if sp.isdigit() else None)


def fix_command(m: WindowsMatch) -> str:
    """``install KB5078766 (2026-03 cumulative update), restart required``."""
    kind = _KINDS.get((m.subtype or "").lower(), "security update")
    if not m.package.startswith("Windows") and kind == "cumulative update":
        kind = "security update"  # SQL Server's GDR/CU security updates
    restart = ("" if m.restart is None
               else ", restart required" if m.restart else ", no restart needed")
    return f"install {m.install_kb} ({month_number(m.install_month)} {kind}){restart}"


def _detail(m: WindowsMatch) -> str:
    """The decision in words: product, fixed build, the KB chain and what decided."""
    why = (f"build {m.installed} is below the fixed build {m.fixed_build}"
           if m.decided_by == "build"
           else f"none of {', '.join(m.chain)} is installed")
    chain = " -> ".join(m.chain)
    return (f"MSRC product {m.product_id} ({m.product_name}); fixed by {m.kb} "
            f"({m.month}, {m.subtype or 'update'}"
            f"{f', fixed build {m.fixed_build}' if m.fixed_build else ''}); "
            f"KB chain {chain} (none installed); {why}")


def _msrc_vulns(conn: Connection, cves: Sequence[str]) -> dict[str, dict[str, object]]:
    """The newest MSRC document's words about each CVE (title, description, workaround,
    exploited)."""
    out: dict[str, tuple[tuple[int, int], dict[str, object]]] = {}
    if not cves:
        return {}
    v = msrc_vulns.c
    for row in conn.execute(select(v.month, v.cve, v.title, v.description, v.workaround,
                                   v.exploited).where(v.cve.in_(sorted(set(cves))))):
        key = month_key(row.month)
        seen = out.get(row.cve)
        if seen is None or key > seen[0]:
            out[row.cve] = (key, dict(row._mapping))
        else:  # exploited in any month's document stays exploited
            seen[1]["exploited"] = bool(seen[1]["exploited"]) or bool(row.exploited)
    return {cve: data for cve, (_, data) in out.items()}


def windows_findings(conn: Connection, result: WindowsMatchResult) -> list[Finding]:
    """One Finding per (CVE, product) the host has open, most severe first."""
    cves = sorted({m.cve for m in result.matches})
    about = vulnerability_facts(conn, cves)
    words = _msrc_vulns(conn, cves)
    out = []
    for m in result.matches:
        info = about[m.cve]
        msrc = words.get(m.cve, {})
        own = metric_from_vector(m.cvss_vector or "", "msrc")
        cvss = preferred_metric([*info.metrics, *([own] if own else [])])
        band = _MSRC_BANDS.get(m.severity or "")
        severity = cvss.severity if cvss else (band or "Unknown")
        command = fix_command(m)
        out.append(Finding(
            vuln_id=m.cve,
            name=str(msrc.get("title") or info.title or f"{m.package}: {m.cve}"),
            summary=str(msrc.get("description") or info.description or ""),
            ecosystem=WINDOWS, package=m.package, aliases=info.aliases,
            cvss=cvss, severity=severity,
            severity_source="cvss" if cvss else ("distribution" if band else "none"),
            exploit=replace(info.exploit, vendor_exploited=bool(msrc.get("exploited"))),
            fix=Fix(m.install_kb, command),
            workaround=str(msrc.get("workaround") or info.workaround or NO_WORKAROUND),
            evidence=Evidence(installed_version=m.installed, advisory_id=m.install_kb,
                              affected_range=m.affected_range, feed=MSRC, source=MSRC,
                              packages=(m.product_name,), detail=_detail(m)),
            cwes=info.cwes, references=tuple(info.references),
            installations=(Installation(None, m.installed, m.install_kb, command),)))
    out.sort(key=sort_key)
    return out


def match_windows_host(conn: Connection, info: WindowsInfo
                       ) -> tuple[WindowsMatchResult, list[Finding]]:
    """Match one host's Windows facts and build its findings."""
    result = match_windows(conn, windows_host(info))
    return result, windows_findings(conn, result)


def windows_lines(result: WindowsMatchResult, limit: int = 20) -> list[str]:
    """What a Windows match could not judge, in plain lines for the CLI and the scan
    result: end of life first (never "no findings"), then notes, then undetermined CVEs."""
    lines = [f"end of life: {reason}" for reason in result.end_of_life]
    lines += [f"not matched: {note}" for note in result.notes]
    lines += [f"undetermined {u.cve}: {u.reason}" for u in result.undetermined[:limit]]
    if len(result.undetermined) > limit:
        lines.append(f"… and {len(result.undetermined) - limit} more undetermined")
    return lines
