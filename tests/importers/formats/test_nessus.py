from __future__ import annotations


def test_many_vuln_host_and_items(parse_report) -> None:
    parsed = parse_report("tenable/nessus__nessus_many_vuln.xml", expect="nessus")
    assert len(parsed.targets) == 1
    target = parsed.targets[0]
    assert (target.hostname, target.fqdn, target.ip, target.os) == (
        "preprod", "preprod.boardvantage.net", "12.233.108.201",
        "CISCO PIX 7.0")
    # Every item of this scan is severity 0: asset facts, no findings.
    assert [i.scanner_id for i in parsed.informational] == [
        "nessus:19506", "nessus:54615", "nessus:45590", "nessus:11936", "nessus:12053",
        "nessus:11219", "nessus:11219"]
    assert parsed.findings == []


def test_cwe_sample_fields(parse_report) -> None:
    parsed = parse_report("tenable/nessus__nessus_with_cwe-.nessus", expect="nessus")
    item = next(i for i in parsed.findings if i.scanner_id == "nessus:31649")
    assert item.cves[:2] == ("CVE-2006-1015", "CVE-2006-1549")
    assert len(item.cves) == 15
    assert item.title == "PHP 5.x < 5.2 Multiple Vulnerabilities"
    assert item.severity == "High"
    assert (item.port, item.protocol, item.service) == (80, "tcp", "www")
    assert item.cvss_vector == "AV:N/AC:L/Au:N/C:P/I:P/A:P"
    assert item.cvss_score == 7.5
    assert item.exploit_available is False
    assert item.solution == "Upgrade to PHP version 5.2.0 or later."
    assert item.cwes == ("CWE-94", "CWE-119", "CWE-399")
    assert item.references == ("http://www.hardened-php.net/advisory_092006.133.html",
                               "http://www.php.net/releases/5_2_0.php")
    assert item.target.ip == "44.228.249.3"
    assert item.line == 7676


def test_was_url_target(parse_report) -> None:
    parsed = parse_report("tenable/nessus_was__nessus_was_one_vuln.xml", expect="nessus")
    # The URL's host: hostname "google", FQDN "google.com" (as Tenable's CSV of it says).
    assert (parsed.targets[0].hostname, parsed.targets[0].fqdn) == ("google", "google.com")
    assert [(i.scanner_id, i.severity, i.port) for i in parsed.findings] == [
        ("nessus:98104", "High", 80)]
