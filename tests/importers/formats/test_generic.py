"""The generic findings format (CSV and JSON) and its downloadable templates."""

from __future__ import annotations

import io
from importlib import resources

import pytest

from patchpilot.importers import registry
from patchpilot.importers.formats import generic
from patchpilot.importers.model import ReportError, ReportItem, Target

TEMPLATES = resources.files("patchpilot.importers") / "templates"

WEB = Target(hostname="shop", fqdn="shop.example.co.jp")
HOST = Target(ip="192.0.2.10")
IMAGE = Target(artifact="registry.example.com/shop/api:2.3.1")


def _read(name: str) -> tuple[str, list[object]]:
    data = (TEMPLATES / name).read_bytes()
    fmt = registry.detect(registry.sniff(io.BytesIO(data), name))
    return fmt.name, list(fmt.parse(io.BytesIO(data), name))


@pytest.mark.parametrize(("name", "expect", "lines"), [
    ("generic-findings.csv", "generic-csv", (2, 3, 5)),  # the SSH row's references span two
    ("generic-findings.json", "generic-json", (None, None, None)),
])
def test_templates_parse_exactly(name: str, expect: str, lines: tuple) -> None:
    fmt, rows = _read(name)
    assert fmt == expect
    assert [r for r in rows if isinstance(r, Target)] == [WEB, HOST, IMAGE]
    web, ssh, log4j = (r for r in rows if isinstance(r, ReportItem))
    # A web-application finding with the tester's own id, no CVE, no package.
    assert web == ReportItem(
        target=WEB, scanner_id="WEB-2024-001",
        title="Reflected cross-site scripting in the product search",
        description="The q parameter of /search is written back into the page without HTML "
                    "escaping; a crafted link runs script in the victim's session.",
        port=443, protocol="tcp", severity="Medium",
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", cvss_score=6.1,
        exploit_available=False,
        solution="Escape every request value written into HTML (use the template engine's "
                 "auto-escaping).",
        workaround="Filter <script> and event-handler attributes in q at the WAF.",
        references=("https://owasp.org/www-community/attacks/xss/",), cwes=("CWE-79",),
        line=lines[0])
    # A CVE on a host's port, severity from the vector (the severity cell is empty).
    assert (ssh.target, ssh.scanner_id, ssh.cves, ssh.port, ssh.protocol) == (
        HOST, "CVE-2023-48795", ("CVE-2023-48795",), 22, "tcp")
    assert (ssh.ecosystem, ssh.package, ssh.installed_version, ssh.fixed_version) == (
        "Ubuntu:22.04", "openssh-server", "1:8.9p1-3ubuntu0.4", "1:8.9p1-3ubuntu0.5")
    assert (ssh.severity, ssh.cvss_score, ssh.exploit_available) == ("Medium", 5.9, True)
    assert ssh.references == ("https://nvd.nist.gov/vuln/detail/CVE-2023-48795",
                              "https://terrapin-attack.com/")
    assert (ssh.cwes, ssh.line) == (("CWE-354",), lines[1])
    # A package in a container image.
    assert (log4j.target, log4j.scanner_id, log4j.ecosystem, log4j.package) == (
        IMAGE, "CVE-2021-44228", "Maven", "org.apache.logging.log4j:log4j-core")
    assert (log4j.installed_version, log4j.fixed_version, log4j.severity, log4j.cvss_score,
            log4j.port) == ("2.14.1", "2.17.1", "Critical", 10.0, None)
    assert (log4j.cwes, log4j.workaround, log4j.line) == (
        ("CWE-502", "CWE-917"), "Remove JndiLookup.class from the log4j-core jar.", lines[2])


def test_japanese_headers() -> None:
    data = ("資産,脆弱性ID,タイトル,深刻度,ポート,攻撃コード,対策,回避策,参考URL\n"
            "web01,VULN-7,管理画面のデフォルトパスワード,緊急,8443/TCP,あり,パスワードを変更する,"
            "接続元IPを制限する,https://example.jp/a https://example.jp/b\n"
            "web01,12,TLS 1.0 が有効,情報,443,なし,,,\n").encode()
    assert generic.detect(registry.sniff(io.BytesIO(data), "j.csv")) == 90
    rows = list(generic.FORMAT.parse(io.BytesIO(data), "j.csv"))
    assert rows[0] == Target(hostname="web01")
    first, second = rows[1], rows[2]
    assert isinstance(first, ReportItem) and isinstance(second, ReportItem)
    assert (first.scanner_id, first.title, first.severity, first.port, first.protocol) == (
        "VULN-7", "管理画面のデフォルトパスワード", "Critical", 8443, "tcp")
    assert (first.exploit_available, first.solution, first.workaround) == (
        True, "パスワードを変更する", "接続元IPを制限する")
    assert first.references == ("https://example.jp/a", "https://example.jp/b")
    # A bare number is prefixed; severity 情報 (None) is informational.
    assert (second.scanner_id, second.severity, second.informational, second.line) == (
        "generic:12", "None", True, 3)


