from __future__ import annotations

import io

from patchpilot.importers.formats import qualys_vmdr
from patchpilot.importers.model import ReportItem, Skipped, Target


def test_many_vulns_fixed_one_skipped(parse_report) -> None:
    parsed = parse_report("qualys_vmdr/many_vulns_qid.csv", expect="qualys-vmdr")
    assert parsed.targets == [
        Target(hostname="webserver01", ip="10.0.0.10", os="Ubuntu 22.04"),
        Target(hostname="webserver02", ip="10.0.0.11", os="Ubuntu 22.04"),
        # Two addresses in the cell: the first; the FIXED row's asset is still covered.
        Target(hostname="appserver01", ip="10.0.0.20", os="CentOS 8"),
        Target(hostname="winserver01", ip="10.0.0.30", os="Windows Server 2019"),
        Target(hostname="dbserver01", ip="2001:db8::1", os="Windows Server 2016")]
    assert parsed.skipped == [Skipped("fixed in Qualys", 7)]
    assert parsed.informational == []
    assert [(i.scanner_id, i.severity, i.port, i.target.hostname) for i in parsed.findings] == [
        ("qualys:100001", "Low", 80, "webserver01"), ("qualys:100002", "Low", 443, "webserver02"),
        ("qualys:100004", "High", 3389, "winserver01"),
        ("qualys:100005", "Critical", 445, "dbserver01")]
    rce = parsed.findings[3]
    assert (rce.title, rce.protocol, rce.description, rce.solution, rce.output) == (
        "Critical RCE Vulnerability", "tcp", "Critical remote code execution.",
        "Apply vendor patch immediately.", "SMB vulnerability confirmed")
    assert (rce.cves, rce.cvss_vector, rce.cvss_score, rce.line) == ((), None, None, 9)


def test_one_vuln(parse_report) -> None:
    parsed = parse_report("qualys_vmdr/one_vuln_qid.csv", expect="qualys-vmdr")
    assert parsed.targets == [Target(hostname="testserver01", ip="10.0.0.1",
                                     os="Windows Server 2019")]
    assert (len(parsed.informational), len(parsed.skipped)) == (0, 0)
    [item] = parsed.findings
    assert (item.scanner_id, item.title, item.severity) == (
        "qualys:100269", "Microsoft Internet Explorer Security Update", "Critical")
    # Protocol "'-": none; the <P> of the threat text is dropped.
    assert (item.port, item.protocol) == (0, None)
    assert item.description == "Remote code execution vulnerability."


def test_no_vulns_with_and_without_preamble(parse_report) -> None:
    for name in ("qualys_vmdr/no_vuln_qid.csv", "qualys_vmdr/no_vuln_no_metadata_cve.csv"):
        parsed = parse_report(name, expect="qualys-vmdr")
        assert (parsed.items, parsed.targets, parsed.skipped) == ([], [], [])


def test_cve_view_rows_fold_into_one_detection() -> None:
    text = ('"CVE","CVSSv3.1 Base (nvd)","QID","Title","Severity","Type Detected","Protocol",'
            '"Port","Status","Asset Id","Asset Name","Asset IPV4"\n'
            '"CVE-2024-0001","5.3","1","T","4","Confirmed","TCP","22","ACTIVE","7","h","10.0.0.1"\n'
            '"CVE-2024-0002","9.8","1","T","4","Confirmed","TCP","22","ACTIVE","7","h","10.0.0.1"\n'
            '"","","2","Info","1","Information","","","NEW","7","h","10.0.0.1"\n')
    rows = list(qualys_vmdr.parse(io.BytesIO(text.encode()), "v.csv"))
    target, cves, info = rows
    assert target == Target(hostname="h", ip="10.0.0.1")
    assert isinstance(cves, ReportItem) and isinstance(info, ReportItem)
    assert (cves.cves, cves.cvss_score, cves.severity, cves.line) == (
        ("CVE-2024-0001", "CVE-2024-0002"), 9.8, "High", 2)
    assert (info.scanner_id, info.informational, info.severity) == ("qualys:2", True, "None")
