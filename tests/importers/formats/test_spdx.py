from __future__ import annotations

import io

import pytest

from patchpilot.importers import registry
from patchpilot.importers.formats import spdx
from patchpilot.importers.model import ReportError, Target


@pytest.mark.parametrize(("relative", "expect"), [("spdx/spdx_one_vuln.json", "spdx"),
                                                  ("spdx/spdx_one_vuln.spdx", "spdx-tag-value")])
def test_advisory_reference_is_an_item(parse_report, relative: str, expect: str) -> None:
    parsed = parse_report(relative, expect=expect)
    assert parsed.targets == [Target(artifact="generic-image")]
    assert parsed.skipped == []
    [item] = parsed.findings
    assert (item.scanner_id, item.cves) == ("CVE-2024-10001", ("CVE-2024-10001",))
    assert (item.ecosystem, item.package, item.installed_version) == (
        "Alpine:3.10", "alpine-baselayout", "3.1.2-r0")
    assert item.severity == "Unknown"
    assert item.references == ("https://example.com/advisories/CVE-2024-10001",)


def test_spdx_3_is_refused_with_the_reason(shared_data) -> None:
    path = shared_data / "reports" / "spdx" / "spdx_3_unsupported.json"
    with path.open("rb") as stream:
        fmt = registry.detect(registry.sniff(stream, path.name))
        assert fmt.name == "spdx"
        with pytest.raises(ReportError, match="SPDX 3 documents are not supported"):
            list(fmt.parse(stream, path.name))


def test_a_plain_sbom_is_refused() -> None:
    document = b"""{"spdxVersion": "SPDX-2.3", "name": "img", "packages": [{"name": "zlib",
      "versionInfo": "1.3", "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER",
      "referenceType": "purl",
      "referenceLocator": "pkg:apk/alpine/zlib@1.3?distro=alpine-3.19"}]}]}"""
    with pytest.raises(ReportError, match="it is an SBOM"):
        list(spdx.parse(io.BytesIO(document), "sbom.spdx.json"))
    text = b"SPDXVersion: SPDX-2.3\nDocumentName: img\nPackageName: zlib\nPackageVersion: 1.3\n"
    with pytest.raises(ReportError, match="it is an SBOM"):
        list(spdx.parse_tag_value(io.BytesIO(text), "sbom.spdx"))
