"""cargo audit --json: RustSec vulnerabilities and warnings."""

from __future__ import annotations

import io

import pytest

from patchpilot.importers.formats import cargo_audit
from patchpilot.importers.model import ReportError, ReportItem, Skipped, Target


def test_many_findings(parse_report) -> None:
    parsed = parse_report("cargo_audit/many_findings.json", expect="cargo-audit")
    assert parsed.targets == [Target()]
    assert (len(parsed.findings), len(parsed.informational)) == (4, 3)
    assert parsed.skipped == [Skipped("yanked crate warning")] * 6
    assert [(i.scanner_id, i.package, i.installed_version, i.fixed_version)
            for i in parsed.findings] == [
        ("RUSTSEC-2020-0091", "arc-swap", "0.4.7", "0.4.8"),
        ("RUSTSEC-2021-0020", "hyper", "0.13.9", "0.13.10"),
        ("RUSTSEC-2021-0003", "smallvec", "0.6.13", "0.6.14"),
        ("RUSTSEC-2021-0003", "smallvec", "1.5.0", "1.6.1"),
    ]
    item = parsed.findings[0]
    assert (item.cves, item.ecosystem, item.severity, item.cvss_vector) == (
        ("CVE-2020-35711",), "crates.io", "Unknown", None)
    assert item.title == "Dangling reference in `access::Map` with Constant"
    assert item.references == ("https://github.com/vorner/arc-swap/issues/45",)
    assert [(i.scanner_id, i.package, i.fixed_version, i.output)
            for i in parsed.informational] == [
        ("RUSTSEC-2021-0064", "cpuid-bool", None, "RustSec informational advisory: unmaintained"),
        ("RUSTSEC-2020-0016", "net2", None, "RustSec informational advisory: unmaintained"),
        ("RUSTSEC-2020-0056", "stdweb", None, "RustSec informational advisory: unmaintained"),
    ]


def test_cvss_vector_and_old_warning_list() -> None:
    data = (b'{"database": {}, "lockfile": {}, "vulnerabilities": {"found": true, "list": '
            b'[{"advisory": {"id": "RUSTSEC-2023-0044", "aliases": ["GHSA-xcf7-rvmh-g6q4"], '
            b'"cvss": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}, "versions": '
            b'{"patched": [">=0.10.55"]}, "package": {"name": "openssl", "version": '
            b'"0.10.48"}}]}, "warnings": [{"kind": "yanked", "package": {}, "advisory": null}]}')
    rows = list(cargo_audit.FORMAT.parse(io.BytesIO(data), "c.json"))
    assert rows[2] == Skipped("yanked crate warning")
    item = rows[1]
    assert isinstance(item, ReportItem)
    assert (item.aliases, item.fixed_version, item.severity, item.cvss_score) == (
        ("GHSA-xcf7-rvmh-g6q4",), "0.10.55", "High", 7.5)


def test_refused() -> None:
    with pytest.raises(ReportError, match="c.json: not a cargo audit report"):
        list(cargo_audit.FORMAT.parse(io.BytesIO(b'{"database": {}}'), "c.json"))
