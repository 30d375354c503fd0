"""A mixed estate for the plan's Windows work: the Linux hosts of the plan estate
(tests/builders/plan_estate.py) beside three Windows Server 2022 hosts whose findings are
what the MSRC producer reports (the issue 16 contract), built from the real February and
March 2026 CVRF documents loaded into the knowledge base.

* ``win-dc-01`` (build 10.0.20348.3270) misses February's and March's cumulative updates:
  February's 27 CVEs name KB5075906, March's 40 KB5078766 (which supersedes KB5075906);
* ``win-app-02`` and ``win-sql-03`` (10.0.20348.4773, February installed) miss March's
  40; ``win-sql-03`` also runs SQL Server 2022 (GDR) without KB5077465 (2 CVEs).

The first two are in the group ``windows-servers`` with a Sunday window; ``win-sql-03`` is
in no group (patched any time).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select

from patchpilot import worker
from patchpilot.assets.groups import add_members, create_group
from patchpilot.db.tables import msrc_fixes, msrc_products, msrc_vulns
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.findings.lifecycle import apply_findings
from patchpilot.findings.model import (
    MSRC,
    WINDOWS,
    Evidence,
    Exploit,
    Finding,
    Fix,
    Installation,
)
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory, WindowsInfo
from patchpilot.knowledge.cvss import severity_band
from patchpilot.models import CvssMetric
from patchpilot.queue import Job
from patchpilot.scans.groups import add_window
from tests.builders.plan_estate import AJENTI, FEEDS, OLD_FIREFOX, OLD_KERNEL, scan

WINDOWS_FEEDS = {**FEEDS,
                 "msrc/cvrfDocument-2026-Feb.xml": "msrc/cvrfDocument-2026-Feb.xml",
                 "msrc/cvrfDocument-2026-Mar.xml": "msrc/cvrfDocument-2026-Mar.xml"}
SERVER_2022 = "11923"  # MSRC product id of "Windows Server 2022"
SQL_2022_GDR = "12147"  # "Microsoft SQL Server 2022 for x64-based Systems (GDR)"
MARCH_CU, FEBRUARY_CU, SQL_GDR = "KB5078766", "KB5075906", "KB5077465"
STEPS = {MARCH_CU: "install KB5078766 (2026-03 cumulative update), restart required",
         FEBRUARY_CU: "install KB5075906 (2026-02 cumulative update), restart required",
         SQL_GDR: "install KB5077465 (2026-03 security update)"}
OLD_BUILD, FEB_BUILD = "10.0.20348.3270", "10.0.20348.4773"
SQL_BUILD = "16.0.1165.1"


def msrc_findings(engine: Engine, product_id: str, kb: str, installed: str,
                  package: str) -> list[Finding]:
    """The findings the MSRC producer reports for the CVEs ``kb`` fixes on ``product_id``
    (real rows of the loaded documents), on a host at build ``installed``."""
    f, v, p = msrc_fixes, msrc_vulns, msrc_products
    with engine.connect() as conn:
        name = conn.execute(select(p.c.name).where(p.c.product_id == product_id)).scalar_one()
        rows = conn.execute(
            select(f.c.cve, f.c.fixed_build, f.c.cvss_score, f.c.cvss_vector, v.c.title)
            .join(v, (v.c.month == f.c.month) & (v.c.cve == f.c.cve))
            .where(f.c.product_id == product_id, f.c.kb == kb).order_by(f.c.cve)).all()
    out = []
    for r in rows:
        cvss = (CvssMetric("3.1", r.cvss_vector, r.cvss_score,
                           severity_band("3.1", r.cvss_score), "msrc")
                if r.cvss_vector else None)
        out.append(Finding(
            vuln_id=r.cve, name=r.title or r.cve, summary=r.title or "", ecosystem=WINDOWS,
            package=package, aliases=(), cvss=cvss,
            severity=cvss.severity if cvss else "Unknown",
            severity_source="cvss" if cvss else "none", exploit=Exploit(),
            fix=Fix(kb, STEPS[kb]), workaround="",
            evidence=Evidence(installed_version=installed, advisory_id=kb,
                              affected_range=f"< {r.fixed_build}", feed="msrc", source="msrc",
                              packages=(name,)),
            installations=(Installation(None, installed, kb, STEPS[kb]),)))
    return out


def windows_host(engine: Engine, name: str, ubr: int, kbs: list[str]) -> int:
    """Ingest a Windows Server 2022 host's schema-2 inventory (no packages); its id."""
    inv = Inventory(
        schema=2, asset=AssetIdentity(hostname=name, machine_id=name),
        windows=WindowsInfo(product_name="Windows Server 2022 Standard",
                            family="Windows Server 2022", release="21H2", edition="Standard",
                            installation_type="Server", build=20348, ubr=ubr,
                            architecture="x64", kbs=kbs),
        collector=Collector(name="agent"))
    return ingest_inventory(engine, inv).asset_id


def build_windows_estate(engine: Engine) -> dict[str, Any]:
    """The hosts (name → asset id) with their findings stored and prioritised, and a
    window for ``windows-servers``."""
    ids = {"plant1-web-01": scan(engine, "plant1-web-01", OLD_FIREFOX, OLD_KERNEL),
           "plant2-dev-07": scan(engine, "plant2-dev-07", OLD_FIREFOX, AJENTI)}
    server = "Windows Server 2022"
    ids["win-dc-01"] = windows_host(engine, "win-dc-01", 3270, ["KB5073457"])
    ids["win-app-02"] = windows_host(engine, "win-app-02", 4773, [FEBRUARY_CU])
    ids["win-sql-03"] = windows_host(engine, "win-sql-03", 4773, [FEBRUARY_CU])
    march = msrc_findings(engine, SERVER_2022, MARCH_CU, FEB_BUILD, server)
    apply_findings(engine, ids["win-dc-01"],
                   msrc_findings(engine, SERVER_2022, FEBRUARY_CU, OLD_BUILD, server)
                   + msrc_findings(engine, SERVER_2022, MARCH_CU, OLD_BUILD, server),
                   complete=True, producer=MSRC)
    apply_findings(engine, ids["win-app-02"], march, complete=True, producer=MSRC)
    apply_findings(engine, ids["win-sql-03"],
                   march + msrc_findings(engine, SQL_2022_GDR, SQL_GDR, SQL_BUILD,
                                         "Microsoft SQL Server 2022"),
                   complete=True, producer=MSRC)
    with engine.begin() as conn:
        group = create_group(conn, "sato", "windows-servers")
        add_members(conn, "sato", group, [ids["win-dc-01"], ids["win-app-02"]])
        add_window(conn, "sato", group, rrule="FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0",
                   duration=timedelta(hours=4), timezone="Asia/Tokyo")
    worker.HANDLERS["prioritise"](engine, Job(0, "prioritise", {}, 1, None, None, None, None))
    return ids
