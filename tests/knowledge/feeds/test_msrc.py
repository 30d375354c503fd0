"""MSRC CVRF transformer: the real December 2025 to March 2026 documents, the product-name
normaliser, hostile and malformed XML, and the download over a loopback server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.feeds._cvrf import (
    MsrcFix,
    MsrcScore,
    ProductName,
    normalize_product,
    parse_cvrf,
)
from patchpilot.knowledge.feeds.interface import RecordKind
from patchpilot.knowledge.feeds.msrc import FEED, MsrcFeed
from tests.conftest import SHARED_DATA
from tests.knowledge.conftest import FeedServer

MSRC = SHARED_DATA / "msrc"
MAR = MSRC / "cvrfDocument-2026-Mar.xml"
FEB = MSRC / "cvrfDocument-2026-Feb.xml"
MONTHS = ("2025-Dec", "2026-Jan", "2026-Feb", "2026-Mar")


@pytest.fixture(scope="module")
def march():  # type: ignore[no-untyped-def]
    return parse_cvrf(MAR)


def test_feed_identity() -> None:
    assert (FEED.name, FEED.kind, FEED.source_per_file) == ("msrc", RecordKind.MSRC, True)


@pytest.mark.parametrize("month,products,vulns,exploited", [
    ("2025-Dec", 187, 343, ["CVE-2025-62221"]),
    ("2026-Jan", 76, 150, ["CVE-2026-20805", "CVE-2026-21509"]),
    ("2026-Feb", 125, 141, ["CVE-2026-21519", "CVE-2026-21533", "CVE-2026-21513",
                            "CVE-2026-21510", "CVE-2026-21514", "CVE-2026-21525"]),
    ("2026-Mar", 288, 424, []),
])
def test_every_real_month(month: str, products: int, vulns: int,
                          exploited: list[str]) -> None:
    doc = parse_cvrf(MSRC / f"cvrfDocument-{month}.xml")
    assert (doc.month, len(doc.products), len(doc.vulnerabilities)) == (month, products, vulns)
    assert [v.cve for v in doc.vulnerabilities if v.exploited] == exploited


def test_windows_server_2022_cve_of_march(march) -> None:  # type: ignore[no-untyped-def]
    assert march.released == "2026-03-31T01:39:15"
    assert march.products["11923"].name == "Windows Server 2022"
    vuln = next(v for v in march.vulnerabilities if v.cve == "CVE-2026-24294")
    assert vuln.title == "Windows SMB Server Elevation of Privilege Vulnerability"
    assert vuln.description == ("Improper authentication in Windows SMB Server allows an "
                                "authorized attacker to elevate privileges locally.")
    assert vuln.faq == ("What privileges could be gained by an attacker who successfully "
                        "exploited this vulnerability?\n\nAn attacker who successfully "
                        "exploited this vulnerability could gain SYSTEM privileges.")
    assert (vuln.exploited, vuln.publicly_disclosed, vuln.exploitability) == (
        False, False, "Exploitation More Likely")
    assert (vuln.severity["11923"], vuln.impact["11923"]) == ("Important",
                                                              "Elevation of Privilege")
    assert vuln.worst_severity() == "Important"
    assert [s for s in vuln.scores if "11923" in s.product_ids] == [MsrcScore(
        7.8, "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C", ("11923",))]
    assert [f for f in vuln.fixes if "11923" in f.product_ids] == [
        MsrcFix("5078766", "KB5078766", ("KB5075906",), "10.0.20348.4893", True,
                "https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB5078766",
                "Security Update", ("11923", "11924")),
        MsrcFix("5078737", "KB5078737", ("KB5075943",), "10.0.20348.4830", False, None,
                "Security Hotpatch Update", ("11923", "11924")),
    ]
    assert len(vuln.affected) == 31 and "11923" in vuln.affected


def test_exploited_flag_from_threat_exploit_status() -> None:
    feb = parse_cvrf(FEB)
    vuln = next(v for v in feb.vulnerabilities if v.cve == "CVE-2026-21519")
    assert (vuln.exploited, vuln.publicly_disclosed, vuln.exploitability) == (
        True, False, "Exploitation Detected")
    assert "11923" in vuln.affected


def test_workaround_text(march) -> None:  # type: ignore[no-untyped-def]
    assert [(v.cve, v.workaround) for v in march.vulnerabilities if v.workaround] == [
        ("CVE-2026-26030", "The following has been identified as a workaround for this "
                           "vulnerability.\n\nAvoid using InMemoryVectorStore for production "
                           "scenarios.")]


@pytest.mark.parametrize("name,expected", [
    ("Windows Server 2022", ("Windows Server", "2022", None, "x64")),
    ("Windows Server 2022 (Server Core installation)",
     ("Windows Server", "2022", "Server Core installation", "x64")),
    ("Windows Server 2022, 23H2 Edition (Server Core installation)",
     ("Windows Server", "23H2", "Server Core installation", "x64")),
    ("Windows Server 2012 R2", ("Windows Server", "2012 R2", None, "x64")),
    ("Windows 11 Version 24H2 for x64-based Systems", ("Windows 11", "24H2", None, "x64")),
    ("Windows 11 version 26H1 for x64-based Systems", ("Windows 11", "26H1", None, "x64")),
    ("Windows 11 Version 25H2 for ARM64-based Systems",
     ("Windows 11", "25H2", None, "ARM64")),
    ("Windows 10 Version 22H2 for 32-bit Systems", ("Windows 10", "22H2", None, "x86")),
    ("Windows 10 for x64-based Systems", ("Windows 10", "1507", None, "x64")),
    ("Microsoft SQL Server 2019 for x64-based Systems (CU 32)",
     ("SQL Server", "2019", "CU 32", "x64")),
    ("Microsoft SQL Server 2025 for x64-based Systems (CU2)",
     ("SQL Server", "2025", "CU 2", "x64")),
    ("Microsoft SQL Server 2016 for x64-based Systems Service Pack 3 (GDR)",
     ("SQL Server", "2016", "SP3 GDR", "x64")),
    ("Microsoft Exchange Server 2019 Cumulative Update 15",
     ("Exchange Server", "2019", "CU 15", None)),
    ("Microsoft Office LTSC 2024 for 64-bit editions", ("Office", "2024", None, "x64")),
    ("Microsoft Office 2016 (32-bit edition)", ("Office", "2016", None, "x86")),
    (".NET 9.0 installed on Windows", (".NET on Windows", "9.0", None, None)),
    ("Microsoft 365 Apps for Enterprise for 64-bit Systems",
     ("Microsoft 365 Apps for Enterprise", None, None, "x64")),
    ("Microsoft Edge (Chromium-based)", ("Microsoft Edge (Chromium-based)", None, None, None)),
])
def test_normalize_real_names(name: str, expected: tuple[str | None, ...]) -> None:
    assert normalize_product(name) == ProductName(*expected)  # type: ignore[arg-type]


def test_every_real_windows_name_has_a_version() -> None:
    # Every Windows client and server product of the four months normalises to a family
    # and a version (what matching a host needs); the names are read from the files.
    names = set()
    for month in MONTHS:
        names |= {p.name for p in parse_cvrf(MSRC / f"cvrfDocument-{month}.xml")
                  .products.values() if p.branch in ("Windows", "ESU")
                  and p.name.startswith(("Windows 1", "Windows Server"))}
    assert len(names) >= 30
    for name in names:
        norm = normalize_product(name)
        assert norm.family in ("Windows 10", "Windows 11", "Windows Server"), name
        assert norm.version and norm.arch, name


def test_claims(tmp_path: Path) -> None:
    head = MAR.read_bytes()[:4096]
    assert FEED.claims(MAR, head)
    assert FEED.claims(tmp_path / "2026-Mar.xml", head)
    assert not FEED.claims(tmp_path / "bom.xml", head)
    assert not FEED.claims(tmp_path / "cvrfDocument-2026-Mar.xml", b"<bom>")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<cvrf:cvrfdoc xmlns:cvrf="http://www.icasi.org/CVRF/schema/cvrf/1.1">&lol2;</cvrf:cvrfdoc>
"""


