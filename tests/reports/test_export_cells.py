"""CSV/XLSX formula injection: a hostile asset or package name never becomes a live formula.

An asset is named by an agent's hostname or a CMDB import; written raw into an export,
``=HYPERLINK("http://evil.example","host")`` runs when the file is opened.  Every export
(executive/technical CSV and XLSX, the patch plan CSV, ``patchpilot scan --format csv``)
prefixes such text with ``'``; numbers stay numbers.
"""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine

from patchpilot.cells import safe_cell
from patchpilot.findings.scan import scan_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.knowledge.update import update_from
from patchpilot.reports.generate import generate
from patchpilot.reports.scan import FORMATS
from patchpilot.scans.plan import build_plan, plan_csv
from tests.builders.plan_estate import OLD_FIREFOX, scan

EVIL = '=HYPERLINK("http://evil.example","host")'
# Firefox on AlmaLinux 8 (eleven CVEs), one of them with its CVE record's CVSS score.
FEEDS = {"osv/ALSA-2022:0818.json": "osv/almalinux/almalinux8/ALSA-2022:0818.json",
         "cve/CVE-2022-26486.json": "nvd/cve5-critical-cvelist/CVE-2022-26486.json"}
SCORED = "CVE-2022-26486"


@pytest.mark.parametrize(("value", "expected"), [
    (EVIL, "'" + EVIL),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
    ("@SUM(1+1)", "'@SUM(1+1)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("plant1-web-01", "plant1-web-01"),  # a dash inside is harmless
    ("", ""),
    ("-1.5", "-1.5"),  # a number written as text stays a number
    ("+3", "+3"),
    (-1.5, -1.5),  # numbers are never touched
    (9.8, 9.8),
    (-3, -3),
    (None, None),
])
def test_safe_cell(value: object, expected: object) -> None:
    assert safe_cell(value) == expected


@pytest.fixture
def evil_estate(engine: Engine, feed_dir) -> int:  # type: ignore[no-untyped-def]
    """One host named by a formula, with ten real open findings (firefox)."""
    assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
    return scan(engine, EVIL, OLD_FIREFOX)


def test_report_csv_and_xlsx_neutralise_the_asset_name(evil_estate: int,
                                                       engine: Engine) -> None:
    with engine.connect() as conn:
        assets_csv = generate(conn, "executive", "csv", "en").content.decode()
        findings_csv = generate(conn, "technical", "csv", "en").content.decode()
        assets_xlsx = generate(conn, "executive", "xlsx", "en").content
        findings_xlsx = generate(conn, "technical", "xlsx", "en").content
    [asset] = list(csv.DictReader(io.StringIO(assets_csv)))
    assert (asset["asset"], asset["open"]) == ("'" + EVIL, "10")
    rows = list(csv.DictReader(io.StringIO(findings_csv)))
    assert len(rows) == 10
    assert {r["asset"] for r in rows} == {"'" + EVIL}
    assert [r["cvss_score"] for r in rows if r["vuln_id"] == SCORED] == ["9.6"]
    sheet = load_workbook(io.BytesIO(assets_xlsx))["Assets"]
    header = [c.value for c in sheet[1]]
    cell = sheet.cell(row=2, column=header.index("asset") + 1)
    assert (cell.data_type, cell.value) == ("s", "'" + EVIL)  # text, not a formula ("f")
    opened = sheet.cell(row=2, column=header.index("open") + 1)
    assert (opened.data_type, opened.value) == ("n", 10)
    sheet = load_workbook(io.BytesIO(findings_xlsx))["Findings"]
    header = [c.value for c in sheet[1]]
    cells = {sheet.cell(row=r, column=header.index("vuln_id") + 1).value: (
        sheet.cell(row=r, column=header.index("asset") + 1),
        sheet.cell(row=r, column=header.index("cvss_score") + 1))
        for r in range(2, sheet.max_row + 1)}
    assert len(cells) == 10
    assert {(a.data_type, a.value) for a, _ in cells.values()} == {("s", "'" + EVIL)}
    score = cells[SCORED][1]
    assert (score.data_type, score.value) == ("n", 9.6)  # a number a spreadsheet can sort


def test_plan_csv_neutralises_the_host_name(evil_estate: int, engine: Engine) -> None:
    with engine.connect() as conn:
        text = plan_csv(build_plan(conn))
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert (row["host"], row["package"], row["vulns"]) == ("'" + EVIL, "firefox", "10")


def test_scan_csv_neutralises_text_cells(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    """``patchpilot scan --format csv``: a package name (from a scanned lock file) or an
    advisory's text starting like a formula is neutralised; the score stays a number."""
    assert {r.status for r in update_from(engine, [feed_dir(FEEDS)])} == {"loaded"}
    inv = Inventory.from_packages([OLD_FIREFOX], asset=AssetIdentity(hostname="h"),
                                  collector=Collector(name="file"))
    result = scan_inventory(engine, inv)
    [finding] = [f for f in result.findings if f.vuln_id == SCORED]
    hostile = dataclasses.replace(finding, package=EVIL, summary="@SUM(1+1)")
    text = FORMATS["csv"](dataclasses.replace(result, findings=(hostile,)))
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert (row["package"], row["summary"], row["cvss_score"], row["vuln_id"]) == (
        "'" + EVIL, "'@SUM(1+1)", "9.6", SCORED)
