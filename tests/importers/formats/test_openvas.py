from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import openvas
from patchpilot.importers.model import ReportError, ReportItem, Skipped, Target


def test_xml_report_with_one_result(parse_report) -> None:
    parsed = parse_report("openvas/report_detail_v2.xml", expect="openvas")
    assert parsed.targets == [Target(hostname="server99", ip="10.99.99.99")]
    assert (len(parsed.findings), len(parsed.informational), len(parsed.skipped)) == (1, 0, 0)
    [item] = parsed.findings
    assert item.scanner_id == "openvas:1.3.6.1.4.1.25623.1.0.836484"
    assert item.title == "Microsoft Windows Multiple Vulnerabilities (KB5062557)"
    assert len(item.cves) == 93
    assert item.cves[:2] == ("CVE-2025-49659", "CVE-2025-48823")
    assert item.cves[-1] == "CVE-2025-49757"
    assert (item.port, item.protocol, item.service) == (42, "tcp", None)
    # Greenbone says High; the 9.8 score is Critical in PatchPilot's bands.
    assert item.severity == "Critical"
    assert item.cvss_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert item.cvss_score == 9.8
    assert item.solution == ("The vendor has released updates. Please see\n"
                             "  the references for more information.")
    assert item.references == ("https://support.microsoft.com/en-us/help/5062557",)
    assert item.description is not None and item.description.startswith(
        "This host is missing an important security")
    assert item.output is not None and item.output.startswith("Vulnerable range:")
    assert item.line == 45


def test_xml_report_without_results_names_no_host(parse_report) -> None:
    parsed = parse_report("openvas/no_vuln.xml", expect="openvas")
    assert (parsed.items, parsed.targets, parsed.skipped) == ([], [], [])


def test_csv_one_vuln(parse_report) -> None:
    parsed = parse_report("openvas/one_vuln.csv", expect="openvas-csv")
    assert parsed.targets == [Target(ip="10.0.0.8")]
    assert (len(parsed.informational), len(parsed.skipped)) == (0, 0)
    [item] = parsed.findings
    assert (item.scanner_id, item.title) == (
        "openvas:1.3.6.1.4.1.25623.1.0.105611", "SSH Weak Encryption Algorithms Supported")
    assert (item.port, item.protocol, item.severity, item.cvss_score) == (22, "tcp", "Medium",
                                                                          4.3)
    assert (item.cves, item.cvss_vector) == ((), None)
    assert item.solution == "Disable the weak encryption algorithms."


def test_csv_repeated_result_is_skipped(parse_report) -> None:
    parsed = parse_report("openvas/report_combine_v2.csv", expect="openvas-csv")
    assert parsed.targets == [Target(ip="45.33.32.156")]
    assert [(i.scanner_id, i.severity, i.cvss_score, i.port) for i in parsed.findings] == [
        ("openvas:1.3.6.1.4.1.25623.1.0.80091", "Low", 2.6, None)]
    assert parsed.informational == []
    assert parsed.skipped == [Skipped("the same result repeated", 30)]


def test_csv_log_results_are_informational(parse_report) -> None:
    parsed = parse_report("openvas/report_using_openVAS.csv", expect="openvas-csv")
    assert parsed.targets == [Target(ip="45.33.32.156")]
    assert (len(parsed.findings), len(parsed.informational), len(parsed.skipped)) == (1, 12, 0)
    assert parsed.findings[0].title == "TCP Timestamps Information Disclosure"
    services = parsed.informational[0]
    assert (services.scanner_id, services.title, services.severity) == (
        "openvas:1.3.6.1.4.1.25623.1.0.10330", "Services", "None")
    assert (services.port, services.protocol, services.line) == (443, "tcp", 30)


_RESULT = """<report format_id="a994b278"><report><results>
<result id="r1"><host>10.0.0.1</host><port>general/tcp</port>
<nvt oid="CVE-2021-44228"><name>log4j</name><cvss_base>10.0</cvss_base>
<tags>cvss_base_vector=AV:N/AC:L/Au:N/C:C/I:C/A:C|summary=Log4Shell</tags></nvt>
<threat>{threat}</threat><severity>{score}</severity></result>
</results></report></report>"""


def _parse(text: str) -> list[ReportItem | Target | Skipped]:
    return list(openvas.parse(io.BytesIO(text.encode()), "r.xml"))


def test_cve_scanner_result_and_overrides() -> None:
    target, item = _parse(_RESULT.format(threat="High", score="10.0"))
    assert isinstance(item, ReportItem) and target == Target(ip="10.0.0.1")
    assert (item.scanner_id, item.cves, item.port, item.protocol) == (
        "CVE-2021-44228", ("CVE-2021-44228",), None, "tcp")
    assert (item.cvss_vector, item.cvss_score, item.severity) == (
        "AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0, "Critical")
    assert _parse(_RESULT.format(threat="False Positive", score="-1")) == [
        target, Skipped("overridden as a false positive", 2)]
    assert _parse(_RESULT.format(threat="Error", score="-3")) == [
        target, Skipped("scan error", 2)]
    [_target, debug] = _parse(_RESULT.format(threat="Debug", score="-2"))
    assert isinstance(debug, ReportItem)
    assert (debug.informational, debug.severity) == (True, "None")


def test_truncated_xml_is_refused_with_its_line() -> None:
    with pytest.raises(ReportError, match=r"r.xml:5: malformed XML"):
        _parse(_RESULT.format(threat="High", score="10.0")[:-30])
