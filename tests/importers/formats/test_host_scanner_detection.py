"""The network and host scanners' formats claim exactly their own samples, among every
report sample of every folder (not only theirs)."""

from __future__ import annotations

from pathlib import Path

from patchpilot.importers import registry

# Which format each sample of these folders is, by content.
_EXPECTED = {
    "tenable/issue_11102.csv": "tenable-csv",
    "tenable/nessus__nessus_many_vuln.csv": "tenable-csv",
    "tenable/nessus__nessus_many_vuln2-all.csv": "tenable-csv",
    "tenable/nessus_was__nessus_was_one_vuln.csv": "tenable-csv",
    "openvas/no_vuln.xml": "openvas",
    "openvas/report_detail_v2.xml": "openvas",
    "openvas/one_vuln.csv": "openvas-csv",
    "openvas/report_combine_v2.csv": "openvas-csv",
    "openvas/report_using_openVAS.csv": "openvas-csv",
    "qualys/Qualys_Sample_Report.xml": "qualys",
    "qualys/empty.xml": "qualys",
    "qualys/monthly_pci_issue6932.csv": "qualys-csv",
    "qualys_vmdr/many_vulns_qid.csv": "qualys-vmdr",
    "qualys_vmdr/no_vuln_no_metadata_cve.csv": "qualys-vmdr",
    "qualys_vmdr/no_vuln_qid.csv": "qualys-vmdr",
    "qualys_vmdr/one_vuln_qid.csv": "qualys-vmdr",
    "nexpose/no_vuln.xml": "nexpose",
    "nexpose/report_auth.xml": "nexpose",
}
_OURS = set(_EXPECTED.values())


def test_each_sample_is_detected_as_its_format_and_no_other_is(shared_data: Path) -> None:
    reports = shared_data / "reports"
    claimed: dict[str, str] = {}
    for path in sorted(reports.glob("*/*")):
        with path.open("rb") as stream:
            sniffed = registry.sniff(stream, path.name)
        scores = {f.name: f.detect(sniffed) for f in registry.FORMATS if f.name in _OURS}
        best = max(scores, key=lambda name: scores[name])
        if scores[best] > 0:
            claimed[path.relative_to(reports).as_posix()] = best
    assert claimed == _EXPECTED
