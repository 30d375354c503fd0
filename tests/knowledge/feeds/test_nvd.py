"""NVD transformer: API 2.0 pages, items and bare cve objects, legacy 1.1 feeds, fetch."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.feeds.interface import RecordKind
from patchpilot.knowledge.feeds.nvd import FEED, NvdFeed
from patchpilot.models import CvssMetric, Reference
from tests.conftest import SHARED_DATA
from tests.knowledge.conftest import Answer, FeedServer, Seen

DATA = SHARED_DATA  # ../shared/data, or PATCHPILOT_SHARED_DATA
NVD = DATA / "nvd"
OSVDEV = NVD / "nvd-api2-osvdev"
DTRACK = NVD / "nvd-api2-dependencytrack"
TRIVY = DATA / "distro" / "trivy-db-testdata" / "nvd"
VUNNEL = DATA / "distro" / "vunnel-fixtures" / "nvd"


def read_one(path: Path):
    records = list(FEED.read(path))
    assert len(records) == 1
    return records[0]


def head(path: Path) -> bytes:
    return path.read_bytes()[:4096]


def test_feed_identity():
    assert (FEED.name, FEED.kind, FEED.priority) == ("nvd", RecordKind.CVE, 50)


def test_api2_page_xz_backdoor():
    record = read_one(OSVDEV / "nvdcve-2.0__CVE-2024-3094.json")
    assert record.id == "CVE-2024-3094"
    assert record.source == "nvd"
    assert record.published == "2024-03-29T17:15:21.150"
    assert record.modified == "2026-06-17T07:43:17.830"
    assert record.status == "Modified"
    assert record.description.startswith(
        "Malicious code was discovered in the upstream tarballs of xz, starting with version "
        "5.6.0.")
    vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"
    # Both the CNA's (Secondary) and NVD's (Primary) v3.1 metric, in feed order; the
    # ssvcV203 metric carries no CVSS vector and is not a score.
    assert record.cvss == (
        CvssMetric("3.1", vector, 10.0, "Critical", "secalert@redhat.com"),
        CvssMetric("3.1", vector, 10.0, "Critical", "nvd@nist.gov"),
    )
    assert record.cwes == ("CWE-506",)
    # 59 references in the file, 55 distinct URLs (NVD repeats URLs per source).
    assert len(record.references) == 55
    assert record.references[0] == Reference(
        "https://access.redhat.com/security/cve/CVE-2024-3094", "vendor advisory")
    assert record.title is None and record.workaround is None


def test_exploit_tagged_references():
    record = read_one(OSVDEV / "nvdcve-2.0__CVE-2023-4863.json")
    assert record.cvss == (CvssMetric("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
                                      8.8, "High", "nvd@nist.gov"),)
    assert record.exploit_references == (
        Reference("https://news.ycombinator.com/item?id=37478403", "exploit"),
        Reference("https://stackdiary.com/critical-vulnerability-in-webp-codec-cve-2023-4863/",
                  "exploit"),
    )
    assert len(record.references) == 44
    # Untagged references are plain web links.
    assert Reference("http://www.openwall.com/lists/oss-security/2023/09/21/4",
                     "web") in record.references


def test_single_item_v30_and_v2():
    record = read_one(DTRACK / "CVE-2017-5638-cvssv3-rating.json")
    assert record.id == "CVE-2017-5638"
    assert record.cvss == (
        CvssMetric("3.0", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "Critical",
                   "nvd@nist.gov"),
        CvssMetric("2.0", "AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0, "High", "nvd@nist.gov"),
    )
    assert record.references == (Reference(
        "http://blog.talosintelligence.com/2017/03/apache-0-day-exploited.html",
        "technical description"),)
    assert record.cwes == ("CWE-20",)
    assert record.description.startswith("The Jakarta Multipart parser in Apache Struts 2")


def test_single_item_cvss_v4():
    record = read_one(DTRACK / "CVE-2017-5638-cvssv4-rating.json")
    assert record.cvss == (CvssMetric(
        "4.0", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H", 10.0,
        "Critical", "nvd@nist.gov"),)


def test_primary_and_cna_sources():
    record = read_one(DTRACK / "cve-2024-23113.json")
    assert [(m.version, m.score, m.severity, m.source) for m in record.cvss] == [
        ("3.1", 9.8, "Critical", "nvd@nist.gov"), ("3.1", 9.8, "Critical", "psirt@fortinet.com")]
    assert record.cwes == ("CWE-134",)
    assert record.status == "Analyzed"


def test_bare_cve_objects_with_every_version_and_rejected():
    record = read_one(TRIVY / "happy/vuln-list-nvd/api/2024/CVE-2024-5732.json")
    assert [(m.version, m.score, m.source) for m in record.cvss] == [
        ("4.0", 6.9, "nvd@nist.gov"), ("3.1", 9.8, "nvd@nist.gov"),
        ("3.1", 7.3, "cna@vuldb.com"), ("2.0", 7.5, "cna@vuldb.com")]
    rejected = read_one(TRIVY / "happy/vuln-list-nvd/api/2024/CVE-2024-0069.json")
    assert rejected.status == "Rejected"
    assert rejected.cvss == ()


def test_full_page():
    records = list(FEED.read(VUNNEL / "full-page.json"))
    assert len(records) == 38
    assert len({r.id for r in records}) == 38
    assert records[0].id == "CVE-2023-27314"


def test_legacy_11_feed():
    records = list(FEED.read(OSVDEV / "nvdcve-1.1-test-data.json"))
    assert len(records) == 669
    by_id = {r.id: r for r in records}
    gitlab = by_id["CVE-2022-0090"]
    assert gitlab.published == "2022-01-18T17:15Z"
    assert gitlab.modified == "2022-01-25T14:49Z"
    assert gitlab.cvss == (
        CvssMetric("3.1", "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:N/I:H/A:N", 6.5, "Medium",
                   "nvd@nist.gov"),
        CvssMetric("2.0", "AV:N/AC:L/Au:N/C:N/I:P/A:N", 5.0, "Medium", "nvd@nist.gov"),
    )
    assert gitlab.cwes == ("CWE-269",)
    assert gitlab.references[0] == Reference("https://hackerone.com/reports/1415964",
                                             "permissions required")
    assert gitlab.description.startswith("An issue has been discovered affecting GitLab")
    assert by_id["CVE-2022-36548"].exploit_references == (Reference(
        "https://github.com/onEpAth936/cve/blob/master/bug_e/edoc-doctor-appointment-system/"
        "Stored%20Cross%20Site%20Scripting%20(XSS).md", "exploit"),)
    # 1.1 had no status: rejected entries are recognised by their description.
    assert sum(r.status == "Rejected" for r in records) == 29
    assert by_id["CVE-2022-3063"].status == "Rejected"


def test_legacy_feed_gzipped(tmp_path):
    path = tmp_path / "nvdcve-1.1-2022.json.gz"
    path.write_bytes(gzip.compress((OSVDEV / "nvdcve-1.1-test-data.json").read_bytes()))
    assert FEED.claims(path, head(path))
    assert len(list(FEED.read(path))) == 669


def test_scores_computed_from_vector_and_bad_vectors_skipped(tmp_path):
    page = json.loads((OSVDEV / "nvdcve-2.0__CVE-2023-4863.json").read_text())
    metric = page["vulnerabilities"][0]["cve"]["metrics"]["cvssMetricV31"][0]
    metric["cvssData"]["baseScore"] = 1.0  # a wrong score in the feed is not believed
    page["vulnerabilities"][0]["cve"]["metrics"]["cvssMetricV2"] = [
        {"source": "nvd@nist.gov", "type": "Primary", "cvssData": {"vectorString": "AV:X/garbage"}}]
    path = tmp_path / "page.json"
    path.write_text(json.dumps(page))
    assert [(m.version, m.score) for m in read_one(path).cvss] == [("3.1", 8.8)]


@pytest.mark.parametrize(("path", "claimed"), [
    (OSVDEV / "nvdcve-2.0__CVE-2024-3094.json", True),
    (OSVDEV / "nvdcve-1.1-test-data.json", True),
    (DTRACK / "cve.json", True),
    (TRIVY / "happy/vuln-list-nvd/api/2023/CVE-2023-0001.json", True),
    (VUNNEL / "single-entry.json", True),
    (OSVDEV / "CVE-2012-2812.json", False),  # an OSV record
    (NVD / "vuls-fixtures/nvd-feed-cve-v2__CVE-2014-0160.json", False),  # vuls' own format
    (NVD / "vuls-fixtures/nvd-api-cve__CVE-2020-0001.json", False),
    (NVD / "cve5-osvdev/cve5__CVE-2024-3094.json", False),
    (DATA / "kev/known_exploited_vulnerabilities.json", False),
    (DATA / "epss/CVE_2021_EPSS.csv", False),
    # "cve" as a string or list, not an NVD item: CSAF VEX, GitLab reports, Node.js WG.
    (DATA / "distro/trivy-db-testdata/redhat-csaf/vuln-list-redhat/csaf-vex/cve-2025-33333.json",
     False),
    (DATA / "reports/gitlab_dep_scan/gl-dependency-scanning-report-1-vuln_v15.json", False),
    (DATA / "osv/npm-nodejs-security-wg/core/17.json", False),
])
def test_claims(path, claimed):
    assert FEED.claims(path, head(path)) is claimed


def test_invalid_json_names_file_and_line():
    path = TRIVY / "sad/vuln-list-nvd/api/CVE-2020-0001.json"
    with pytest.raises(FeedError) as err:
        list(FEED.read(path))
    assert err.value.path == str(path)
    assert err.value.line == 1
    assert "not valid JSON" in err.value.detail


def test_truncated_page(tmp_path):
    text = (VUNNEL / "full-page.json").read_text()
    path = tmp_path / "nvd-1.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(FeedError) as err:
        list(FEED.read(path))
    assert err.value.line == text[: len(text) // 2].count("\n") + 1
    assert "truncated" in str(err.value)


@pytest.mark.parametrize(("name", "message"), [
    ("vuls-fixtures/nvd-feed-cve-v2__CVE-2014-0160.json", "vulnerabilities[0].cve is missing"),
    ("nvd-api2-osvdev/CVE-2012-2812.json", "not an NVD CVE document"),
])
def test_foreign_formats_rejected(name, message):
    with pytest.raises(FeedError, match=message.replace("[", r"\[").replace("]", r"\]")):
        list(FEED.read(NVD / name))


def test_wrong_shape_names_the_field(tmp_path):
    page = json.loads((VUNNEL / "full-page.json").read_text())
    page["vulnerabilities"][2]["cve"]["metrics"]["cvssMetricV31"] = {"not": "a list"}
    del page["vulnerabilities"][5]["cve"]["id"]
    path = tmp_path / "page.json"
    path.write_text(json.dumps(page))
    with pytest.raises(FeedError) as err:
        list(FEED.read(path))
    assert err.value.detail == "vulnerabilities[2].cve.metrics.cvssMetricV31 is not a list"
    page["vulnerabilities"][2] = page["vulnerabilities"][0]
    path.write_text(json.dumps(page))
    with pytest.raises(FeedError, match=r"vulnerabilities\[5\]\.cve\.id is missing"):
        list(FEED.read(path))


# ---------------------------------------------------------------------------- fetch


def _page(records: list, start: int, total: int) -> bytes:
    return json.dumps({"resultsPerPage": len(records), "startIndex": start,
                       "totalResults": total, "format": "NVD_CVE", "version": "2.0",
                       "timestamp": "2023-10-18T18:04:18.493",
                       "vulnerabilities": records}).encode()


API_PATH = "/rest/json/cves/2.0"


def test_fetch_incremental_windows_pages_and_key(feed_server: FeedServer, tmp_path,
                                                 monkeypatch):
    # vunnel's real API page of 38 CVEs, served as the API pages it: 30 + 8.
    vulns = json.loads((VUNNEL / "full-page.json").read_text())["vulnerabilities"]

    def answer(seen: Seen) -> Answer:
        start = int(seen.query["startIndex"])
        if len(feed_server.requests) <= 2:  # the first window
            return Answer(200, _page(vulns[start:start + 30], start, 38))
        return Answer(200, _page([], 0, 0))

    url = feed_server.route(API_PATH, answer)
    sleeps: list[float] = []
    monkeypatch.setenv("NVD_API_KEY", "k-123")
    feed = NvdFeed(api_url=url, sleep=sleeps.append,
                   now=lambda: datetime(2024, 9, 1, tzinfo=UTC))
    with httpx.Client() as client:
        paths = feed.fetch(client, tmp_path, "2024-01-01T00:00:00.000")

    requests = feed_server.requests
    # 244 days → windows of 120 + 120 + 4 days; the first needs two pages.
    windows = [(r.query["lastModStartDate"], r.query["lastModEndDate"]) for r in requests]
    assert windows == [
        ("2024-01-01T00:00:00.000+00:00", "2024-04-30T00:00:00.000+00:00"),
        ("2024-01-01T00:00:00.000+00:00", "2024-04-30T00:00:00.000+00:00"),
        ("2024-04-30T00:00:00.000+00:00", "2024-08-28T00:00:00.000+00:00"),
        ("2024-08-28T00:00:00.000+00:00", "2024-09-01T00:00:00.000+00:00"),
    ]
    assert [r.query["startIndex"] for r in requests] == ["0", "30", "0", "0"]
    assert {r.query["resultsPerPage"] for r in requests} == {"2000"}
    assert {r.header("apiKey") for r in requests} == {"k-123"}
    assert sleeps == [0.6, 0.6, 0.6]  # between requests, the keyed rate
    assert [p.name for p in paths] == ["nvd-1.json", "nvd-2.json", "nvd-3.json", "nvd-4.json"]
    assert [len(list(FEED.read(p))) for p in paths] == [30, 8, 0, 0]


def test_fetch_whole_catalogue_without_key(feed_server: FeedServer, tmp_path, monkeypatch):
    monkeypatch.delenv("NVD_API_KEY", raising=False)
    url = feed_server.file(API_PATH, (VUNNEL / "single-entry.json").read_bytes())
    with httpx.Client() as client:
        paths = NvdFeed(api_url=url, sleep=lambda s: None).fetch(client, tmp_path, None)
    assert len(feed_server.requests) == 1
    assert "lastModStartDate" not in feed_server.requests[0].query
    assert feed_server.requests[0].header("apiKey") is None
    assert [r.id for r in FEED.read(paths[0])] == ["CVE-2022-1576"]


def test_fetch_retries_then_reports_the_url(feed_server: FeedServer, tmp_path, monkeypatch):
    monkeypatch.delenv("NVD_API_KEY", raising=False)
    single = (VUNNEL / "single-entry.json").read_bytes()
    flaky = feed_server.answers("/flaky", Answer(503), Answer(200, single))
    sleeps: list[float] = []
    with httpx.Client() as client:
        feed = NvdFeed(api_url=flaky, sleep=sleeps.append)
        assert len(feed.fetch(client, tmp_path, None)) == 1
    assert sleeps == [6.0]

    busy = feed_server.answers("/busy", Answer(200, b"<html>busy</html>"))
    with httpx.Client() as client:
        with pytest.raises(FeedDownloadError, match=f"^{busy}: .*not valid JSON"):
            NvdFeed(api_url=busy, sleep=lambda s: None).fetch(client, tmp_path / "x", None)
    assert not (tmp_path / "x" / "nvd-1.json").exists()

    # 404 is not retried; the error names the full request URL.
    gone = feed_server.answers("/gone", Answer(404))
    sleeps.clear()
    with httpx.Client() as client:
        with pytest.raises(FeedDownloadError) as caught:
            NvdFeed(api_url=gone, sleep=sleeps.append).fetch(client, tmp_path, None)
    assert str(caught.value) == f"{gone}?resultsPerPage=2000&startIndex=0: HTTP 404"
    assert sleeps == []
    # 503 every time: three tries, backing off 6 s then 12 s, then the error.
    down = feed_server.answers("/down", Answer(503))
    with httpx.Client() as client:
        with pytest.raises(FeedDownloadError) as caught:
            NvdFeed(api_url=down, sleep=sleeps.append).fetch(client, tmp_path, None)
    assert str(caught.value) == f"{down}?resultsPerPage=2000&startIndex=0: HTTP 503"
    assert sleeps == [6.0, 12.0]
    assert [r.path for r in feed_server.requests].count("/down") == 3
