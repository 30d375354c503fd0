from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import tenable_csv
from patchpilot.importers.model import ReportError, ReportItem, Target


def test_tenable_sc_export_two_hosts(parse_report) -> None:
    parsed = parse_report("tenable/issue_11102.csv", expect="tenable-csv")
    assert [t.ip for t in parsed.targets] == ["1.2.3.4", "2.3.4.5"]
    assert parsed.targets[0].mac == "fa:16:3e:e6:0b:98"
    assert (len(parsed.findings), len(parsed.informational), len(parsed.skipped)) == (3, 0, 0)
    assert [(i.target.ip, i.port) for i in parsed.findings] == [
        ("1.2.3.4", 443), ("2.3.4.5", 443), ("1.2.3.4", 8443)]
    item = parsed.findings[0]
    assert item.scanner_id == "nessus:42873"
    assert item.cves == ("CVE-2016-2183",)
    assert item.title == "SSL Medium Strength Cipher Suites Supported (SWEET32)"
    # Tenable.sc's Severity (High, from CVSS v3) wins over the plugin's Risk Factor (Medium).
    assert item.severity == "High"
    assert item.protocol == "tcp"
    assert item.cvss_vector == "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"
    assert item.cvss_score == 7.5
    assert item.exploit_available is False
    assert item.references == ("https://www.openssl.org/blog/blog/2016/08/24/sweet32/",
                               "https://sweet32.info")
    assert item.output is not None and item.output.startswith("Medium Strength Ciphers")
    assert item.line == 2


def test_tenable_sc_export_blank_rows_and_cwe(parse_report) -> None:
    parsed = parse_report("tenable/nessus__nessus_many_vuln.csv", expect="tenable-csv")
    # 529 all-empty rows follow the four results.
    assert [(i.scanner_id, i.target.ip) for i in parsed.findings] == [
        ("nessus:35291", "10.1.1.1"), ("nessus:51192", "10.1.1.1"),
        ("nessus:57582", "10.2.1.1"), ("nessus:65821", "10.2.1.1")]
    assert (len(parsed.informational), len(parsed.targets), len(parsed.skipped)) == (0, 2, 0)
    weak_hash, self_signed, rc4 = (parsed.findings[0], parsed.findings[2],
                                   parsed.findings[3])
    assert weak_hash.cwes == ("CWE-310",)
    assert weak_hash.exploit_available is True
    assert weak_hash.cvss_vector == (
        "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N/E:P/RL:O/RC:C")
    # No v3 vector: the v2 one, bare, with its score.
    assert (self_signed.cvss_vector, self_signed.cvss_score) == (
        "AV:N/AC:L/Au:N/C:P/I:P/A:N", 6.4)
    assert rc4.cves == ("CVE-2013-2566", "CVE-2015-2808")
    assert rc4.title == "SSL RC4 Cipher Suites Supported (Bar Mitzvah)"


def test_nessus_csv_informational_rows(parse_report) -> None:
    parsed = parse_report("tenable/nessus__nessus_many_vuln2-all.csv", expect="tenable-csv")
    assert parsed.targets == [Target(ip="52.208.101.182")]
    assert (len(parsed.findings), len(parsed.informational), len(parsed.skipped)) == (1, 29, 0)
    tls10 = parsed.findings[0]
    assert (tls10.scanner_id, tls10.title, tls10.severity) == (
        "nessus:104743", "TLS Version 1.0 Protocol Detection", "Medium")
    assert (tls10.port, tls10.protocol, tls10.cvss_vector, tls10.cvss_score) == (
        443, "tcp", None, 6.5)
    known_ca = next(i for i in parsed.informational if i.scanner_id == "nessus:95631")
    assert known_ca.cves == ("CVE-2004-2761",)
    assert known_ca.cwes == ("CWE-310",)
    assert known_ca.severity == "None"
    traceroute = next(i for i in parsed.informational if i.scanner_id == "nessus:10287")
    assert (traceroute.port, traceroute.protocol, traceroute.solution) == (0, "udp", None)


def test_nessus_was_csv(parse_report) -> None:
    parsed = parse_report("tenable/nessus_was__nessus_was_one_vuln.csv", expect="tenable-csv")
    assert parsed.targets == [Target(hostname="google", fqdn="google.com")]
    [item] = parsed.findings
    assert (item.scanner_id, item.title, item.severity, item.cvss_score) == (
        "nessus:98104", "Cross-Site Scripting (XSS)", "High", 7.1)
    # WAS writes the application protocol and no port.
    assert (item.port, item.protocol, item.service) == (None, None, "http")
    assert parsed.informational == [] and parsed.skipped == []


_NESSUS_HEADER = "Plugin ID,CVE,CVSS,Risk,Host,Protocol,Port,Name\n"


def _parse(text: str) -> list[ReportItem]:
    rows = tenable_csv.parse(io.BytesIO(text.encode()), "x.csv")
    return [r for r in rows if isinstance(r, ReportItem)]


def test_nessus_rows_per_cve_fold_into_one_item() -> None:
    items = _parse(_NESSUS_HEADER
                   + "11,CVE-2020-0001,5.0,Medium,10.0.0.1,tcp,22,SSH\n"
                   + "11,CVE-2020-0002,5.0,Medium,10.0.0.1,tcp,22,SSH\n"
                   + "11,CVE-2020-0001,5.0,Medium,10.0.0.2,tcp,22,SSH\n")
    assert [(i.target.ip, i.cves, i.line) for i in items] == [
        ("10.0.0.1", ("CVE-2020-0001", "CVE-2020-0002"), 2), ("10.0.0.2", ("CVE-2020-0001",), 4)]


def test_empty_file_is_refused_and_header_only_is_no_findings() -> None:
    with pytest.raises(ReportError, match="x.csv: the file is empty"):
        _parse("")
    assert _parse(_NESSUS_HEADER) == []
