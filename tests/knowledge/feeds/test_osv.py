"""The OSV transformer on real records from ../shared/data (read in place, never copied)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import orjson
import pytest

from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.feeds._common import download_if_changed
from patchpilot.knowledge.feeds.osv import FEED, OsvFeed
from patchpilot.models import AffectedRange, AffectedStatus, Reference
from tests.conftest import SHARED_DATA
from tests.knowledge.conftest import FeedServer

DATA = SHARED_DATA
OSV = DATA / "osv"
DEPTRACK = OSV / "fixtures-dependencytrack"
UBUNTU = DATA / "distro/vunnel-fixtures/ubuntu/osv"
TRIVY = DATA / "distro/trivy-db-testdata/osv"

# The data must be there: the fixture fails the run (never skips) when it is missing.
pytestmark = pytest.mark.usefixtures("shared_data")


def head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(4096)


def read_one(path: Path):
    advisories = list(FEED.read(path))
    assert len(advisories) == 1
    return advisories[0]


# --- PyPI (YAML) ---------------------------------------------------------------------


def test_pypi_yaml_open_ended_range_and_versions() -> None:
    path = OSV / "pypi/apache-skywalking/PYSEC-2020-342.yaml"
    assert FEED.claims(path, head(path))
    adv = read_one(path)
    assert adv.id == "PYSEC-2020-342"
    assert adv.source == "osv"
    # Timestamps stay the strings the record has (the YAML loader does not retype them).
    assert adv.modified == "2023-11-07T20:24:23.946863Z"
    assert adv.published == "2020-08-05T14:15:00Z"
    assert adv.aliases == ("CVE-2020-13921",)
    assert adv.summary is None
    assert adv.details.startswith("**Resolved** Only when using H2/MySQL/TiDB")
    [pkg] = adv.affected
    assert (pkg.ecosystem, pkg.name) == ("PyPI", "apache-skywalking")
    assert pkg.ranges == (AffectedRange(introduced="0"),)  # no fix: open ended
    assert pkg.versions == ("0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0",
                            "0.8.0", "1.0.0", "1.0.1")
    [metric] = adv.cvss
    assert (metric.version, metric.score, metric.severity, metric.source) == (
        "3.1", 9.8, "Critical", "PYSEC-2020-342")
    assert adv.references[:2] == (
        Reference("https://github.com/apache/skywalking/pull/4970", "web"),
        Reference("http://www.openwall.com/lists/oss-security/2020/08/05/3", "article"),
    )
    assert len(adv.references) == 4
    assert adv.withdrawn is False
    assert orjson.loads(adv.raw)["id"] == "PYSEC-2020-342"


def test_pypi_yaml_name_is_pep503_normalised_and_versions_stay_text() -> None:
    adv = read_one(OSV / "pypi/jw.util/PYSEC-2020-341.yaml")
    assert adv.aliases == ("CVE-2020-13388", "GHSA-h72c-w3q3-55qq")
    [pkg] = adv.affected
    assert pkg.name == "jw-util"
    assert pkg.ranges == (AffectedRange(introduced="0", fixed="2.3"),)
    assert len(pkg.versions) == 37
    assert pkg.versions[:8] == ("-class.-jw.util.version.Version-", "1.0a", "1.0dev1",
                                "1.3.4", "1.3.5", "1.3.6", "1.3.7", "1.4")
    assert "2" in pkg.versions and "2.0" in pkg.versions


# --- Go (JSON, SEMVER) ---------------------------------------------------------------


def test_go_semver_ranges_pair_events_in_order() -> None:
    path = OSV / "go/GO-2024-3228.json"
    assert FEED.claims(path, head(path))
    adv = read_one(path)
    assert adv.id == "GO-2024-3228"
    assert adv.aliases == ("GHSA-wcx9-ccpj-hx3c",)
    assert adv.summary.startswith("Coder vulnerable to post-auth URL redirection")
    first, second = adv.affected
    assert (first.ecosystem, first.name) == ("Go", "github.com/coder/coder")
    assert first.ranges == (AffectedRange(introduced="0"),)
    assert second.name == "github.com/coder/coder/v2"  # Go module paths keep their case
    assert second.ranges == (
        AffectedRange(introduced="2.3.1", fixed="2.14.4"),
        AffectedRange(introduced="2.15.0", fixed="2.15.3"),
        AffectedRange(introduced="2.16.0", fixed="2.16.1"),
    )
    assert adv.references == (
        Reference("https://github.com/coder/coder/security/advisories/GHSA-wcx9-ccpj-hx3c",
                  "advisory"),
        Reference("https://github.com/coder/coder/commit/"
                  "69c1d981e3131e50d52b01f6a360abadaad699e6", "fix"),
    )
    assert adv.raw == (OSV / "go/GO-2024-3228.json").read_bytes()  # original bytes


def test_git_ranges_are_skipped_and_odd_event_orders_pair_as_osv_evaluates() -> None:
    adv = read_one(DEPTRACK / "osv-vulnerability-with-ranges.json")
    assert adv.id == "GSD-2022-1000008"
    ranges = [p.ranges for p in adv.affected]
    assert ranges[0] == ()  # "ranges": [] with only versions
    assert adv.affected[0].versions == ("1.0.0.RELEASE", "1.0.1.RELEASE")
    assert ranges[1] == (AffectedRange(introduced="0", fixed="2.0.17"),)
    # Two ranges in one entry, ECOSYSTEM then SEMVER, each paired on its own.
    assert ranges[2] == (AffectedRange("1", "2"), AffectedRange("3", "4"),
                         AffectedRange("0", "1"))
    # fixed 2 with nothing open closes nothing; a second introduced does not narrow.
    assert ranges[3] == (AffectedRange(introduced="3", fixed="5"),)
    assert adv.affected[2].name == "org.springframework.security.oauth:spring-security-oauth"


def test_invalid_cvss_vectors_are_dropped_valid_ones_scored() -> None:
    adv = read_one(DEPTRACK / "osv-vulnerability-invalid-cvss.json")
    assert [(m.version, m.score) for m in adv.cvss] == [("3.0", 7.2), ("2.0", 2.6),
                                                        ("4.0", 8.8)]
    assert adv.affected == ()


# --- distributions -------------------------------------------------------------------


def test_almalinux_security_advisory_takes_its_cves_from_related() -> None:
    path = OSV / "almalinux/almalinux9/ALSA-2023:0194.json"
    assert FEED.claims(path, head(path))
    adv = read_one(path)
    assert adv.id == "ALSA-2023:0194"
    assert adv.aliases == ("CVE-2023-21835", "CVE-2023-21843")
    assert adv.vuln_ids() == ("CVE-2023-21835", "CVE-2023-21843")
    assert adv.summary == "Moderate: java-17-openjdk security and bug fix update"
    assert len(adv.affected) == 23
    pkg = adv.affected[0]
    assert (pkg.ecosystem, pkg.name) == ("AlmaLinux:9", "java-17-openjdk")
    assert pkg.ranges == (AffectedRange(introduced="0", fixed="1:17.0.6.0.10-3.el9_1"),)
    assert {p.ecosystem for p in adv.affected} == {"AlmaLinux:9"}


def test_almalinux_8_ecosystem_and_single_cve() -> None:
    adv = read_one(OSV / "almalinux/almalinux8/ALSA-2021:2363.json")
    assert adv.aliases == ("CVE-2021-33516",)
    assert [(p.ecosystem, p.name, p.ranges) for p in adv.affected] == [
        ("AlmaLinux:8", "gupnp", (AffectedRange("0", "1.0.6-2.el8_4"),)),
        ("AlmaLinux:8", "gupnp-devel", (AffectedRange("0", "1.0.6-2.el8_4"),)),
    ]


def test_almalinux_bugfix_errata_yield_nothing() -> None:
    path = OSV / "almalinux/almalinux8/ALBA-2021:1099.json"
    assert FEED.claims(path, head(path))  # it is OSV; it just fixes no vulnerability
    assert list(FEED.read(path)) == []


def test_ubuntu_cve_record_release_ecosystems_priority_and_upstream_alias() -> None:
    adv = read_one(UBUNTU / "cve/2021/UBUNTU-CVE-2021-3782.json")
    assert adv.id == "UBUNTU-CVE-2021-3782"
    assert adv.aliases == ("CVE-2021-3782",)  # from "upstream"; USNs in "related" are not
    assert [(p.ecosystem, p.name, p.ranges[0].fixed, p.severity) for p in adv.affected] == [
        ("Ubuntu:16.04", "wayland", "1.12.0-1~ubuntu16.04.3+esm1", "medium"),
        ("Ubuntu:18.04", "wayland", "1.16.0-1ubuntu1.1~18.04.4", "medium"),
        ("Ubuntu:20.04", "wayland", "1.18.0-1ubuntu0.1", "medium"),
        ("Ubuntu:22.04", "wayland", "1.20.0-1ubuntu0.1", "medium"),
    ]
    # The same vector listed twice is one metric.
    assert [(m.vector, m.score) for m in adv.cvss] == [
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:H", 6.6)]


def test_usn_upstream_names_the_cve_it_fixes() -> None:
    adv = read_one(UBUNTU / "usn/USN-5614-1.json")
    assert adv.aliases == ("UBUNTU-CVE-2021-3782", "CVE-2021-3782")
    assert adv.cve_ids == ("CVE-2021-3782",)
    assert [p.ecosystem for p in adv.affected] == ["Ubuntu:18.04", "Ubuntu:20.04",
                                                   "Ubuntu:22.04"]


def test_debian_dsa_record() -> None:
    adv = read_one(DEPTRACK / "osv-DSA-5474-1.json")
    assert adv.summary == "intel-microcode - security update"
    assert [(p.ecosystem, p.ranges) for p in adv.affected] == [
        ("Debian:11", (AffectedRange("0", "3.20230808.1~deb11u1"),)),
        ("Debian:12", (AffectedRange("0", "3.20230808.1~deb12u1"),)),
    ]
    assert all(p.status is AffectedStatus.AFFECTED for p in adv.affected)


def test_withdrawn_record() -> None:
    adv = read_one(TRIVY / "happy/vuln-list/osv/python/PYSEC-2023-73.json")
    assert (adv.id, adv.withdrawn, adv.aliases) == ("PYSEC-2023-73", True, ("CVE-2023-31655",))
    assert adv.affected[0].name == "redis" and len(adv.affected[0].versions) == 112
    assert adv.affected[0].versions[-1] == "5.0.0b4"
    live = read_one(TRIVY / "happy/vuln-list/osv/python/PYSEC-2018-27.json")
    assert live.withdrawn is False


def test_workaround_from_database_specific(tmp_path: Path) -> None:
    record = orjson.loads((OSV / "go/GO-2024-3228.json").read_bytes())
    record["database_specific"]["workaround"] = "Disable the redirect endpoint."
    record["affected"][1]["ecosystem_specific"] = {"workarounds": ["a", "b"]}
    path = tmp_path / "GO-2024-3228.json"
    path.write_bytes(orjson.dumps(record))
    assert read_one(path).workaround == "Disable the redirect endpoint."
    del record["database_specific"]["workaround"]
    path.write_bytes(orjson.dumps(record))
    assert read_one(path).workaround == "a\nb"
    assert read_one(OSV / "go/GO-2024-3228.json").workaround is None


# --- all.zip -------------------------------------------------------------------------


def test_zip_of_real_records(tmp_path: Path) -> None:
    members = [OSV / "go/GO-2024-3228.json",
               OSV / "almalinux/almalinux8/ALBA-2021:1099.json",  # yields nothing
               OSV / "almalinux/almalinux8/ALSA-2021:2363.json",
               DEPTRACK / "osv-DSA-5474-1.json"]
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for member in members:
            zf.writestr(member.name, member.read_bytes())
    assert FEED.claims(archive, head(archive))
    advisories = list(FEED.read(archive))
    assert [a.id for a in advisories] == ["GO-2024-3228", "ALSA-2021:2363", "DSA-5474-1"]
    assert advisories[1].raw == members[2].read_bytes()


def test_zip_member_error_names_the_member(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("GO-2024-3228.json", (OSV / "go/GO-2024-3228.json").read_bytes())
        zf.writestr("broken.json", b'{"id": "X-1", "affected": [')
    with pytest.raises(FeedError, match=r"all\.zip!broken\.json: invalid JSON"):
        list(FEED.read(archive))



def test_zip_read_in_parts_reads_every_record_once(tmp_path: Path) -> None:
    # Stored and deflated members, a folder and a non-JSON member (skipped).
    names = ["GO-2024-3228", "GO-2020-0001", "GO-2020-0003", "GO-2021-0078", "GO-2020-0014"]
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("docs/", b"")
        zf.writestr("README.txt", b"not a record")
        for n, name in enumerate(names):
            zf.writestr(f"{name}.json", (OSV / f"go/{name}.json").read_bytes(),
                        zipfile.ZIP_DEFLATED if n % 2 else zipfile.ZIP_STORED)
    whole = [a.id for a in FEED.read(archive)]
    assert whole == names
    parts = [a.id for k in range(3) for a in FEED.read_part(archive, k, 3)]
    assert sorted(parts) == sorted(names)


def test_zip_member_with_a_bad_checksum_names_the_member(tmp_path: Path) -> None:
    record = (OSV / "go/GO-2024-3228.json").read_bytes()
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # stored: the record's bytes as they are
        zf.writestr("GO-2024-3228.json", record)
    raw = archive.read_bytes()
    at = raw.index(b'"GO-2024-3228"')
    archive.write_bytes(raw[:at] + b'"GO-2024-3229"' + raw[at + 14:])  # one digit changed
    with pytest.raises(FeedError, match=r"all\.zip!GO-2024-3228\.json: corrupt zip member: "
                                        r"Bad CRC-32"):
        list(FEED.read(archive))

# --- claims --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("CVE-2021-44228.json", b'{"dataType": "CVE_RECORD", "cveMetadata": {"id": "x"}}', False),
    ("nvd.json", b'{"resultsPerPage": 1, "vulnerabilities": [{"cve": {"id": "CVE-1"}}]}',
     False),
    ("wrapped.json", b'{"id": "GHSA-1", "modified": "2024", "raw": {}}', False),
    ("debian.json", b'{"prototypejs": {"CVE-2008-7220": {"releases": {}}}}', False),
    ("GHSA-1.json", b'{"schema_version": "1.6.0", "id": "GHSA-1"}', True),
    ("x.yaml", b"id: PYSEC-1\nmodified: 2024-01-01T00:00:00Z\n", True),
    ("main.yaml", b"---\ndistroversion: v3.8\nreponame: main\n", False),
    ("notes.txt", b'{"id": "GHSA-1", "modified": "x"}', False),
])
def test_claims(tmp_path: Path, name: str, content: bytes, expected: bool) -> None:
    assert FEED.claims(tmp_path / name, content) is expected


def test_claims_real_files_of_other_formats() -> None:
    npm = OSV / "npm-nodejs-security-wg/npm/410.json"  # the Node WG's own format
    assert FEED.claims(npm, head(npm)) is False
    tracker = DATA / "distro/vunnel-fixtures/debian/input/debian.json"
    assert FEED.claims(tracker, head(tracker)) is False


def test_claims_zip_only_with_json_members(tmp_path: Path) -> None:
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("readme.txt", b"hello")
    assert FEED.claims(other, head(other)) is False


# --- invalid input -------------------------------------------------------------------


@pytest.mark.parametrize(("name", "content", "message"), [
    ("truncated.json", (OSV / "go/GO-2024-3228.json").read_bytes()[:300], "invalid JSON"),
    ("list.json", b"[1, 2]", "JSON object, not list"),
    ("broken.yaml", b"id: PYSEC-1\naffected: [\n  - {package: }\n", "invalid YAML"),
    ("no-id.json", b'{"modified": "2024-01-01T00:00:00Z", "affected": []}',
     "no string 'id'"),
    ("int-id.json", b'{"id": 7}', "no string 'id'"),
    ("affected.json", b'{"id": "GHSA-1", "affected": {"package": {}}}',
     "'affected' must be a list"),
    ("package.json", b'{"id": "GHSA-1", "affected": [{"package": {"name": "x"}}]}',
     "'ecosystem' and 'name'"),
    ("events.json", b'{"id": "GHSA-1", "affected": [{"package": {"ecosystem": "npm", '
                    b'"name": "x"}, "ranges": [{"type": "SEMVER", "events": {}}]}]}',
     "'affected\\[\\].ranges\\[\\].events' must be a list"),
    ("aliases.json", b'{"id": "GHSA-1", "aliases": "CVE-1"}', "'aliases' must be a list"),
    ("refs.json", b'{"id": "GHSA-1", "references": [{"type": "WEB"}]}', "'url'"),
])
def test_invalid_input_raises_feed_error_naming_file(
        tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FeedError, match=message) as caught:
        list(FEED.read(path))
    assert caught.value.path == str(path)
    assert name in str(caught.value)


def test_real_malformed_record_missing_comma() -> None:
    path = TRIVY / "sad/vuln-list/osv/python/PYSEC-2005-1.json"
    with pytest.raises(FeedError, match="PYSEC-2005-1.json: invalid JSON"):
        list(FEED.read(path))


def test_yaml_error_carries_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"id: PYSEC-1\ndetails: 'unterminated\n")
    with pytest.raises(FeedError) as caught:
        list(FEED.read(path))
    assert caught.value.line is not None


# --- fetch ---------------------------------------------------------------------------


@pytest.fixture
def bucket(feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> FeedServer:
    """The loopback server standing in for the OSV bucket."""
    monkeypatch.setattr("patchpilot.knowledge.feeds.osv.OSV_BUCKET", feed_server.url)
    return feed_server


def _go_zip() -> bytes:
    """Go's all.zip as the bucket holds it: one JSON member per record (two real ones)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("GO-2020-0001.json", "GO-2020-0003.json"):
            archive.writestr(name, (OSV / "go" / name).read_bytes())
    return buffer.getvalue()


