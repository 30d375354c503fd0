"""The Debian security tracker transformer on vunnel's captured tracker export."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import orjson
import pytest

from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.feeds.debian_tracker import FEED, read_dsa_list
from patchpilot.models import AffectedPackage, AffectedRange, AffectedStatus
from tests.conftest import SHARED_DATA
from tests.knowledge.conftest import Answer, FeedServer

INPUT = SHARED_DATA / "distro" / "vunnel-fixtures" / "debian" / "input"
TRACKER = INPUT / "debian.json"

# The data must be there: the fixture fails the run (never skips) when it is missing.
pytestmark = pytest.mark.usefixtures("shared_data")


def head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(4096)


@pytest.fixture(scope="module")
def advisories() -> dict:
    return {a.id: a for a in FEED.read(TRACKER)}


def test_one_advisory_per_issue_in_file_order(advisories: dict) -> None:
    assert list(advisories) == ["CVE-2008-7220", "CVE-2007-2383", "CVE-2013-1444",
                                "CVE-2005-3111", "CVE-2022-0456", "CVE-2025-53603",
                                "CVE-2022-0358"]
    assert all(a.source == "debian-tracker" and a.modified is None
               for a in advisories.values())


def test_resolved_with_version(advisories: dict) -> None:
    adv = advisories["CVE-2008-7220"]
    assert adv.details.startswith("Unspecified vulnerability in Prototype JavaScript")
    fixed = (AffectedRange(fixed="1.6.0.2-1"),)
    # "high**": the asterisks (urgency taken from NVD) are stripped.
    assert adv.affected == tuple(
        AffectedPackage(ecosystem=eco, name="prototypejs", ranges=fixed, severity="high")
        for eco in ("Debian:9", "Debian:8", "Debian:10", "Debian:unstable"))
    assert set(orjson.loads(adv.raw)) == {"prototypejs"}


def test_fixed_version_zero_is_not_affected(advisories: dict) -> None:
    adv = advisories["CVE-2007-2383"]
    assert [(p.ecosystem, p.status, p.ranges, p.severity) for p in adv.affected] == [
        (eco, AffectedStatus.NOT_AFFECTED, (), "unimportant")
        for eco in ("Debian:9", "Debian:8", "Debian:10", "Debian:unstable")]


def test_open_is_unfixed_and_codenames_map_to_releases(advisories: dict) -> None:
    adv = advisories["CVE-2022-0456"]
    assert adv.details is None
    assert [(p.ecosystem, p.ranges, p.severity) for p in adv.affected] == [
        ("Debian:12", (AffectedRange(fixed="98.0.4758.80-1"),), "not yet assigned"),
        ("Debian:11", (AffectedRange(fixed="98.0.4758.80-1~deb11u1"),), "not yet assigned"),
        ("Debian:10", (AffectedRange(),), "end-of-life"),
        ("Debian:unstable", (AffectedRange(fixed="98.0.4758.80-1"),), "not yet assigned"),
        ("Debian:9", (AffectedRange(),), "end-of-life"),
    ]
    assert all(p.status is AffectedStatus.AFFECTED for p in adv.affected)
    assert advisories["CVE-2025-53603"].affected[3].ecosystem == "Debian:13"  # trixie


def test_issue_without_releases(advisories: dict) -> None:
    assert advisories["CVE-2022-0358"].affected == ()  # "releases": []


def _write(tmp_path: Path, tracker: dict, name: str = "tracker.json") -> Path:
    path = tmp_path / name
    path.write_bytes(orjson.dumps(tracker))
    return path


def test_aggregates_packages_undetermined_temp_ids_and_unknown_codenames(
        tmp_path: Path) -> None:
    path = _write(tmp_path, {
        "linux": {"CVE-2024-1": {"description": "d", "releases": {
            "bookworm": {"status": "undetermined", "urgency": "not yet assigned"},
            "hamm2": {"status": "open"}}}},
        "Linux-Signed": {"CVE-2024-1": {"releases": {"trixie": {"status": "open",
                                                                  "urgency": "low*"}}},
                         "TEMP-0000000-ABCDEF": {"releases": {
                             "sid": {"status": "resolved", "fixed_version": "1.0-1"}}}},
    })
    assert FEED.claims(path, head(path))
    first, temp = FEED.read(path)
    assert first.id == "CVE-2024-1" and first.details == "d"
    assert first.affected == (
        AffectedPackage(ecosystem="Debian:12", name="linux",
                        status=AffectedStatus.UNDETERMINED, severity="not yet assigned"),
        AffectedPackage(ecosystem="Debian:13", name="linux-signed", ranges=(AffectedRange(),),
                        severity="low"),
    )
    assert set(orjson.loads(first.raw)) == {"linux", "Linux-Signed"}
    assert temp.id == "TEMP-0000000-ABCDEF"
    assert temp.affected[0].ranges == (AffectedRange(fixed="1.0-1"),)


def test_gzip_export(tmp_path: Path) -> None:
    path = tmp_path / "tracker.json.gz"
    path.write_bytes(gzip.compress(TRACKER.read_bytes()))
    assert FEED.claims(path, head(path))
    assert [a.id for a in FEED.read(path)][:2] == ["CVE-2008-7220", "CVE-2007-2383"]


def test_claims_rejects_other_json() -> None:
    osv = Path("/work/shared/data/osv/go/GO-2024-3228.json")
    assert FEED.claims(osv, head(osv)) is False
    legacy = INPUT / "legacy/vulnerabilities-debian:7-0.json"
    assert FEED.claims(legacy, head(legacy)) is False
    assert FEED.claims(Path("DSA"), head(INPUT / "DSA")) is False


@pytest.mark.parametrize(("tracker", "message"), [
    ([], "JSON object keyed by source package"),
    ({"openssl": []}, "package 'openssl': value must be an object"),
    ({"openssl": {"CVE-1": "x"}}, "openssl/CVE-1: issue must be an object"),
    ({"openssl": {"CVE-1": {"releases": "sid"}}}, "openssl/CVE-1: 'releases'"),
    ({"openssl": {"CVE-1": {"releases": {"sid": {"status": "resolved"}}}}},
     "openssl/CVE-1/sid: resolved without a string 'fixed_version'"),
    ({"openssl": {"CVE-1": {"releases": {"sid": {"status": "fixed"}}}}},
     "openssl/CVE-1/sid: unknown 'status' 'fixed'"),
])
def test_invalid_input(tmp_path: Path, tracker: object, message: str) -> None:
    path = _write(tmp_path, tracker)  # type: ignore[arg-type]
    with pytest.raises(FeedError, match=message) as caught:
        list(FEED.read(path))
    assert str(path) in str(caught.value)


def test_truncated_json(tmp_path: Path) -> None:
    path = tmp_path / "debian.json"
    path.write_bytes(TRACKER.read_bytes()[:1000])
    with pytest.raises(FeedError, match="debian.json: invalid JSON"):
        list(FEED.read(path))


def test_dsa_list_exact() -> None:
    dsa = read_dsa_list(INPUT / "DSA")
    assert dsa == {
        "DSA-141": ("CVE-2002-1425",),
        "DSA-140": ("CVE-2002-0660", "CVE-2002-0728"),
        "DSA-139": ("CVE-2002-0817",),
        "DSA-138": ("CVE-2002-1412",),
        "DSA-2819-1": (),
        "DSA-2808-2": (),
        "DSA-3281-1": (),  # a key-change notice fixes no CVE
        "DSA-4205-1": (),
        "DSA-4323-1": (),
        "DSA-5970-1": ("CVE-2025-53603",),
    }


def test_dsa_list_malformed_header(tmp_path: Path) -> None:
    path = tmp_path / "list"
    path.write_text("[01 Aug 2002] DSA-141 mpack - buffer overflow\n\t{CVE-2002-1425}\n"
                    "DSA-142 no brackets\n")
    with pytest.raises(FeedError) as caught:
        read_dsa_list(path)
    assert caught.value.line == 3 and str(path) in str(caught.value)


def test_fetch_downloads_export_and_dsa_list(feed_server: FeedServer, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # The real tracker export and DSA list, each with the validator its host sends.
    date = "Tue, 02 Dec 2025 10:00:00 GMT"
    tracker = feed_server.file("/tracker/data/json", TRACKER.read_bytes(), etag='"t1"')
    dsa = feed_server.file("/data/DSA/list", (INPUT / "DSA").read_bytes(), last_modified=date)
    monkeypatch.setattr("patchpilot.knowledge.feeds.debian_tracker.TRACKER_URL", tracker)
    monkeypatch.setattr("patchpilot.knowledge.feeds.debian_tracker.DSA_LIST_URL", dsa)
    with httpx.Client() as client:
        assert FEED.fetch(client, tmp_path, None) == [tmp_path / "debian-tracker.json"]
        assert len(list(FEED.read(tmp_path / "debian-tracker.json"))) == 7
        assert read_dsa_list(tmp_path / "DSA-list")["DSA-5970-1"] == ("CVE-2025-53603",)
        # Unchanged (both 304): nothing new to read after a cursor; a first run reads it.
        assert FEED.fetch(client, tmp_path, "2025-12-02T11:00:00Z") == []
        assert FEED.fetch(client, tmp_path, None) == [tmp_path / "debian-tracker.json"]
    assert [(r.path, r.header("If-None-Match"), r.header("If-Modified-Since"))
            for r in feed_server.requests] == [
        ("/tracker/data/json", None, None), ("/data/DSA/list", None, None),
        ("/tracker/data/json", '"t1"', None), ("/data/DSA/list", None, date),
        ("/tracker/data/json", '"t1"', None), ("/data/DSA/list", None, date)]
    assert (tmp_path / "debian-tracker.json").read_bytes() == TRACKER.read_bytes()


def test_fetch_http_error_keeps_the_previous_export(feed_server: FeedServer, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    tracker = feed_server.answers("/tracker/data/json", Answer(200, TRACKER.read_bytes()),
                                  Answer(502, b"<html>bad gateway</html>"))
    monkeypatch.setattr("patchpilot.knowledge.feeds.debian_tracker.TRACKER_URL", tracker)
    monkeypatch.setattr("patchpilot.knowledge.feeds.debian_tracker.DSA_LIST_URL",
                        feed_server.file("/data/DSA/list", (INPUT / "DSA").read_bytes()))
    with httpx.Client() as client:
        FEED.fetch(client, tmp_path, None)
        with pytest.raises(FeedDownloadError) as caught:
            FEED.fetch(client, tmp_path, None)
    assert str(caught.value) == f"{tracker}: HTTP 502"
    assert (tmp_path / "debian-tracker.json").read_bytes() == TRACKER.read_bytes()