def test_hostile_entity_expansion_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cvrfDocument-2026-Mar.xml"
    path.write_bytes(BILLION_LAUGHS)
    with pytest.raises(FeedError) as err:
        parse_cvrf(path)
    assert str(err.value) == (f"{path}: refused XML (DTDForbidden): DTDs and entities are "
                              "not allowed in a CVRF document")


def test_external_entity_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cvrfDocument-2026-Mar.xml"
    path.write_bytes(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM '
                     b'"file:///etc/passwd">]><cvrf:cvrfdoc xmlns:cvrf="http://www.icasi.org/'
                     b'CVRF/schema/cvrf/1.1">&e;</cvrf:cvrfdoc>')
    with pytest.raises(FeedError, match="DTDs and entities are not allowed"):
        parse_cvrf(path)


def _broken(tmp_path: Path, old: bytes, new: bytes) -> Path:
    data = MAR.read_bytes()
    assert old in data
    path = tmp_path / "cvrfDocument-2026-Mar.xml"
    path.write_bytes(data.replace(old, new, 1))
    return path


def test_bad_score_names_the_file_and_element(tmp_path: Path) -> None:
    path = _broken(tmp_path, b"<vuln:BaseScore>7.8</vuln:BaseScore>",
                   b"<vuln:BaseScore>high</vuln:BaseScore>")
    with pytest.raises(FeedError) as err:
        parse_cvrf(path)
    assert str(err.value) == (f"{path}: vuln:Vulnerability #1 (CVE-2026-23234): "
                              "vuln:ScoreSet[0]/vuln:BaseScore 'high' is not a number")


