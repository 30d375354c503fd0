"""JVN iPedia / MyJVN transformer: the real VULDEF detail documents, JVNDB RSS and alert
list of ../shared/data/jvn/hnd, the version-phrase table, hostile and malformed XML, and
the incremental download over a loopback server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.feeds._jvn import (
    JvnAffectedItem,
    JvnAlert,
    JvnVuln,
    parse_jvn,
    read_phrase,
)
from patchpilot.knowledge.feeds.interface import RecordKind
from patchpilot.knowledge.feeds.jvn import FEED, JvnFeed
from patchpilot.models import AffectedRange, CvssMetric
from tests.conftest import SHARED_DATA
from tests.knowledge.conftest import Answer, FeedServer, Seen

HND = SHARED_DATA / "jvn" / "hnd"
DETAIL_FEED = HND / "dataFeed_jvndb_detail_hnd.xml"


def _by_id(path: Path) -> dict[str, JvnVuln]:
    return {r.id: r for r in parse_jvn(path) if isinstance(r, JvnVuln)}


def test_feed_identity() -> None:
    assert (FEED.name, FEED.kind) == ("jvn", RecordKind.JVN)


def test_claims_the_jvn_xml_files_only() -> None:
    claimed = sorted(p.name for p in HND.iterdir()
                     if FEED.claims(p, p.read_bytes()[:4096]))
    # Vendor/product lists and statistics are not vulnerability data.
    assert claimed == ["dataFeed_jvndb_detail_hnd.xml", "dataFeed_jvndb_rss_hnd.xml",
                       "getAlertList_hnd.xml",
                       "getVulnDetailInfo_hnd_JVNDB-2017-009608.xml",
                       "getVulnDetailInfo_hnd_JVNDB-2018-009328.xml",
                       "getVulnDetailInfo_hnd_JVNDB-2021-002774.xml",
                       "getVulnDetailInfo_hnd_JVNDB-2022-000097.xml",
                       "getVulnOverviewList_hnd.xml"]


def test_detail_feed_entries() -> None:
    entries = _by_id(DETAIL_FEED)
    assert list(entries) == ["JVNDB-2025-000001", "JVNDB-2025-000002", "JVNDB-2025-000003",
                             "JVNDB-2017-009608", "JVNDB-2018-009328", "JVNDB-2021-002774",
                             "JVNDB-2022-000097"]


def test_nec_aterm_entry() -> None:
    aterm = _by_id(DETAIL_FEED)["JVNDB-2025-000002"]
    assert aterm.title == "NEC Atermシリーズにおける複数の脆弱性（NV25-003）"
    assert aterm.cves == ("CVE-2025-0354", "CVE-2025-0355", "CVE-2025-0356")
    assert aterm.cvss == (CvssMetric("3.0", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
                                     7.5, "High", "jvndb.jvn.jp"),)
    assert aterm.cwes == ("CWE-78", "CWE-79")
    assert (aterm.published, aterm.modified) == ("2025-02-14T14:22:24+09:00",
                                                 "2025-02-14T14:22:24+09:00")
    assert aterm.url == "https://jvndb.jvn.jp/ja/contents/2025/JVNDB-2025-000002.html"
    assert len(aterm.affected) == 11
    assert aterm.affected[9] == JvnAffectedItem(
        "日本電気", "Aterm WX3600HP ファームウェア", "cpe:/o:nec:aterm_wx3600hp_firmware",
        ("Ver.1.5.3より前のバージョン（CVE-2025-0356）",))
    # Escaped HTML lists become lines.
    assert aterm.overview is not None and aterm.overview.splitlines()[:4] == [
        "日本電気株式会社が提供するAtermシリーズには、次の複数の脆弱性が存在します。",
        "・格納型クロスサイトスクリプティング（CWE-79）- CVE-2025-0354",
        "・重要な機能に対する認証の欠如（CWE-306）- CVE-2025-0355",
        "・OSコマンドインジェクション（CWE-78）- CVE-2025-0356"]
    assert aterm.solution is not None and aterm.solution.startswith(
        "[アップデートする] 開発者が提供する情報をもとに、ファームウェアを最新版へアップデート")
    assert aterm.impact is not None and aterm.impact.splitlines()[3] == (
        "・当該製品にログインしたユーザによって細工されたリクエストを送信された場合、"
        "任意のOSコマンドを実行される（CVE-2025-0356）")


def test_cvss_v3_listed_before_v2_and_scored_from_vectors() -> None:
    entry = _by_id(HND / "getVulnDetailInfo_hnd_JVNDB-2022-000097.xml")["JVNDB-2022-000097"]
    assert entry.title == "電子入札コアシステムにおける複数の脆弱性"
    assert entry.cves == ("CVE-2022-41993", "CVE-2022-46287", "CVE-2022-46288")
    assert [(m.version, m.score, m.severity) for m in entry.cvss] == [
        ("3.0", 6.1, "Medium"), ("2.0", 4.3, "Medium")]
    assert entry.affected[0].phrases == ("v6 R4 およびそれ以前のバージョン",)


def test_planex_entry_and_an_empty_version() -> None:
    entries = _by_id(DETAIL_FEED)
    planex = entries["JVNDB-2025-000001"]
    assert planex.title == "プラネックス製MZK-DP300Nにおけるクロスサイトスクリプティングの脆弱性"
    assert planex.affected == (JvnAffectedItem(
        "プラネックスコミュニケーションズ株式会社", "MZK-DP300N", "cpe:/o:planex:mzk-dp300n",
        ("ファームウェアバージョン 1.05およびそれ以前",)),)
    assert [m.score for m in planex.cvss] == [4.8]
    # <VersionNumber /> names no version at all.
    assert entries["JVNDB-2017-009608"].affected[0].phrases == ()


def test_rss_overview_items() -> None:
    items = _by_id(HND / "getVulnOverviewList_hnd.xml")
    assert list(items) == ["JVNDB-2025-002953", "JVNDB-2025-002884"]
    sunshine = items["JVNDB-2025-002953"]
    assert (sunshine.detail, sunshine.cves, [m.score for m in sunshine.cvss]) == (
        False, ("CVE-2025-31084",), [9.8])
    assert sunshine.title == ("WordPress 用 Sunshine Photo Cart における信頼できないデータの"
                              "デシリアライゼーションに関する脆弱性")
    assert sunshine.affected == (JvnAffectedItem(
        "Sunshine Photo Cart", "Sunshine Photo Cart",
        "cpe:/a:sunshinephotocart:sunshine_photo_cart", ()),)
    assert sunshine.cwes == ("CWE-502",)


def test_the_real_rss_data_feed_is_not_well_formed() -> None:
    # As captured, its status element ends with retCd= 0 (an unquoted attribute): refused
    # whole with the line, never half-read.
    with pytest.raises(FeedError) as err:
        list(parse_jvn(HND / "dataFeed_jvndb_rss_hnd.xml"))
    assert err.value.line == 116
    assert "invalid XML: not well-formed (invalid token)" in str(err.value)


def test_alert_list() -> None:
    alerts = list(parse_jvn(HND / "getAlertList_hnd.xml"))
    assert alerts == [
        JvnAlert("MYJVN-ALT-2025-0000", "MyJVN APIに関するセキュリティ情報",
                 "更新に関する連絡です。", "https://www.ipa.go.jp/security/",
                 "2025-04-04T14:45:58+09:00", "2025-04-26T07:36:21+09:00", (),
                 ("cpe:/a:dendai.ac.jp:myjvn_api",)),
        JvnAlert("MYJVN-ALT-2025-0011",
                 "WordPress に関するソフトウェア更新情報 (2025年2月12日 公開)", None, None,
                 "2025-02-12T10:58:02+09:00", "2025-02-12T10:58:02+09:00", (),
                 ("cpe:/a:wordpress:wordpress",))]


@pytest.mark.parametrize(("phrase", "scope", "ranges", "versions", "readable"), [
    ("ファームウェアバージョン 1.05およびそれ以前", (), (AffectedRange(last_affected="1.05"),),
     (), True),
    ("3.2 以前", (), (AffectedRange(last_affected="3.2"),), (), True),
    ("7.6.2より前のバージョン", (), (AffectedRange(fixed="7.6.2"),), (), True),
    ("Ver.1.5.3より前のバージョン（CVE-2025-0356）", ("CVE-2025-0356",),
     (AffectedRange(fixed="1.5.3"),), (), True),
    ("Ver.1.4.2より前のバージョン（CVE-2025-0354、CVE-2025-0355）",
     ("CVE-2025-0354", "CVE-2025-0355"), (AffectedRange(fixed="1.4.2"),), (), True),
    ("2.1.0 未満", (), (AffectedRange(fixed="2.1.0"),), (), True),
    ("バージョン 2.0 以降", (), (AffectedRange(introduced="2.0"),), (), True),
    ("1.0.0 から 1.2.3 まで", (), (AffectedRange(introduced="1.0.0", last_affected="1.2.3"),),
     (), True),
    ("Ver.１．０ から Ver.１．２ まで", (),
     (AffectedRange(introduced="1.0", last_affected="1.2"),), (), True),
    ("7.7", (), (), ("7.7",), True),
    ("v6 R4 およびそれ以前のバージョン", (), (), (), False),
    ("for Windows 5.8 (Build 1575) 未満", (), (), (), False),
    ("全てのバージョン", (), (), (), False),
])
def test_version_phrases(phrase: str, scope: tuple[str, ...], ranges: tuple[AffectedRange, ...],
                         versions: tuple[str, ...], readable: bool) -> None:
    reading = read_phrase(phrase)
    assert (reading.scope, reading.ranges, reading.versions, reading.readable) == (
        scope, ranges, versions, readable)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<VULDEF-Document xmlns="http://jvn.jp/vuldef/"><Vulinfo><VulinfoID>&lol2;</VulinfoID>
</Vulinfo></VULDEF-Document>
"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<VULDEF-Document xmlns="http://jvn.jp/vuldef/"><Vulinfo><VulinfoID>&xxe;</VulinfoID>
</Vulinfo></VULDEF-Document>
"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL])
def test_hostile_xml_is_refused_naming_the_file(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "jvndb_detail_2025.xml"
    path.write_bytes(body)
    with pytest.raises(FeedError) as err:
        list(FEED.read(path))
    assert str(err.value) == (f"{path}: refused XML (DTDForbidden): DTDs and entities are "
                              "not allowed in a JVN document")


def test_api_error_answer(tmp_path: Path) -> None:
    path = tmp_path / "getVulnDetailInfo.xml"
    path.write_bytes(b'<?xml version="1.0"?><VULDEF-Document xmlns="http://jvn.jp/vuldef/" '
                     b'xmlns:status="http://jvndb.jvn.jp/myjvn/Status"><status:Status '
                     b'retCd="1" errCd="1001" errMsg="invalid parameter" /></VULDEF-Document>')
    with pytest.raises(FeedError, match="MyJVN API error 1001: invalid parameter"):
        list(FEED.read(path))


def test_entry_without_an_id(tmp_path: Path) -> None:
    path = tmp_path / "detail.xml"
    path.write_bytes(b'<VULDEF-Document xmlns="http://jvn.jp/vuldef/"><Vulinfo>'
                     b'<VulinfoID>JVN#1</VulinfoID></Vulinfo></VULDEF-Document>')
    with pytest.raises(FeedError, match="Vulinfo/VulinfoID 'JVN#1' is not a JVNDB id"):
        list(FEED.read(path))


def test_fetch_is_incremental_by_last_update_date(feed_server: FeedServer,
                                                  tmp_path: Path) -> None:
    overview = (HND / "getVulnOverviewList_hnd.xml").read_bytes()
    detail = (HND / "getVulnDetailInfo_hnd_JVNDB-2022-000097.xml").read_bytes()
    alerts = (HND / "getAlertList_hnd.xml").read_bytes()

    def answer(seen: Seen) -> Answer:
        method = seen.query["method"]
        return Answer(200, {"getVulnOverviewList": overview, "getVulnDetailInfo": detail,
                            "getAlertList": alerts}[method])

    feed_server.route("/myjvn", answer)
    feed = JvnFeed(api_url=f"{feed_server.url}/myjvn", sleep=lambda s: None)
    with httpx.Client() as client:
        paths = feed.fetch(client, tmp_path, "2025-04-01T06:00:00+00:00")
    assert [p.name for p in paths][-1] == "jvn-alerts.xml"
    assert len(paths) == 2 and paths[0].name.startswith("jvn-detail-")
    listing, details, alert = feed_server.requests
    assert {k: listing.query[k] for k in ("method", "feed", "datePublishedStartY",
                                          "datePublishedStartM", "datePublishedStartD",
                                          "rangeDatePublished", "startItem")} == {
        "method": "getVulnOverviewList", "feed": "hnd", "datePublishedStartY": "2025",
        "datePublishedStartM": "04", "datePublishedStartD": "01", "rangeDatePublished": "n",
        "startItem": "1"}
    # totalRes="6" in the captured answer: one page of 50 covers it.
    assert (details.query["method"], details.query["vulnId"]) == (
        "getVulnDetailInfo", "JVNDB-2025-002953+JVNDB-2025-002884")
    assert alert.query["method"] == "getAlertList"
    assert paths[0].read_bytes() == detail


def test_fetch_refuses_hostile_answer(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.route("/myjvn", lambda seen: Answer(200, (
        (HND / "getVulnOverviewList_hnd.xml").read_bytes()
        if seen.query["method"] == "getVulnOverviewList" else BILLION_LAUGHS)))
    feed = JvnFeed(api_url=f"{feed_server.url}/myjvn", sleep=lambda s: None)
    with httpx.Client() as client, pytest.raises(FeedDownloadError, match="refused XML"):
        feed.fetch(client, tmp_path, "2025-04-01T00:00:00+00:00")
    assert list(tmp_path.iterdir()) == []
