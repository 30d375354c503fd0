from __future__ import annotations

import io
from collections import Counter

import pytest

from patchpilot.importers.formats import nexpose
from patchpilot.importers.model import ReportError, ReportItem, Skipped, Target


def test_report_auth_nodes_and_definitions(parse_report) -> None:
    parsed = parse_report("nexpose/report_auth.xml", expect="nexpose")
    assert parsed.targets == [
        Target(hostname=f"host{n}", ip=ip, os="Ubuntu Linux 20.04")
        for n, ip in ((0, "192.168.0.12"), (1, "192.168.0.10"), (3, "192.168.0.11"),
                      (4, "192.168.0.42"))]
    assert (len(parsed.findings), len(parsed.informational), len(parsed.skipped)) == (26, 0, 0)
    assert Counter(i.scanner_id for i in parsed.findings) == {
        "nexpose:unix-user-home-dir-mode": 16, "nexpose:linux-icmp-redirect": 4,
        "nexpose:linux-grub-missing-passwd": 4, "nexpose:generic-tcp-timestamp": 2}
    redirect = parsed.findings[0]
    assert (redirect.scanner_id, redirect.title, redirect.target.hostname) == (
        "nexpose:linux-icmp-redirect", "ICMP redirection enabled", "host0")
    # CVSS 6.8 is Medium in PatchPilot's bands (Nexpose calls its 7 "Severe").
    assert (redirect.severity, redirect.cvss_vector, redirect.cvss_score) == (
        "Medium", "AV:N/AC:M/Au:N/C:P/I:P/A:P", 6.8)
    assert (redirect.cves, redirect.port, redirect.protocol, redirect.exploit_available) == (
        (), None, None, False)
    assert redirect.output is not None and redirect.output.splitlines()[1] == (
        "The net.ipv4.conf.default.accept_redirects sysctl variable is set to 1, expected 0.")
    assert redirect.line == 18
    timestamp = next(i for i in parsed.findings if i.scanner_id == "nexpose:generic-tcp-timestamp")
    # A 0.0 score: Nexpose's own severity 1 gives the band.
    assert (timestamp.severity, timestamp.cvss_score) == ("Low", 0.0)
    assert timestamp.references == ("http://uptime.netcraft.com",
                                    "http://www.forensicswiki.org/wiki/TCP_timestamps",
                                    "http://www.ietf.org/rfc/rfc1323.txt")
    assert timestamp.target.ip == "192.168.0.11"


def test_version_1_report_test_without_definition(parse_report) -> None:
    parsed = parse_report("nexpose/no_vuln.xml", expect="nexpose")
    assert parsed.targets == [Target(ip="192.168.1.1", os="Linux 2.6.9")]
    assert (len(parsed.informational), len(parsed.skipped)) == (0, 0)
    # The host's one vulnerable test cites no definition the report holds (the only one
    # it has is udp-ipid-zero): the item keeps its id, the rest is left to the knowledge base.
    [item] = parsed.findings
    assert (item.scanner_id, item.title, item.severity, item.line) == (
        "nexpose:tcp-seq-num-approximation", None, "Unknown", 12)
    assert item.output == ("TCP reset with incorrect sequence number triggered this fault "
                           "on 192.168.1.1:21: Connection reset by peer")


_REPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<NexposeReport version="2.0"><nodes>
<node address="10.0.0.9" status="alive" hardware-address="00:11:22:33:44:55">
<names><name>db.example.com</name></names>
<endpoints><endpoint protocol="tcp" port="22" status="open"><services>
<service name="SSH"><tests>
<test id="ssh-cve-2023-48795" status="vulnerable-version"><Paragraph>OpenSSH 8.9</Paragraph></test>
<test id="ssh-weak-mac" status="exception-vulnerable-version"/>
<test id="ssh-old" status="not-vulnerable"/>
</tests></service></services></endpoint></endpoints>
</node></nodes>
<VulnerabilityDefinitions>
<vulnerability id="SSH-CVE-2023-48795" title="Terrapin" severity="5" cvssScore="5.9"
 cvssVector="(AV:N/AC:H/Au:N/C:N/I:P/A:N)" cvssV3Score="5.9"
 cvssV3Vector="CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:N">
<exploits><exploit id="1"/></exploits>
<references><reference source="CVE">CVE-2023-48795</reference></references>
<solution><Paragraph>Upgrade OpenSSH.</Paragraph></solution>
</vulnerability></VulnerabilityDefinitions></NexposeReport>
"""


def test_service_tests_exceptions_and_v3_vectors() -> None:
    rows = list(nexpose.parse(io.BytesIO(_REPORT), "n.xml"))
    target, item, excepted, clean = rows
    assert target == Target(hostname="db", fqdn="db.example.com", ip="10.0.0.9",
                            mac="00:11:22:33:44:55")
    assert isinstance(item, ReportItem)
    assert (item.scanner_id, item.cves, item.title) == (
        "nexpose:ssh-cve-2023-48795", ("CVE-2023-48795",), "Terrapin")
    assert (item.port, item.protocol, item.service) == (22, "tcp", "SSH")
    assert (item.cvss_vector, item.cvss_score, item.severity) == (
        "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:N", 5.9, "Medium")
    assert (item.exploit_available, item.solution, item.output) == (
        True, "Upgrade OpenSSH.", "OpenSSH 8.9")
    assert excepted == Skipped("vulnerability exception in Nexpose", 8)
    assert clean == Skipped("test not-vulnerable", 9)


def test_truncated_report_is_refused() -> None:
    with pytest.raises(ReportError, match=r"n.xml:\d+: malformed XML"):
        list(nexpose.parse(io.BytesIO(_REPORT[:-40]), "n.xml"))


class _Pipe(io.RawIOBase):
    """A stream that cannot seek (an upload read as it arrives)."""

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        chunk = self.data.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def test_a_stream_that_cannot_seek_is_read_twice_all_the_same() -> None:
    stream = io.BufferedReader(_Pipe(_REPORT))
    assert not stream.seekable()
    rows = list(nexpose.parse(stream, "n.xml"))
    assert [r.title for r in rows if isinstance(r, ReportItem)] == ["Terrapin"]
