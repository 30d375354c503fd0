from __future__ import annotations

import io
from collections import Counter

import pytest

from patchpilot.importers.formats import qualys
from patchpilot.importers.model import ReportError, ReportItem, Skipped, Sniff, Target


def test_asset_data_report_hosts_and_glossary(parse_report) -> None:
    parsed = parse_report("qualys/Qualys_Sample_Report.xml", expect="qualys")
    assert (len(parsed.findings), len(parsed.informational), len(parsed.skipped)) == (92, 209, 0)
    assert [t.ip for t in parsed.targets] == [
        "64.41.200.243", "64.41.200.244", "64.41.200.245", "64.41.200.247", "64.41.200.246",
        "64.41.200.249", "64.41.200.250"]
    assert parsed.targets[3] == Target(hostname="trn-win7", fqdn="trn-win7.trn.qualys.com",
                                       ip="64.41.200.247", os="Windows 2008 R2/7")
    assert Counter(i.severity for i in parsed.findings) == {
        "Low": 47, "Medium": 32, "Critical": 7, "High": 6}
    # Information gathered: severity None whatever the glossary's level.
    dns = parsed.informational[0]
    assert (dns.scanner_id, dns.title, dns.severity, dns.solution) == (
        "qualys:6", "DNS Host Name", "None", None)
    assert dns.output == "IP address\tHost name\n64.41.200.243\tdemo13.s02.sjc01.qualys.com"

    amd = next(i for i in parsed.findings if i.scanner_id == "qualys:370876")
    assert amd.target.hostname == "demo13"
    assert amd.cves == tuple(f"CVE-2018-{n}" for n in range(8930, 8937))
    assert amd.title == ("AMD Processors Multiple Security Vulnerabilities "
                         "(RYZENFALL/MASTERKEY/CHIMERA-FW/FALLOUT)")
    assert amd.severity == "High"  # Qualys level 4
    assert (amd.cvss_vector, amd.cvss_score) == (
        "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H", 9.0)
    assert amd.description is not None and amd.description.endswith(
        "execute arbitrary code on a targeted system.")
    assert amd.solution is not None and amd.solution.startswith(
        "AMD has confirmed the vulnerability.")
    assert amd.line == 335

    rc4 = next(i for i in parsed.findings if i.scanner_id == "qualys:38601")
    assert (rc4.target.ip, rc4.port, rc4.protocol, rc4.service) == (
        "64.41.200.247", 3389, "tcp", "win remote desktop")
    assert rc4.cves == ("CVE-2013-2566", "CVE-2015-2808")
    shellshock = next(i for i in parsed.findings if i.scanner_id == "qualys:13038")
    assert (shellshock.severity, shellshock.exploit_available, shellshock.port) == (
        "Critical", True, 80)


def test_asset_data_report_without_hosts(parse_report) -> None:
    parsed = parse_report("qualys/empty.xml", expect="qualys")
    assert (parsed.items, parsed.targets, parsed.skipped) == ([], [], [])


def test_pci_csv(parse_report) -> None:
    parsed = parse_report("qualys/monthly_pci_issue6932.csv", expect="qualys-csv")
    assert parsed.targets == [Target(hostname="abv", fqdn="abv.xyw.com.fj", ip="192.168.0.1",
                                     os="Linux 2.x")]
    assert (len(parsed.informational), len(parsed.skipped)) == (0, 0)
    [item] = parsed.findings
    assert (item.scanner_id, item.title) == ("qualys:86476", "Web Server Stopped Responding")
    assert (item.port, item.protocol, item.severity, item.cvss_score) == (80, "tcp", "Medium",
                                                                          6.4)
    assert (item.cves, item.cvss_vector) == ((), None)
    # Qualys' HTML is dropped from the threat text.
    assert item.description is not None and "<BR>" not in item.description
    assert item.output is not None and item.output.startswith(
        "The web server did not respond for 4 consecutive HTTP requests.")


_SCAN = b"""<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE SCAN SYSTEM "https://qualysguard.qualys.com/scan-1.dtd">
<SCAN value="scan/1.2">
<HEADER><KEY value="USERNAME">u</KEY></HEADER>
<IP value="10.0.0.5" name="web01.example.com">
<OS><![CDATA[Ubuntu 18.04]]></OS>
<INFOS><CAT value="Information gathering" port="22" protocol="tcp">
<INFO number="38050" severity="1"><TITLE>SSH banner</TITLE><RESULT>OpenSSH</RESULT></INFO>
</CAT></INFOS>
<VULNS><CAT value="General remote services" port="443" protocol="tcp">
<VULN number="38657" severity="3" cveid="CVE-2016-2183">
<TITLE><![CDATA[Sweet32]]></TITLE><CVSS_BASE source="service">5.0</CVSS_BASE>
<CVSS3_BASE>7.5</CVSS3_BASE>
<DIAGNOSIS><![CDATA[64-bit block ciphers.<P>]]></DIAGNOSIS>
<CONSEQUENCE>Plaintext recovery.</CONSEQUENCE><SOLUTION>Disable 3DES.</SOLUTION>
<RESULT>DES-CBC3-SHA</RESULT></VULN>
</CAT></VULNS>
</IP>
<IP value="10.0.0.6" status="down"/>
<IP value="10.0.0.7"/>
</SCAN>
"""