def test_missing_cve_names_the_element(tmp_path: Path) -> None:
    path = _broken(tmp_path, b"<vuln:CVE>CVE-2026-24294</vuln:CVE>", b"<vuln:CVE>n/a</vuln:CVE>")
    with pytest.raises(FeedError, match=r"vuln:Vulnerability #\d+: vuln:CVE 'n/a' is missing "
                                        r"or not a CVE id"):
        parse_cvrf(path)


def test_truncated_document_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "cvrfDocument-2026-Mar.xml"
    path.write_bytes(MAR.read_bytes()[:1_000_000])
    with pytest.raises(FeedError) as err:
        parse_cvrf(path)
    assert err.value.detail.startswith("invalid XML: ") and err.value.line is not None


def test_not_a_cvrf_document(tmp_path: Path) -> None:
    path = tmp_path / "cvrfDocument-2026-Mar.xml"
    path.write_bytes(b"<bom/>")
    with pytest.raises(FeedError, match="root element is 'bom', not cvrf:cvrfdoc"):
        parse_cvrf(path)


def test_fetch_downloads_changed_months(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.file("/cvrf/v3.0/updates", (
        b'{"value": [{"ID": "2026-Feb", "CurrentReleaseDate": "2026-03-01T01:01:55Z"},'
        b' {"ID": "2026-Mar", "CurrentReleaseDate": "2026-03-31T01:39:15Z"}]}'))
    feed_server.file("/cvrf/v3.0/cvrf/2026-Mar", MAR.read_bytes())
    feed = MsrcFeed(f"{feed_server.url}/cvrf/v3.0")
    with httpx.Client() as client:
        paths = feed.fetch(client, tmp_path, "2026-03-15T00:00:00+00:00")
    assert paths == [tmp_path / "cvrfDocument-2026-Mar.xml"]
    assert paths[0].read_bytes() == MAR.read_bytes()
    assert [s.path for s in feed_server.requests] == ["/cvrf/v3.0/updates",
                                                      "/cvrf/v3.0/cvrf/2026-Mar"]
    assert feed_server.requests[1].header("Accept") == "application/xml"


def test_fetch_refuses_a_bad_answer_and_keeps_the_copy(feed_server: FeedServer,
                                                       tmp_path: Path) -> None:
    (tmp_path / "cvrfDocument-2026-Mar.xml").write_bytes(b"previous")
    feed_server.file("/cvrf/v3.0/updates",
                     b'{"value": [{"ID": "2026-Mar", "CurrentReleaseDate": "2026-03-31"}]}')
    feed_server.file("/cvrf/v3.0/cvrf/2026-Mar", BILLION_LAUGHS)
    feed = MsrcFeed(f"{feed_server.url}/cvrf/v3.0")
    with httpx.Client() as client, pytest.raises(FeedDownloadError, match="refused XML"):
        feed.fetch(client, tmp_path, None)
    assert (tmp_path / "cvrfDocument-2026-Mar.xml").read_bytes() == b"previous"
    assert not (tmp_path / "cvrfDocument-2026-Mar.xml.part").exists()
