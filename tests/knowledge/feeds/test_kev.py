"""CISA KEV transformer: JSON and CSV catalogue, errors, fetch."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.feeds.interface import RecordKind
from patchpilot.knowledge.feeds.kev import FEED
from patchpilot.models import KevEntry
from tests.conftest import SHARED_DATA
from tests.knowledge.conftest import Answer, FeedServer

DATA = SHARED_DATA  # ../shared/data, or PATCHPILOT_SHARED_DATA
KEV_JSON = DATA / "kev" / "known_exploited_vulnerabilities.json"
KEV_CSV = DATA / "kev" / "known_exploited_vulnerabilities.csv"
VUNNEL = DATA / "distro" / "vunnel-fixtures" / "kev"

LOG4SHELL = KevEntry(
    cve="CVE-2021-44228",
    date_added="2021-12-10",
    due_date="2021-12-24",
    ransomware=True,
    vendor="Apache",
    product="Log4j2",
    name="Apache Log4j2 Remote Code Execution Vulnerability",
    required_action=(
        "For all affected software assets for which updates exist, the only acceptable "
        "remediation actions are: 1) Apply updates; OR 2) remove affected assets from agency "
        "networks. Temporary mitigations using one of the measures provided at "
        "https://www.cisa.gov/uscert/ed-22-02-apache-log4j-recommended-mitigation-measures are "
        "only acceptable until updates are available."),
)


def head(path: Path) -> bytes:
    return path.read_bytes()[:4096]


def test_feed_identity():
    assert (FEED.name, FEED.kind, FEED.priority) == ("kev", RecordKind.KEV, 0)


def test_json_catalogue():
    entries = list(FEED.read(KEV_JSON))
    assert len(entries) == json.loads(KEV_JSON.read_bytes())["count"] == 1404
    assert len({e.cve for e in entries}) == 1404
    by_cve = {e.cve: e for e in entries}
    assert by_cve["CVE-2021-44228"] == LOG4SHELL
    assert entries[0] == KevEntry(
        cve="CVE-2025-48384", date_added="2025-08-25", due_date="2025-09-15", ransomware=False,
        vendor="Git", product="Git", name="Git Link Following Vulnerability",
        required_action=("Apply mitigations per vendor instructions, follow applicable BOD 22-01 "
                         "guidance for cloud services, or discontinue use of the product if "
                         "mitigations are unavailable."))
    assert sum(e.ransomware for e in entries) == 293


def test_csv_catalogue_matches_json():
    assert list(FEED.read(KEV_CSV)) == list(FEED.read(KEV_JSON))


def test_small_catalogue_and_single_entry():
    catalogue = list(FEED.read(VUNNEL / "valid-catalog-1.json"))
    assert [e.cve for e in catalogue][0] == "CVE-2025-0108"
    assert len(catalogue) == 3
    single = list(FEED.read(VUNNEL / "single-entry/example1.json"))
    assert [(e.cve, e.date_added, e.vendor) for e in single] == [
        ("CVE-2025-0108", "2025-02-18", "Palo Alto Networks")]


@pytest.mark.parametrize(("path", "claimed"), [
    (KEV_JSON, True),
    (KEV_CSV, True),
    (VUNNEL / "valid-catalog-1.json", True),
    (VUNNEL / "single-entry/example1.json", True),
    (DATA / "kev" / "known_exploited_vulnerabilities_schema.json", False),  # names the field
    (DATA / "nvd/nvd-api2-osvdev/nvdcve-2.0__CVE-2024-3094.json", False),
    (DATA / "epss/CVE_2021_EPSS.csv", False),
])
def test_claims(path, claimed):
    assert FEED.claims(path, head(path)) is claimed


def test_truncated_json(tmp_path):
    text = KEV_JSON.read_text()
    path = tmp_path / "known_exploited_vulnerabilities.json"
    path.write_text(text[:10_000])
    with pytest.raises(FeedError) as err:
        list(FEED.read(path))
    assert err.value.path == str(path)
    assert err.value.line == text[:10_000].count("\n") + 1
    assert "truncated" in err.value.detail


def test_json_entry_without_cve(tmp_path):
    catalogue = json.loads(KEV_JSON.read_text())
    del catalogue["vulnerabilities"][7]["cveID"]
    path = tmp_path / "kev.json"
    path.write_text(json.dumps(catalogue))
    with pytest.raises(FeedError, match=r"vulnerabilities\[7\]: cveID is missing"):
        list(FEED.read(path))


def test_json_bad_date(tmp_path):
    catalogue = json.loads(KEV_JSON.read_text())
    catalogue["vulnerabilities"][0]["dueDate"] = "15/09/2025"
    path = tmp_path / "kev.json"
    path.write_text(json.dumps(catalogue))
    with pytest.raises(FeedError,
                       match=r"vulnerabilities\[0\] \(CVE-2025-48384\): dueDate '15/09/2025'"):
        list(FEED.read(path))


def test_csv_row_without_cve_names_row_and_line(tmp_path):
    lines = KEV_CSV.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[3] = lines[3][lines[3].index(","):]  # drop row 3's cveID, keep its other fields
    path = tmp_path / "kev.csv"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(FeedError) as err:
        list(FEED.read(path))
    assert err.value.detail == "row 3: cveID is missing"
    assert err.value.line == 4


def test_truncated_csv(tmp_path):
    text = KEV_CSV.read_text(encoding="utf-8")
    path = tmp_path / "kev.csv"
    cut = text.index("Citrix Session Recording Improper")  # inside a quoted field
    path.write_text(text[:cut], encoding="utf-8")
    with pytest.raises(FeedError, match="malformed CSV|truncated"):
        list(FEED.read(path))
    # Cut between fields: the short last row is reported with its line.
    cut = text.index(",Citrix,")
    path.write_text(text[:cut], encoding="utf-8")
    with pytest.raises(FeedError, match=r"row 2 has 1 fields, expected 11 \(truncated\?\)"):
        list(FEED.read(path))


def test_fetch(feed_server: FeedServer, tmp_path, monkeypatch):
    url = feed_server.file("/sites/default/files/feeds/known_exploited_vulnerabilities.json",
                           KEV_JSON.read_bytes())
    monkeypatch.setattr("patchpilot.knowledge.feeds.kev.JSON_URL", url)
    with httpx.Client() as client:
        paths = FEED.fetch(client, tmp_path, None)
    assert [r.path for r in feed_server.requests] == [
        "/sites/default/files/feeds/known_exploited_vulnerabilities.json"]
    assert [p.name for p in paths] == ["known_exploited_vulnerabilities.json"]
    assert paths[0].read_bytes() == KEV_JSON.read_bytes()
    assert len(list(FEED.read(paths[0]))) == 1404


def test_fetch_errors(feed_server: FeedServer, tmp_path, monkeypatch):
    # A 503, then the real catalogue cut after 500 bytes (a dropped connection).
    url = feed_server.answers("/kev.json", Answer(503, b"busy"),
                              Answer(200, KEV_JSON.read_bytes()[:500]))
    monkeypatch.setattr("patchpilot.knowledge.feeds.kev.JSON_URL", url)
    with httpx.Client() as client:
        with pytest.raises(FeedDownloadError, match=f"^{url}: HTTP 503$"):
            FEED.fetch(client, tmp_path, None)
        with pytest.raises(FeedDownloadError, match=f"^{url}: .*not valid JSON"):
            FEED.fetch(client, tmp_path, None)
    assert not (tmp_path / "known_exploited_vulnerabilities.json").exists()
