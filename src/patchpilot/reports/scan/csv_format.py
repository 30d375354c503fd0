"""``--format csv``: one row per finding with the eight report fields and the evidence."""

from __future__ import annotations

import csv
import io

from patchpilot.cells import safe_row
from patchpilot.findings.model import Finding
from patchpilot.findings.scan import ScanResult

COLUMNS = ("vuln_id", "cve", "aliases", "name", "severity", "cvss_version", "cvss_score",
           "cvss_vector", "ecosystem", "package", "installed_version", "installations",
           "affected_range",
           "fix_state", "fixed_version", "upgrade_command", "known_exploited",
           "kev_due_date", "epss_score", "epss_percentile", "exploit_references",
           "workaround", "advisory_id", "source", "summary")


def _installations(f: Finding) -> str:
    # "/a/site-packages 18.1 -> 23.3; /b/site-packages 19.2.3 -> 23.3" (every copy).
    return "; ".join(" ".join(p for p in (i.location, i.installed_version) if p)
                     + (f" -> {i.fixed_version}" if i.fixed_version else "")
                     for i in f.installations)


def render(result: ScanResult) -> str:
    """CSV text with a header row; text cells that start like a formula are neutralised
    (a package or advisory name comes from the scanned files)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for f in result.findings:
        writer.writerow(safe_row((
            f.vuln_id, f.cve or "", " ".join(f.aliases), f.name, f.severity,
            f.cvss.version if f.cvss else "", f.cvss.score if f.cvss else "",
            f.cvss.vector if f.cvss else "", f.ecosystem, f.package,
            f.evidence.installed_version, _installations(f), f.evidence.affected_range,
            f.fix.state,
            f.fix.fixed_version or "", f.fix.command or "",
            "yes" if f.exploit.known_exploited else "no", f.exploit.kev_due_date or "",
            "" if f.exploit.epss_score is None else f.exploit.epss_score,
            "" if f.exploit.epss_percentile is None else f.exploit.epss_percentile,
            " ".join(r.url for r in f.exploit.references), f.workaround,
            f.evidence.advisory_id, f.evidence.source, f.summary)))
    return out.getvalue()
