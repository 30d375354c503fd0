"""FIRST EPSS transformer: official gzipped CSV, per-year extracts, errors, fetch."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest

from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.feeds.epss import FEED
from patchpilot.knowledge.feeds.interface import RecordKind
from patchpilot.models import EpssScore
from tests.conftest import SHARED_DATA
from tests.knowledge.conftest import Answer, FeedServer

DATA = SHARED_DATA  # ../shared/data, or PATCHPILOT_SHARED_DATA
EPSS = DATA / "epss"
VUNNEL = DATA / "distro" / "vunnel-fixtures" / "epss"
OFFICIAL_HEAD = "#model_version:v2025.03.14,score_date:2025-03-15T12:55:00Z\ncve,epss,percentile\n"


def head(path: Path) -> bytes:
    return path.read_bytes()[:4096]


def official_text(rows: list[str]) -> str:
    """The official layout (comment, header, comma rows) around real per-year rows."""
    return OFFICIAL_HEAD + "".join(row.replace(";", ",") + "\n" for row in rows)


def test_feed_identity():
    assert (FEED.name, FEED.kind, FEED.priority) == ("epss", RecordKind.EPSS, 0)


def test_per_year_file():
    scores = list(FEED.read(EPSS / "CVE_1999_EPSS.csv"))
    assert len(scores) == 1540  # one per line, no header
    assert scores[0] == EpssScore("CVE-1999-1593", 0.18126, 0.96946, None)
    by_cve = {s.cve: s for s in scores}
    assert by_cve["CVE-1999-0001"] == EpssScore("CVE-1999-0001", 0.03351, 0.8765, None)


@pytest.mark.parametrize(("cve", "score", "percentile"), [
    ("CVE-2021-44228", 0.99999, 1.0),
    ("CVE-2024-3094", 0.85974, 0.99712),
    ("CVE-2024-3400", 0.99999, 1.0),
    ("CVE-2017-5638", 0.99999, 0.99994),
])
def test_known_cves(cve, score, percentile):
    year = cve.split("-")[1]
    found = [s for s in FEED.read(EPSS / f"CVE_{year}_EPSS.csv") if s.cve == cve]
    assert found == [EpssScore(cve, score, percentile, None)]


def test_whole_directory():
    scores = [s for path in sorted(EPSS.glob("*.csv")) for s in FEED.read(path)]
    assert len(scores) == 360142
    assert len({s.cve for s in scores}) == 360142


def test_official_gzip_with_date(tmp_path):
    rows = (EPSS / "CVE_2024_EPSS.csv").read_text().splitlines()[:1000]
    path = tmp_path / "epss_scores-2025-03-15.csv.gz"
    path.write_bytes(gzip.compress(official_text(rows).encode()))
    assert FEED.claims(path, head(path))
    scores = list(FEED.read(path))
    assert len(scores) == 1000
    assert scores[99] == EpssScore("CVE-2024-9894", 0.00532, 0.42487, "2025-03-15")
    assert {s.date for s in scores} == {"2025-03-15"}
    # The same text uncompressed reads the same.
    plain = tmp_path / "scores.csv"
    plain.write_text(official_text(rows))
    assert FEED.claims(plain, head(plain))  # by content: the name does not say epss
    assert list(FEED.read(plain)) == scores


def test_vunnel_samples():
    assert list(FEED.read(VUNNEL / "example-1.csv"))[:2] == [
        EpssScore("CVE-1999-0001", 0.00383, 0.73075, "2025-02-20"),
        EpssScore("CVE-1999-0002", 0.01328, 0.85996, "2025-02-20")]
    assert {s.date for s in FEED.read(VUNNEL / "missing-date.csv")} == {None}
    with pytest.raises(FeedError) as err:
        list(FEED.read(VUNNEL / "invalid-header.csv"))
    assert err.value.line == 2
    assert "unexpected header 'invalid,header,format'" in err.value.detail


def test_non_numeric_score_names_line(tmp_path):
    lines = (EPSS / "CVE_2021_EPSS.csv").read_text().splitlines()[:50]
    lines[41] = "CVE-2021-47946;n/a;0.5"
    path = tmp_path / "CVE_2021_EPSS.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FeedError) as err:
        list(FEED.read(path))
    assert (err.value.path, err.value.line) == (str(path), 42)
    assert err.value.detail == "epss 'n/a' or percentile '0.5' is not a number"


def test_out_of_range_and_bad_id(tmp_path):
    path = tmp_path / "epss.csv"
    path.write_text(OFFICIAL_HEAD + "CVE-2024-0001,1.5,0.9\n")
    with pytest.raises(FeedError, match="outside 0..1") as err:
        list(FEED.read(path))
    assert err.value.line == 3
    path.write_text(OFFICIAL_HEAD + "GHSA-xxxx,0.5,0.9\n")
    with pytest.raises(FeedError, match="is not a CVE id"):
        list(FEED.read(path))


def test_truncated_files(tmp_path):
    text = (EPSS / "CVE_2021_EPSS.csv").read_text()
    path = tmp_path / "CVE_2021_EPSS.csv"
    path.write_text(text[:600])  # ends "CVE-2021-47972;"
    with pytest.raises(FeedError, match=r"found 2 \(truncated\?\)") as err:
        list(FEED.read(path))
    assert err.value.line == 16
    path.write_text(OFFICIAL_HEAD)  # cut right after the header
    with pytest.raises(FeedError, match="no scores"):
        list(FEED.read(path))
    gz = tmp_path / "epss_scores-current.csv.gz"
    data = gzip.compress(official_text(text.splitlines()).encode())
    gz.write_bytes(data[: len(data) // 2])
    with pytest.raises(FeedError, match="corrupt or truncated gzip"):
        list(FEED.read(gz))


@pytest.mark.parametrize(("path", "claimed"), [
    (EPSS / "CVE_2021_EPSS.csv", True),
    (VUNNEL / "example-1.csv", True),
    (DATA / "kev" / "known_exploited_vulnerabilities.csv", False),
    (DATA / "kev" / "known_exploited_vulnerabilities.json", False),
])
def test_claims(path, claimed):
    assert FEED.claims(path, head(path)) is claimed


def test_fetch_follows_the_redirect_to_the_dated_file(feed_server: FeedServer, tmp_path,
                                                      monkeypatch):
    # vunnel's example-1.csv is a real file of the official layout; the host serves it
    # gzipped, and the "current" URL redirects to the dated file as the real host does.
    body = gzip.compress((VUNNEL / "example-1.csv").read_bytes())
    dated = feed_server.file("/epss_scores-2025-02-20.csv.gz", body)
    current = feed_server.answers("/epss_scores-current.csv.gz",
                                  Answer(302, headers={"Location": dated}))
    monkeypatch.setattr("patchpilot.knowledge.feeds.epss.CURRENT_URL", current)
    with httpx.Client() as client:
        paths = FEED.fetch(client, tmp_path, None)
    assert [r.path for r in feed_server.requests] == [
        "/epss_scores-current.csv.gz", "/epss_scores-2025-02-20.csv.gz"]
    assert paths == [tmp_path / "epss_scores-current.csv.gz"]
    assert paths[0].read_bytes() == body
    assert list(FEED.read(paths[0])) == list(FEED.read(VUNNEL / "example-1.csv"))
    assert list(FEED.read(paths[0]))[0] == EpssScore("CVE-1999-0001", 0.00383, 0.73075,
                                                      "2025-02-20")


def test_fetch_errors(feed_server: FeedServer, tmp_path, monkeypatch):
    current = feed_server.answers("/epss_scores-current.csv.gz", Answer(404),
                                  Answer(200, b"<html>maintenance</html>"))
    monkeypatch.setattr("patchpilot.knowledge.feeds.epss.CURRENT_URL", current)
    with httpx.Client() as client:
        with pytest.raises(FeedDownloadError, match=f"^{current}: HTTP 404$"):
            FEED.fetch(client, tmp_path, None)
        with pytest.raises(FeedDownloadError,
                           match=f"^{current}: the answer is not an EPSS score file$"):
            FEED.fetch(client, tmp_path, None)
    assert not (tmp_path / "epss_scores-current.csv.gz").exists()