@pytest.mark.parametrize(("data", "message"), [
    (b"asset,vulnerability_id,severity\nweb01,WEB-1,High\n,WEB-2,Low\n",
     "g.csv:3: the required column 'asset' is empty"),
    (b"asset,vulnerability_id,severity,cvss_vector\nweb01,WEB-1,,\n",
     "g.csv:2: the required column 'severity' (or 'cvss_vector') is empty"),
    (b"asset,title,severity\nweb01,x,High\n",
     "g.csv:1: the header has no 'vulnerability_id' column"),
    (b"asset,vulnerability_id,title\nweb01,x,y\n",
     "g.csv:1: the header has neither a 'severity' nor a 'cvss_vector' column"),
    ("asset,資産,vulnerability_id,severity\n".encode(),
     "g.csv:1: the columns 'asset' and '資産' both mean 'asset'"),
    (b"asset,vulnerability_id,severity\nweb01,WEB-1,Severe-ish\n",
     "g.csv:2: column 'severity': 'Severe-ish' is not one of Critical, High, Medium, Low, None"),
    (b"asset,vulnerability_id,cvss_vector\nweb01,WEB-1,AV:Q\n",
     "g.csv:2: column 'cvss_vector': 'AV:Q' is not a CVSS vector"),
    (b"asset,vulnerability_id,severity,port\nweb01,WEB-1,Low,http\n",
     "g.csv:2: column 'port': 'http' is not a port number"),
    (b"asset,vulnerability_id,severity,exploit_available\nweb01,WEB-1,Low,maybe\n",
     "g.csv:2: column 'exploit_available': 'maybe' is not true or false"),
])
def test_csv_refused_with_line_and_column(data: bytes, message: str) -> None:
    with pytest.raises(ReportError) as caught:
        list(generic.FORMAT.parse(io.BytesIO(data), "g.csv"))
    assert str(caught.value) == message


@pytest.mark.parametrize(("data", "message"), [
    (b'{"patchpilot_findings": 1, "findings": [{"asset": "a", "vulnerability_id": "X", '
     b'"severity": "Low"}, {"vulnerability_id": "Y", "severity": "Low"}]}',
     "g.json: finding #2: the required column 'asset' is empty"),
    (b'{"patchpilot_findings": 2, "findings": []}',
     "g.json: generic findings version 2 is not supported (this reader knows 1)"),
    (b'{"patchpilot_findings": 1}', "g.json: no 'findings' list"),
])
def test_json_refused(data: bytes, message: str) -> None:
    with pytest.raises(ReportError) as caught:
        list(generic.FORMAT_JSON.parse(io.BytesIO(data), "g.json"))
    assert str(caught.value) == message


@pytest.mark.parametrize(("asset", "target"), [
    ("10.0.0.5", Target(ip="10.0.0.5")),
    ("2001:db8::1", Target(ip="2001:db8::1")),
    ("DB01", Target(hostname="db01")),
    ("Mail.Example.COM.", Target(hostname="mail", fqdn="mail.example.com")),
    ("https://shop.example.co.jp/login", Target(hostname="shop", fqdn="shop.example.co.jp")),
    ("nginx:1.25", Target(artifact="nginx:1.25")),
    ("github.com/acme/portal", Target(artifact="github.com/acme/portal")),
])
def test_asset_to_target(asset: str, target: Target) -> None:
    assert generic.target_of(asset) == target


def test_other_scanners_csv_are_not_claimed(shared_data) -> None:
    claimed = []
    for path in sorted((shared_data / "reports").glob("*/*.csv")):
        with path.open("rb") as stream:
            if generic.detect(registry.sniff(stream, path.name)):
                claimed.append(path.name)
    assert claimed == []
