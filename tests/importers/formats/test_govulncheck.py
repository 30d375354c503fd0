"""govulncheck -json: the message stream, as printed and gathered into a list."""

from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import govulncheck
from patchpilot.importers.model import ReportError, ReportItem, Target


def test_stream_of_a_symbol_scan(parse_report) -> None:
    # 201 osv records, 116 findings over 40 vulnerabilities; 22 reach a called symbol.
    parsed = parse_report("govulncheck/issue_14642.json", expect="govulncheck")
    assert parsed.targets == [Target(artifact="github.com/alielmi98/golang-expense-tracker-api")]
    assert (len(parsed.findings), len(parsed.informational), len(parsed.skipped)) == (22, 18, 0)
    jwt = next(i for i in parsed.findings if i.scanner_id == "GO-2025-3553")
    assert (jwt.cves, jwt.aliases) == (("CVE-2025-30204",), ("GHSA-mh63-6h87-95cp",))
    assert (jwt.ecosystem, jwt.package, jwt.installed_version, jwt.fixed_version) == (
        "Go", "github.com/golang-jwt/jwt", "v3.2.2+incompatible", None)
    assert jwt.title == ("Excessive memory allocation during header parsing in "
                         "github.com/golang-jwt/jwt")
    assert (jwt.severity, jwt.cvss_vector, jwt.cvss_score) == ("Unknown", None, None)
    assert jwt.output is not None
    assert jwt.output.splitlines()[1] == (
        "github.com/golang-jwt/jwt.Token.SignedString via github.com/alielmi98/"
        "golang-expense-tracker-api/services.TokenService.GenerateToken "
        "(services/token_service.go:39:39)")
    assert len(jwt.output.splitlines()) == 5  # five findings, one per called symbol
    stdlib = next(i for i in parsed.findings if i.scanner_id == "GO-2025-4007")
    assert (stdlib.package, stdlib.installed_version, stdlib.fixed_version) == (
        "stdlib", "v1.24.4", "v1.24.9")
    assert stdlib.cves == ("CVE-2025-58187",)  # the record lists it twice
    # Required (module-level finding) and imported (package-level), never called.
    pgx = next(i for i in parsed.informational if i.scanner_id == "GO-2026-4771")
    assert (pgx.package, pgx.installed_version, pgx.fixed_version, pgx.output) == (
        "github.com/jackc/pgx/v5", "v5.5.5", None, None)


def test_list_with_called_and_imported_vulnerabilities(parse_report) -> None:
    parsed = parse_report("govulncheck/many_vulns_new_version_custom_severity.json",
                          expect="govulncheck")
    assert parsed.targets == [Target()]  # govulncheck 1.0.1 prints no SBOM message
    assert (len(parsed.findings), len(parsed.informational)) == (1, 1)
    item = parsed.findings[0]
    assert item.scanner_id == "GO-2021-0113"
    assert (item.cves, item.aliases) == (("CVE-2021-38561",), ("GHSA-ppp9-7jff-5vj2",))
    assert (item.package, item.installed_version, item.fixed_version) == (
        "golang.org/x/text", "v0.3.5", "v0.3.7")
    assert item.severity == "Low"  # the database's own word in this sample
    assert item.title == "Out-of-bounds read in golang.org/x/text/language"
    assert item.output == ("golang.org/x/text/language.Parse via vuln.tutorial.main "
                           "(govulncheck/vulnerable/main.go:12:43)")
    assert item.references[0] == "https://pkg.go.dev/vuln/GO-2021-0113"
    imported = parsed.informational[0]
    assert (imported.scanner_id, imported.severity, imported.fixed_version) == (
        "GO-2022-1059", "High", "v0.3.8")


def test_no_vulns(parse_report) -> None:
    parsed = parse_report("govulncheck/no_vulns_new_version.json", expect="govulncheck")
    assert parsed.targets == [Target()] and parsed.items == []


def test_sarif_output_is_not_this_format(shared_data) -> None:
    data = (shared_data / "reports" / "govulncheck" / "issue_15033_sarif.json").read_bytes()
    assert govulncheck.detect(govulncheck.Sniff("x.json", data)) == 0
    with pytest.raises(ReportError, match="not a govulncheck -json report: no config message"):
        list(govulncheck.FORMAT.parse(io.BytesIO(data), "x.json"))


def test_module_scan_counts_every_vulnerability() -> None:
    data = (b'{"config": {"protocol_version": "v1.0.0", "scan_level": "module"}}'
            b'{"osv": {"id": "GO-2022-1059", "aliases": ["CVE-2022-32149"], "severity": '
            b'[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}]}}'
            b'{"finding": {"osv": "GO-2022-1059", "fixed_version": "v0.3.8", "trace": '
            b'[{"module": "golang.org/x/text", "version": "v0.3.5"}]}}')
    rows = list(govulncheck.FORMAT.parse(io.BytesIO(data), "m.json"))
    item = rows[1]
    assert isinstance(item, ReportItem)
    assert not item.informational
    assert (item.severity, item.cvss_score) == ("High", 7.5)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "g.json: the file is empty"),
    (b'{"config": {"protocol_version": "v1.0.0"}}{"finding": ', "g.json: malformed JSON"),
    (b'{"config": {}}{"finding": {"osv": "GO-1", "trace": [{"module": "m"}]}}',
     "g.json: finding of GO-1 without its osv message"),
])
def test_refused(data: bytes, message: str) -> None:
    with pytest.raises(ReportError) as caught:
        list(govulncheck.FORMAT.parse(io.BytesIO(data), "g.json"))
    assert str(caught.value).startswith(message)
