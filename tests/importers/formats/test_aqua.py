from __future__ import annotations

import io
from pathlib import Path

import pytest

from patchpilot.importers import registry
from patchpilot.importers.formats import aqua
from patchpilot.importers.model import ReportError, Target


def _counts(parsed) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    return (len(parsed.findings), len(parsed.informational), len(parsed.targets),
            len(parsed.skipped))


def test_devops_list(parse_report) -> None:
    parsed = parse_report("aqua/aqua_devops_issue_10611.json", expect="aqua")
    assert _counts(parsed) == (98, 0, 1, 3)
    assert parsed.targets == [Target(artifact="test:latest", os="debian 11.7")]
    assert {s.reason for s in parsed.skipped} == {"sensitive data"}
    item = parsed.findings[0]
    # "7.23.2, 8.0.0-alpha.4": the fix on the installed 7.x line.
    assert (item.scanner_id, item.ecosystem, item.package, item.installed_version,
            item.fixed_version, item.location) == (
        "CVE-2023-45133", "npm", "@babel/traverse", "7.22.15", "7.23.2",
        "/juice-shop/node_modules/@babel/traverse")
    assert (item.severity, item.cvss_vector, item.cvss_score, item.cwes) == (
        "High", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 8.8, ("CWE-697", "CWE-184"))
    node = next(i for i in parsed.findings if i.scanner_id == "CVE-2023-44487")
    assert (node.package, node.installed_version, node.fixed_version, node.location) == (
        "node.js", "18.17.1", "18.18.2", "/nodejs/bin/node")


def test_api_v2_image_report(parse_report) -> None:
    parsed = parse_report("aqua/many_v2.json", expect="aqua")
    assert _counts(parsed) == (3, 0, 1, 0)
    assert parsed.targets == [Target(artifact="example:latest")]
    first, beanutils, curl = parsed.findings
    # "libcrypto6-1.1" is a package, not a version: no fixed version read.
    assert (first.scanner_id, first.fixed_version, first.location, first.severity,
            first.cvss_score) == ("CVE-2101-1337", None, "/usr/lib/libcrypto.so", "High", 7.5)
    assert (beanutils.scanner_id, beanutils.fixed_version) == ("CVE-2019-10086", "1.9.4")
    assert (curl.scanner_id, curl.location, curl.severity) == ("CVE-2019-15601", "curl",
                                                               "Medium")


def test_cli_scan(parse_report) -> None:
    parsed = parse_report("aqua/many_vulns.json", expect="aqua")
    assert _counts(parsed) == (24, 0, 1, 0)
    assert parsed.targets == [Target(artifact="your_image:latest", os="alpine 3.9.4")]
    musl = parsed.findings[0]
    assert (musl.scanner_id, musl.ecosystem, musl.package, musl.installed_version,
            musl.fixed_version, musl.severity, musl.cvss_vector, musl.cvss_score) == (
        "CVE-2019-14697", "Alpine:3.9", "musl", "1.1.20-r4", "1.1.20-r5", "High",
        "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8)
    by_id = {i.scanner_id: i for i in parsed.findings}
    # Prose in fix_version: only a leading version list is read.
    assert by_id["CVE-2018-11771"].fixed_version == "1.18"
    assert by_id["CVE-2011-2730"].fixed_version is None
    assert by_id["WS-2009-0001"].severity == "Low"
    assert by_id["WS-2009-0001"].location == (
        "/usr/share/myapp/myapp.war:WEB-INF/lib/commons-codec-1.9.jar")


def test_one_vuln(parse_report) -> None:
    parsed = parse_report("aqua/one_vuln.json", expect="aqua")
    assert _counts(parsed) == (1, 0, 1, 0)
    assert parsed.findings[0].scanner_id == "CVE-2019-14697"
    assert parsed.findings[0].solution == "Upgrade package musl to version 1.1.20-r5 or above."


def test_api_v2_empty_list_names_the_image(parse_report) -> None:
    parsed = parse_report("aqua/over_api_v2_empty.json", expect="aqua")
    assert _counts(parsed) == (0, 0, 1, 0)
    assert parsed.targets == [Target(artifact="helloworld:latest")]


def test_empty_object(shared_data: Path) -> None:
    # "{}" carries no mark of any scanner: detection refuses it; read as Aqua it is
    # a scan without findings.
    path = shared_data / "reports" / "aqua" / "no_vuln.json"
    with path.open("rb") as stream:
        with pytest.raises(registry.UnknownFormat):
            registry.detect(registry.sniff(stream, path.name))
        assert list(aqua.parse(stream, path.name)) == []


def test_refusals() -> None:
    with pytest.raises(ReportError, match="not an Aqua report"):
        list(aqua.parse(io.BytesIO(b'{"foo": 1}'), "x.json"))
    with pytest.raises(ReportError, match="no results object"):
        list(aqua.parse(io.BytesIO(b'[{"image_name": "x"}]'), "x.json"))