def test_fetch_uses_etag_to_skip_unchanged(bucket: FeedServer, tmp_path: Path) -> None:
    body = _go_zip()
    bucket.file("/Go/all.zip", body, etag='"v1"')
    feed = OsvFeed(ecosystems=["Go"])
    with httpx.Client() as client:
        assert feed.fetch(client, tmp_path, None) == [tmp_path / "Go/all.zip"]
        assert (tmp_path / "Go/all.zip").read_bytes() == body
        assert feed.fetch(client, tmp_path, "2024-01-01T00:00:00Z") == []  # 304
        # Without a cursor (a first run) the unchanged file is read all the same.
        assert feed.fetch(client, tmp_path, None) == [tmp_path / "Go/all.zip"]
    assert [(r.path, r.header("If-None-Match")) for r in bucket.requests] == [
        ("/Go/all.zip", None), ("/Go/all.zip", '"v1"'), ("/Go/all.zip", '"v1"')]
    assert sorted(r.id for r in FEED.read(tmp_path / "Go/all.zip")) == [
        "GO-2020-0001", "GO-2020-0003"]


def test_fetch_http_error_names_url(bucket: FeedServer, tmp_path: Path) -> None:
    feed = OsvFeed(ecosystems=["Rocky Linux"])
    with httpx.Client() as client, pytest.raises(FeedDownloadError) as caught:
        feed.fetch(client, tmp_path, None)
    assert f"{bucket.url}/Rocky%20Linux/all.zip: HTTP 404" in str(caught.value)
    assert not (tmp_path / "Rocky_Linux/all.zip").exists()


def test_download_unreachable_host_is_feed_download_error(tmp_path: Path) -> None:
    with httpx.Client(timeout=2) as client, pytest.raises(FeedDownloadError, match="127.0.0.1:9"):
        download_if_changed(client, "http://127.0.0.1:9/x.json", tmp_path / "x.json")
