"""``--format table`` in a console narrower than its ids and versions: no column is
squeezed away or cut; the table is drawn as wide as they need and the title gives way."""

from __future__ import annotations

from sqlalchemy import Engine

from patchpilot.findings.scan import scan_inventory
from patchpilot.knowledge.update import update_from
from patchpilot.reports.scan import table_format
from tests.builders.sweep_estate import BASH, PYGMENTS_OLD, SOPE_OLD, UPDATE_FEEDS, inventory

HEADERS = ("Severity", "CVSS", "Vulnerability", "Package", "Installed", "Fixed in",
           "Exploit", "Title")


def test_a_narrow_console_keeps_every_column_whole(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    update_from(engine, [feed_dir(UPDATE_FEEDS)])
    result = scan_inventory(engine, inventory("deb-old-1", *SOPE_OLD, BASH, PYGMENTS_OLD))
    assert sorted(f.vuln_id for f in result.findings) == [
        "CVE-2015-8557", "CVE-2022-40896", "CVE-2025-53603"]
    for width in (40, 80, 200):
        lines = table_format.render(result, width=width).splitlines()
        header = next(line for line in lines if "Vulnerability" in line)
        assert [h for h in HEADERS if f" {h} " in header or f" {h}" in header] == list(HEADERS)
        body = "\n".join(lines)
        for f in result.findings:
            assert f.vuln_id in body and f.package in body
            assert (f.fix.fixed_version or "unfixed") in body
        table_lines = [line for line in lines if line[:1] in "┏┃┡│└"]
        # Every line of the table is as wide as the first: nothing cropped at the console.
        assert {len(line) for line in table_lines} == {len(table_lines[0])}
        assert len(table_lines[0]) >= min(width, 60)


def test_installed_versions_go_on_lines_never_breaking_a_version() -> None:
    versions = ["18.1", "19.2.3", "22.0.4", "23.0.1", "23.2.1",
                "1:1.2.13.dfsg-1+deb12u1-a-very-long-one"]
    assert table_format._packed(versions).split("\n") == [
        "18.1, 19.2.3, 22.0.4,", "23.0.1, 23.2.1,", "1:1.2.13.dfsg-1+deb12u1-a-very-long-one"]
    assert table_format._packed(["2.0.2"]) == "2.0.2"
