"""Hostile XML: no entity is expanded, no DTD or file is loaded, whatever the format."""

from __future__ import annotations

from pathlib import Path

from patchpilot.importers import registry
from patchpilot.importers.model import ReportItem, Target

SECRET = "patchpilot-secret-canary-8c1f"

XXE = """<?xml version="1.0"?>
<!DOCTYPE NessusClientData_v2 [
  <!ENTITY leak SYSTEM "file://{path}">
  <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
  <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<NessusClientData_v2><Report name="x">
<ReportHost name="10.0.0.9"><HostProperties><tag name="host-ip">10.0.0.9</tag>
<tag name="operating-system">&leak;</tag></HostProperties>
<ReportItem port="22" svc_name="ssh" protocol="tcp" severity="3" pluginID="1" pluginName="x">
<description>&d;&leak;</description><solution>&leak;</solution><cve>CVE-2024-0001</cve>
</ReportItem></ReportHost></Report></NessusClientData_v2>
"""


def test_entities_are_never_expanded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    report = tmp_path / "hostile.nessus"
    report.write_text(XXE.format(path=secret), encoding="utf-8")
    with report.open("rb") as stream:
        fmt = registry.detect(registry.sniff(stream, report.name))
        rows = list(fmt.parse(stream, report.name))
    assert fmt.name == "nessus"
    [target] = [r for r in rows if isinstance(r, Target)]
    [item] = [r for r in rows if isinstance(r, ReportItem)]
    assert target.ip == "10.0.0.9"
    text = repr(rows)
    assert SECRET not in text
    assert "aaaaaaaaaa" not in text  # the billion laughs stayed unexpanded
    assert (item.cves, item.port, item.severity) == (("CVE-2024-0001",), 22, "High")
