"""The Alpine secdb transformer on the real secdb files in ../shared/data (read in place)."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.feeds.alpine_secdb import FEED, AlpineSecdbFeed
from patchpilot.models import AffectedPackage, AffectedRange, AffectedStatus
from tests.conftest import SHARED_DATA
from tests.knowledge.conftest import Answer, FeedServer

SECDB = SHARED_DATA / "osv" / "alpine-secdb"

# The data must be there: the fixture fails the run (never skips) when it is missing.
pytestmark = pytest.mark.usefixtures("shared_data")


def head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(4096)


def by_id(path: Path) -> dict:
    advisories = list(FEED.read(path))
    found = {a.id: a for a in advisories}
    assert len(found) == len(advisories)  # one advisory per id per file
    return found


def test_openssl_fixes_in_v3_11_main() -> None:
    path = SECDB / "v3.11/main.yaml"
    assert FEED.claims(path, head(path))
    advisories = by_id(path)
    assert len(advisories) == 1124
    openssl = {i: a.affected for i, a in advisories.items()
               if any(p.name == "openssl" for p in a.affected)}
    fixed = {i: [p.ranges[0].fixed for p in pkgs if p.name == "openssl"]
             for i, pkgs in openssl.items()}
    assert fixed["CVE-2019-1551"] == ["1.1.1d-r3"]
    assert fixed["CVE-2019-1547"] == fixed["CVE-2019-1549"] == fixed["CVE-2019-1563"] == [
        "1.1.1d-r1"]
    # One advisory per CVE aggregates every package of the file that lists it (here also
    # "file", which secdb credits with CVE-2019-1543 too).
    assert [(p.name, p.ranges[0].fixed) for p in advisories["CVE-2019-1543"].affected] == [
        ("file", "5.36-r0"), ("openssl", "1.1.1b-r1")]
    assert fixed["CVE-2018-0734"] == fixed["CVE-2018-0735"] == ["1.1.1a-r0"]
    adv = advisories["CVE-2019-1551"]
    assert adv.source == "alpine-secdb"
    assert adv.affected == (AffectedPackage(ecosystem="Alpine:3.11", name="openssl",
                                            ranges=(AffectedRange(fixed="1.1.1d-r3"),)),)
    assert orjson.loads(adv.raw) == {"distroversion": "v3.11", "reponame": "main", "secfixes": [
        {"name": "openssl", "fixed": "1.1.1d-r3", "entry": "CVE-2019-1551"}]}


def test_fixed_version_zero_means_never_affected() -> None:
    advisories = by_id(SECDB / "v3.8/main.yaml")
    for cve in ("CVE-2016-0682", "CVE-2016-0689", "CVE-2016-0692", "CVE-2016-0694",
                "CVE-2016-3418"):
        assert advisories[cve].affected == (
            AffectedPackage(ecosystem="Alpine:3.8", name="db",
                            status=AffectedStatus.NOT_AFFECTED),)


def test_entries_with_several_ids() -> None:
    # "CVE-2017-5753 CVE-2017-5715 CVE-2017-5754 XSA-254 XPTI": an advisory per CVE, the
    # XSA an alias of each, the free word dropped.
    xen = by_id(SECDB / "v3.7/main.yaml")
    for cve in ("CVE-2017-5753", "CVE-2017-5715", "CVE-2017-5754"):
        assert xen[cve].aliases == ("XSA-254",)
        assert xen[cve].affected[0].ranges == (AffectedRange(fixed="4.9.1-r3"),)
    assert "XSA-254" not in xen and "XPTI" not in xen
    assert xen["CVE-2018-7541"].aliases == ("XSA-255",)
    sdl = by_id(SECDB / "v3.10/main.yaml")["CVE-2019-5060"]
    assert sdl.aliases == ("TALOS-2019-0844",)
    assert [(p.name, p.ranges) for p in sdl.affected] == [
        ("sdl2_image", (AffectedRange(fixed="2.0.5-r0"),))]


def test_ids_without_cve_and_typos() -> None:
    v35 = by_id(SECDB / "v3.5/main.yaml")
    assert [(p.name, p.ranges) for p in v35["wnpa-sec-2017-18"].affected] == [
        ("wireshark", (AffectedRange(fixed="2.2.6-r0"),))]
    assert v35["CVE-2017-8073"].affected[0].name == "weechat"  # was "CVE-2017-8073.patch"
    v310 = by_id(SECDB / "v3.10/main.yaml")
    assert "XSA-207" in v310 and v310["XSA-207"].aliases == ()
    # "CVE-????-?????  XSA-295": the placeholder is dropped and the XSA stands alone.
    assert not any("?" in i for i in v310)
    openjdk = by_id(SECDB / "v3.8/community.yaml")["CVE-2019-2426"]  # spelt CVE_2019-2426
    assert [(p.name, p.ranges[0].fixed) for p in openjdk.affected] == [
        ("openjdk7", "7.211.2.6.17-r0"), ("openjdk8", "8.201.08-r0")]


def test_free_text_in_parentheses_is_dropped() -> None:
    tcpdump = by_id(SECDB / "v3.10/main.yaml")
    assert tcpdump["CVE-2018-10103"].aliases == ()
    assert tcpdump["CVE-2018-10103"].affected[0].name == "tcpdump"


def test_empty_repository_yields_nothing() -> None:
    path = SECDB / "v3.3/community.yaml"  # "packages:" with no list
    assert FEED.claims(path, head(path))
    assert list(FEED.read(path)) == []


def test_every_real_file_reads() -> None:
    counts = {p.relative_to(SECDB).as_posix(): len(list(FEED.read(p)))
              for p in sorted(SECDB.glob("v3.*/*.yaml"))}
    assert len(counts) == 18
    assert sum(counts.values()) == 11460
    assert counts["v3.4/community.yaml"] == 14


def test_json_form(tmp_path: Path) -> None:
    path = tmp_path / "main.json"
    path.write_bytes(orjson.dumps({"distroversion": "v3.18", "reponame": "main",
                                   "packages": [{"pkg": {"name": "curl", "secfixes": {
                                       "8.1.0-r0": ["CVE-2023-28319 GHSA-abcd-efgh-ijkl"]}}}]}))
    assert FEED.claims(path, head(path))
    [adv] = FEED.read(path)
    assert (adv.id, adv.aliases) == ("CVE-2023-28319", ("GHSA-abcd-efgh-ijkl",))
    assert adv.affected[0].ecosystem == "Alpine:3.18"


def test_claims_rejects_other_formats() -> None:
    osv = Path("/work/shared/data/osv/pypi/jw.util/PYSEC-2020-341.yaml")
    assert FEED.claims(osv, head(osv)) is False
    assert FEED.claims(Path("main.txt"), b"distroversion: v3.18") is False


@pytest.mark.parametrize(("content", "message"), [
    (b"distroversion: v3.18\npackages:\n  - pkg: {name: curl\n", "invalid YAML"),
    (b"- just a list\n", "mapping with 'distroversion'"),
    (b"reponame: main\npackages: []\n", "'distroversion'"),
    (b"distroversion: v3.18\npackages: {curl: 1}\n", "'packages' must be a list"),
    (b"distroversion: v3.18\npackages:\n  - pkg: {secfixes: {}}\n", "packages\\[0\\]"),
    (b"distroversion: v3.18\npackages:\n  - pkg: {name: curl, secfixes: [CVE-1]}\n",
     "curl: 'secfixes' must map"),
    (b"distroversion: v3.18\npackages:\n  - pkg: {name: curl, secfixes: {1.0-r0: CVE-1}}\n",
     "curl 1.0-r0"),
])
def test_invalid_input(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "main.yaml"
    path.write_bytes(content)
    with pytest.raises(FeedError, match=message) as caught:
        list(FEED.read(path))
    assert str(path) in str(caught.value)


def test_fetch_downloads_main_and_community(feed_server: FeedServer, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # The real secdb files of two releases; main.yaml carries an ETag, community.yaml a
    # Last-Modified date, as web servers send one or the other.
    monkeypatch.setattr("patchpilot.knowledge.feeds.alpine_secdb.SECDB_URL", feed_server.url)
    date = "Tue, 02 Dec 2025 10:00:00 GMT"
    for release in ("v3.10", "v3.9"):
        feed_server.file(f"/{release}/main.yaml", (SECDB / release / "main.yaml").read_bytes(),
                         etag=f'"{release}-main-1"')
        feed_server.file(f"/{release}/community.yaml",
                         (SECDB / release / "community.yaml").read_bytes(), last_modified=date)
    feed = AlpineSecdbFeed(releases=["v3.10", "v3.9"])
    with httpx.Client() as client:
        files = feed.fetch(client, tmp_path, None)
        assert files == [tmp_path / "v3.10/main.yaml", tmp_path / "v3.10/community.yaml",
                         tmp_path / "v3.9/main.yaml", tmp_path / "v3.9/community.yaml"]
        assert [f.read_bytes() for f in files] == [
            (SECDB / f.parent.name / f.name).read_bytes() for f in files]
        assert [len(list(FEED.read(f))) for f in files] == [1111, 692, 1059, 575]
        # Unchanged since: every file answers 304 and nothing is read again.
        assert feed.fetch(client, tmp_path, "2025-12-02T11:00:00Z") == []
        # v3.10/main.yaml changes upstream (a new ETag): only it comes back.
        feed_server.file("/v3.10/main.yaml", (SECDB / "v3.9" / "main.yaml").read_bytes(),
                         etag='"v3.10-main-2"')
        assert feed.fetch(client, tmp_path, "2025-12-02T12:00:00Z") == [
            tmp_path / "v3.10/main.yaml"]
    assert (tmp_path / "v3.10/main.yaml").read_bytes() == (
        SECDB / "v3.9" / "main.yaml").read_bytes()
    validators = [(r.path, r.header("If-None-Match"), r.header("If-Modified-Since"))
                  for r in feed_server.requests]
    assert validators[:4] == [(f"/{r}/{repo}.yaml", None, None)
                              for r in ("v3.10", "v3.9") for repo in ("main", "community")]
    assert validators[4:8] == [
        ("/v3.10/main.yaml", '"v3.10-main-1"', None), ("/v3.10/community.yaml", None, date),
        ("/v3.9/main.yaml", '"v3.9-main-1"', None), ("/v3.9/community.yaml", None, date)]
    assert validators[8] == ("/v3.10/main.yaml", '"v3.10-main-1"', None)


def test_fetch_http_error_names_the_url(feed_server: FeedServer, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("patchpilot.knowledge.feeds.alpine_secdb.SECDB_URL", feed_server.url)
    feed_server.file("/v3.10/main.yaml", (SECDB / "v3.10" / "main.yaml").read_bytes())
    feed_server.answers("/v3.10/community.yaml", Answer(503, b"overloaded"))
    with httpx.Client() as client, pytest.raises(FeedDownloadError) as caught:
        AlpineSecdbFeed(releases=["v3.10"]).fetch(client, tmp_path, None)
    assert str(caught.value) == f"{feed_server.url}/v3.10/community.yaml: HTTP 503"
    assert not (tmp_path / "v3.10/community.yaml").exists()
    assert not (tmp_path / "v3.10/community.yaml.part").exists()
