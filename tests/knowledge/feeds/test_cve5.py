"""CVE JSON 5 transformer: records, wrappers, release zips, ADP metrics, workarounds, fetch."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest

from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.feeds.cve5 import FEED
from patchpilot.knowledge.feeds.interface import RecordKind
from patchpilot.models import CvssMetric, Reference
from tests.conftest import SHARED_DATA
from tests.knowledge.conftest import Answer, FeedServer

DATA = SHARED_DATA  # ../shared/data, or PATCHPILOT_SHARED_DATA
CRITICAL = DATA / "nvd" / "cve5-critical-cvelist"
OSVDEV = DATA / "nvd" / "cve5-osvdev"
LOG4SHELL = OSVDEV / "cvelistV5__cves__2021__44xxx__CVE-2021-44228.json"


def read_one(path: Path):
    records = list(FEED.read(path))
    assert len(records) == 1
    return records[0]


def head(path: Path) -> bytes:
    return path.read_bytes()[:4096]


def raw_record(path: Path) -> dict:
    data = json.loads(path.read_text())
    return data.get("raw", data)


def test_feed_identity():
    assert (FEED.name, FEED.kind, FEED.priority) == ("cve5", RecordKind.CVE, 40)


def test_wrapper_with_cna_metrics():
    record = read_one(CRITICAL / "CVE-2024-3094.json")
    assert record.id == "CVE-2024-3094"
    assert record.source == "cve5"
    assert record.title == "Xz: malicious code in distributed source"
    assert record.published == "2024-03-29T16:51:12.588Z"
    assert record.modified == "2025-07-05T02:25:44.391Z"
    assert record.status == "PUBLISHED"
    assert record.description.startswith(
        "Malicious code was discovered in the upstream tarballs of xz, starting with version "
        "5.6.0.")
    # The CNA's vector, scored by us and attributed to the CNA's short name.
    assert record.cvss == (CvssMetric("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
                                      10.0, "Critical", "redhat"),)
    assert record.cwes == ("CWE-506",)
    assert record.references[:2] == (
        Reference("https://access.redhat.com/security/cve/CVE-2024-3094", "vdb-entry"),
        Reference("https://bugzilla.redhat.com/show_bug.cgi?id=2272210", "issue-tracking"),
    )
    assert record.workaround is None


def test_cisa_adp_metrics_when_the_cna_gave_none():
    record = read_one(LOG4SHELL)
    assert record.id == "CVE-2021-44228"
    assert record.title == ("Apache Log4j2 JNDI features do not protect against attacker "
                            "controlled LDAP and other JNDI related endpoints")
    assert record.published == "2021-12-10T00:00:00.000Z"
    assert record.modified == "2025-02-04T14:25:37.215Z"
    # The Apache CNA published only an "other" rating; CISA-ADP added the vector.
    assert record.cvss == (CvssMetric("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
                                      10.0, "Critical", "CISA-ADP"),)
    assert record.cwes == ("CWE-502", "CWE-400", "CWE-20")
    # CNA and the CVE programme's ADP container list 106 links, 51 distinct.
    assert len(record.references) == 51


def test_adp_cwe_and_exploit_tag():
    record = read_one(CRITICAL / "CVE-2009-1151.json")
    assert record.title is None  # the CNA (mitre) gave no title
    assert record.cwes == ("CWE-94",)  # only CISA-ADP names the weakness
    assert record.cvss[0].source == "CISA-ADP"
    assert (record.cvss[0].score, record.cvss[0].severity) == (9.8, "Critical")
    assert record.exploit_references == (
        Reference("https://www.exploit-db.com/exploits/8921", "exploit"),)


def test_cvss_v4_vectors():
    record = read_one(CRITICAL / "CVE-2024-0012.json")
    assert [(m.version, m.score, m.severity, m.source) for m in record.cvss] == [
        ("4.0", 9.3, "Critical", "palo_alto"), ("4.0", 5.9, "Medium", "palo_alto")]
    assert record.workaround.startswith("Recommended mitigation—The vast majority of firewalls")


def test_workarounds_joined():
    record = read_one(CRITICAL / "CVE-2021-27470.json")
    assert record.workaround.startswith(
        "Rockwell Automation recommends the following software/PC-based mitigation strategies:\n")
    # Two English workarounds, joined as paragraphs.
    first, second = record.workaround.split("\n\n")
    assert second.startswith("Rockwell Automation recommends the following general mitigations:")
    assert second.endswith("Also recognize a VPN is only as secure as the connected devices.")
    assert record.cvss == (CvssMetric("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:H",
                                      10.0, "Critical", "icscert"),)
    redhat = read_one(OSVDEV / "cve5__CVE-2024-2002.json")
    assert redhat.workaround == (
        "Mitigation for this issue is either not available or the currently available options "
        "don't meet the Red Hat Product Security criteria comprising ease of use and deployment, "
        "applicability to widespread installation base or stability.")


def test_whole_sample_sets():
    critical = [r for p in sorted(CRITICAL.glob("*.json")) for r in FEED.read(p)]
    assert len(critical) == 300
    assert sum(1 for r in critical if r.workaround) == 13
    assert sum(1 for r in critical if any(m.source == "CISA-ADP" for m in r.cvss)) > 100
    # Every record of a critical-CVE list carries at least one valid vector.
    assert all(r.cvss for r in critical)
    records = [p for p in OSVDEV.glob("*.json") if FEED.claims(p, head(p))]
    assert len(records) == 24  # the other 4 files there are OSV output, not CVE records


def test_raw_as_json_string(tmp_path):
    wrapper = json.loads((CRITICAL / "CVE-2024-3094.json").read_text())
    wrapper["raw"] = json.dumps(wrapper["raw"])
    path = tmp_path / "CVE-2024-3094.json"
    path.write_text(json.dumps(wrapper))
    assert FEED.claims(path, head(path))
    assert read_one(path) == read_one(CRITICAL / "CVE-2024-3094.json")


def test_rejected_kept(tmp_path):
    record = raw_record(OSVDEV / "cve5__CVE-2024-2002.json")
    record["cveMetadata"]["state"] = "REJECTED"
    record["containers"] = {"cna": {
        "providerMetadata": record["containers"]["cna"]["providerMetadata"],
        "rejectedReasons": [{"lang": "en", "value": "This CVE is a duplicate of another CVE."}]}}
    path = tmp_path / "CVE-2024-2002.json"
    path.write_text(json.dumps(record))
    rejected = read_one(path)
    assert rejected.status == "REJECTED"
    assert rejected.description == "This CVE is a duplicate of another CVE."
    assert rejected.cvss == ()


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _records_zip() -> bytes:
    return _zip({
        "cves/2024/3xxx/CVE-2024-3094.json":
            json.dumps(raw_record(CRITICAL / "CVE-2024-3094.json")).encode(),
        "cves/2021/44xxx/CVE-2021-44228.json": LOG4SHELL.read_bytes(),
        "cves/delta.json": b'{"numberOfChanges": 2}',  # not a record: skipped
    })


def test_delta_zip(tmp_path):
    path = tmp_path / "2025-08-25_delta_CVEs_at_0100Z.zip"
    path.write_bytes(_records_zip())
    assert FEED.claims(path, head(path))
    assert [r.id for r in FEED.read(path)] == ["CVE-2024-3094", "CVE-2021-44228"]


def test_baseline_zip_of_zip(tmp_path):
    path = tmp_path / "2025-08-25_all_CVEs_at_midnight.zip.zip"
    path.write_bytes(_zip({"cves.zip": _records_zip()}))
    assert FEED.claims(path, head(path))
    records = list(FEED.read(path))
    assert [r.id for r in records] == ["CVE-2024-3094", "CVE-2021-44228"]
    assert records[1] == read_one(LOG4SHELL)


def test_bad_record_in_zip_names_member(tmp_path):
    path = tmp_path / "delta.zip"
    path.write_bytes(_zip({"cves/2024/0xxx/CVE-2024-0001.json": b'{"cveMetadata": {"cveId"'}))
    with pytest.raises(FeedError) as err:
        list(FEED.read(path))
    assert err.value.path == f"{path}!cves/2024/0xxx/CVE-2024-0001.json"
    assert err.value.line == 1


def test_truncated_zip(tmp_path):
    data = _zip({"cves.zip": _records_zip()})
    path = tmp_path / "2025-08-25_all_CVEs_at_midnight.zip.zip"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FeedError, match="corrupt or truncated zip"):
        list(FEED.read(path))


def test_truncated_json(tmp_path):
    text = LOG4SHELL.read_text()
    path = tmp_path / "CVE-2021-44228.json"
    path.write_text(text[:5000])
    with pytest.raises(FeedError) as err:
        list(FEED.read(path))
    assert err.value.line == text[:5000].count("\n") + 1


def test_wrong_shape_names_the_field(tmp_path):
    record = raw_record(LOG4SHELL)
    record["containers"]["adp"][1]["metrics"] = "cvssV3_1"
    path = tmp_path / "CVE-2021-44228.json"
    path.write_text(json.dumps(record))
    with pytest.raises(FeedError, match=r"containers\.adp\[1\]\.metrics is not a list"):
        list(FEED.read(path))


@pytest.mark.parametrize(("path", "message"), [
    (DATA / "nvd/vuls-fixtures/mitre-cve-v5__CVE-2023-44487.json", "cveMetadata is missing"),
    (OSVDEV / "combine-to-osv__cve5__CVE-2023-1234.json", "cveMetadata is missing"),
])
def test_foreign_formats_rejected(path, message):
    assert not FEED.claims(path, head(path))
    with pytest.raises(FeedError, match=message):
        list(FEED.read(path))


@pytest.mark.parametrize(("path", "claimed"), [
    (CRITICAL / "CVE-2021-44228.json", True),
    (OSVDEV / "cve5__CVE-2016-1897.json", True),  # sorted keys: "containers" first
    (LOG4SHELL, True),
    (DATA / "nvd/nvd-api2-osvdev/nvdcve-2.0__CVE-2024-3094.json", False),
    (DATA / "kev/known_exploited_vulnerabilities.json", False),
])
def test_claims(path, claimed):
    assert FEED.claims(path, head(path)) is claimed


# ---------------------------------------------------------------------------- fetch

BASELINE = "2025-08-25_all_CVEs_at_midnight.zip.zip"
DELTA = "2025-08-25_delta_CVEs_at_1400Z.zip"
TAG = "/CVEProject/cvelistV5/releases/download/cve_2025-08-25_1400Z/"


@pytest.fixture
def releases(feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> FeedServer:
    """The loopback server standing in for GitHub: the latest cvelistV5 release's JSON
    and its assets, zips of real CVE JSON 5 records."""
    release = {"tag_name": "cve_2025-08-25_1400Z", "assets": [
        {"name": name, "browser_download_url": feed_server.url + TAG + name}
        for name in (BASELINE, DELTA, "release_notes.md")]}
    url = feed_server.file("/repos/CVEProject/cvelistV5/releases/latest",
                           json.dumps(release).encode())
    feed_server.file(TAG + BASELINE, _zip({"cves.zip": _records_zip()}))
    feed_server.file(TAG + DELTA, _records_zip())
    monkeypatch.setattr("patchpilot.knowledge.feeds.cve5.RELEASE_URL", url)
    return feed_server


def test_fetch_first_time_takes_baseline_and_delta(releases: FeedServer, tmp_path):
    with httpx.Client() as client:
        paths = FEED.fetch(client, tmp_path, None)
    assert [p.name for p in paths] == [BASELINE, DELTA]
    assert [r.path for r in releases.requests] == [
        "/repos/CVEProject/cvelistV5/releases/latest", TAG + BASELINE, TAG + DELTA]
    assert releases.requests[0].header("Accept") == "application/vnd.github+json"
    assert [sorted(r.id for r in FEED.read(p)) for p in paths] == [
        ["CVE-2021-44228", "CVE-2024-3094"], ["CVE-2021-44228", "CVE-2024-3094"]]


def test_fetch_since_this_midnight_takes_delta_only(releases: FeedServer, tmp_path):
    with httpx.Client() as client:
        assert [p.name for p in FEED.fetch(client, tmp_path, "2025-08-25T03:10:00Z")] == [DELTA]
        # A cursor from the day before needs the new baseline again.
        older = FEED.fetch(client, tmp_path, "2025-08-24T23:59:00Z")
    assert [p.name for p in older] == [BASELINE, DELTA]
    assert [r.path for r in releases.requests][1::2] == [TAG + DELTA, TAG + BASELINE]


def test_fetch_http_error_names_url(feed_server: FeedServer, tmp_path, monkeypatch):
    url = feed_server.answers("/repos/CVEProject/cvelistV5/releases/latest",
                              Answer(403, b'{"message": "API rate limit exceeded"}'))
    monkeypatch.setattr("patchpilot.knowledge.feeds.cve5.RELEASE_URL", url)
    with httpx.Client() as client:
        with pytest.raises(FeedDownloadError, match=f"^{url}: HTTP 403$"):
            FEED.fetch(client, tmp_path, None)


def test_fetch_asset_error_leaves_no_partial_file(releases: FeedServer, tmp_path):
    releases.answers(TAG + DELTA, Answer(502))
    with httpx.Client() as client:
        with pytest.raises(FeedDownloadError, match=f"^{releases.url}{TAG}{DELTA}: HTTP 502$"):
            FEED.fetch(client, tmp_path, "2025-08-25T03:10:00Z")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