def test_scan_report() -> None:
    rows = list(qualys.parse(io.BytesIO(_SCAN), "scan.xml"))
    assert rows[0] == Target(hostname="web01", fqdn="web01.example.com", ip="10.0.0.5",
                             os="Ubuntu 18.04")
    banner, sweet32 = rows[1], rows[2]
    assert isinstance(banner, ReportItem) and isinstance(sweet32, ReportItem)
    assert (banner.scanner_id, banner.informational, banner.port, banner.output) == (
        "qualys:38050", True, 22, "OpenSSH")
    assert (sweet32.scanner_id, sweet32.cves, sweet32.severity) == (
        "qualys:38657", ("CVE-2016-2183",), "Medium")
    assert (sweet32.cvss_vector, sweet32.cvss_score, sweet32.port) == (None, 7.5, 443)
    assert sweet32.description == "64-bit block ciphers.\n\nPlaintext recovery."
    assert sweet32.solution == "Disable 3DES."
    assert sweet32.line == 11
    # A host down is no target; a host up without detections is one.
    assert rows[3:] == [Target(ip="10.0.0.7")]


def test_fixed_detection_is_skipped_and_broken_files_refused() -> None:
    report = (b"<ASSET_DATA_REPORT><HOST_LIST><HOST><IP>10.0.0.1</IP><VULN_INFO_LIST>"
              b"<VULN_INFO><QID>1</QID><TYPE>Vuln</TYPE><VULN_STATUS>Fixed</VULN_STATUS>"
              b"</VULN_INFO></VULN_INFO_LIST></HOST></HOST_LIST></ASSET_DATA_REPORT>")
    assert list(qualys.parse(io.BytesIO(report), "a.xml")) == [
        Target(ip="10.0.0.1"), Skipped("fixed in Qualys", 1)]
    with pytest.raises(ReportError, match=r"a.xml:1: malformed XML"):
        list(qualys.parse(io.BytesIO(report[:-20]), "a.xml"))
    with pytest.raises(ReportError, match="not a Qualys scan or asset data report"):
        list(qualys.parse(io.BytesIO(b"<WAS_SCAN_REPORT/>"), "a.xml"))


_SCAN_CSV = (
    '"Scan Results","Scan Results"\n'
    '"Company","Example"\n'
    '\n'
    '"IP","DNS","NetBIOS","OS","QID","Title","Vuln Status","Type","Severity","Port","Protocol",'
    '"FQDN","CVE ID","CVSS3 Base","Threat","Impact","Solution"\n'
    '"10.9.5.1","ip-10-9-5-1.internal","WEB1","Windows","91762","May update","Active","Vuln",'
    '"5","","","","CVE-2021-31192, CVE-2021-31188","9.9 (AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H)",'
    '"Update.","RCE.","Patch."\n'
    '"10.9.5.1","ip-10-9-5-1.internal","WEB1","Windows","105971","EOL","Fixed","Vuln","5",'
    '"","","","","","","",""\n'
    '"10.9.5.2","","","Linux","6","DNS Host Name","","Ig","1","","","","","","","",""\n')


def test_scan_report_csv_below_its_preamble() -> None:
    data = _SCAN_CSV.encode()
    sniffed = Sniff("scan.csv", data)
    assert qualys.detect_csv(sniffed) == 90
    rows = list(qualys.parse_csv(io.BytesIO(data), "scan.csv"))
    web1, update, fixed, other, dns = rows
    assert web1 == Target(hostname="web1", fqdn="ip-10-9-5-1.internal", ip="10.9.5.1",
                          os="Windows")
    assert isinstance(update, ReportItem) and isinstance(dns, ReportItem)
    assert (update.scanner_id, update.cves, update.severity, update.line) == (
        "qualys:91762", ("CVE-2021-31192", "CVE-2021-31188"), "Critical", 5)
    assert (update.cvss_vector, update.cvss_score, update.port) == (
        "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9, None)
    assert (update.description, update.solution) == ("Update.\n\nRCE.", "Patch.")
    assert fixed == Skipped("fixed in Qualys", 6)
    assert other == Target(ip="10.9.5.2", os="Linux")
    assert (dns.scanner_id, dns.informational, dns.severity) == ("qualys:6", True, "None")
