"""The technical report by patch on the real estate of tests/reports/conftest.py.

By hand from the estate: the plan has three changes -- the kernel (40 CVEs on the two
plant1 web servers), firefox (10 CVEs; on the two plant1 servers and plant2-dev-07, the
workstation having been patched) and Pygments (1 CVE on plant1-web-01) -- and one package
no fix removes (ajenti-panel, 1 advisory on plant2-dev-07): 52 vulnerability blocks for
the 112 open findings (51 and 101 in plant1).  Each vulnerability's eight fields are
printed once per change, however many hosts carry it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import Engine

from patchpilot.assets.groups import Scope, group_id_named
from patchpilot.reports import technical_data
from patchpilot.reports.generate import generate
from patchpilot.scans.groups import add_window
from tests.builders.report_estate import pdf_text

KERNEL = "1. kernel → 4.18.0-372.9.1.el8 (AlmaLinux:8)"
FIREFOX = "2. firefox → 91.7.0-3.el8_5.alma (AlmaLinux:8)"
PYGMENTS = "3. pygments → 2.15.1 (PyPI)"
FIREFOX_CVES = ["CVE-2022-26485", "CVE-2022-26486", "CVE-2022-25235", "CVE-2022-25236",
                "CVE-2022-25315", "CVE-2022-26381", "CVE-2022-26383", "CVE-2022-26384",
                "CVE-2022-26386", "CVE-2022-26387"]
FIELDS = ("Priority reason", "Name", "Summary", "Affected range", "CVE", "CVSS", "Exploit",
          "Fix", "Workaround")
# Tuesday: plant1's window (Saturdays 01:00 in Tokyo) next opens on Friday 16:00 UTC.
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _due(days: int) -> str:
    """The due date of a finding first seen today, as the report writes it (the P1 and
    P4 SLAs: 7 and 180 days)."""
    day = (datetime.now(UTC) + timedelta(days=days)).date()
    return f"{day:%b} {day.day}, {day.year}"


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@dataclass
class Section:
    """One section of the page as a reader sees it."""

    head: str
    facts: dict[str, str]  # label → value
    blocks: list[tuple[str, list[tuple[str, str]]]]  # (header, [(label, value)])
    guard: list[str]  # the size guard's notes after its blocks

    def hosts(self) -> str:
        """The value of its "Hosts (n)" line."""
        return next(v for k, v in self.facts.items() if k.startswith("Hosts ("))


def sections(html: str) -> list[Section]:
    """Each section of the page: its head, its facts, its blocks, the guard's notes."""
    out = []
    for chunk in html.split('<div class="change">')[1:]:
        head = _text(re.search(r'<h2 class="change-head">(.*?)</h2>', chunk, re.S)[1])
        facts_html, _, rest = chunk.partition('<div class="vuln">')
        facts = {_text(k): _text(v) for k, v in re.findall(
            r'<div class="f"><span class="k">(.*?)</span>(.*?)</div>', facts_html, re.S)}
        blocks = []
        for block in re.split(r'<div class="vuln">', '<div class="vuln">' + rest)[1:]:
            header = _text(re.search(r"<h3>(.*?)</h3>", block, re.S)[1])
            fields = re.findall(r'<div class="f"><span class="k">(.*?)</span>(.*?)</div>',
                                block, re.S)
            blocks.append((header, [(_text(k), _text(v)) for k, v in fields]))
        guard = re.findall(r'<p class="guard">(.*?)</p>', rest, re.S)
        out.append(Section(head, facts, blocks, [_text(g) for g in guard]))
    return out


def test_a_group_by_patch_each_vulnerability_once(estate: dict[str, int], engine: Engine,
                                                  tmp_path: Path) -> None:
    with engine.begin() as conn:
        add_window(conn, "sato", group_id_named(conn, "plant1"),
                   rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=1", duration=timedelta(hours=4),
                   timezone="Asia/Tokyo")
    with engine.connect() as conn:
        page = generate(conn, "technical", "html", "en", Scope(group="plant1"),
                        now=NOW).content.decode()
        pdf = generate(conn, "technical", "pdf", "en", Scope(group="plant1"), now=NOW)
    found = sections(page)
    assert [s.head for s in found] == [KERNEL, FIREFOX, PYGMENTS]
    window = "Dec 4, 2026, 4:00:00 PM"
    assert [s.facts for s in found] == [
        {"Command": "dnf upgrade kernel", "Reboot": "yes",
         "Fixes": "Vulnerabilities: 40 · open findings: 80",
         "Hosts by priority": "P1: 1 · P2: 1",
         "Hosts by next window": f"{window}: 2",
         "Hosts (2)": "plant1-web-01, plant1-web-02"},
        {"Command": "dnf upgrade firefox", "Reboot": "no",
         "Fixes": "Vulnerabilities: 10 · open findings: 20 · KEV: 4",
         "Hosts by priority": "P1: 2", "Hosts by next window": f"{window}: 2",
         "Hosts (2)": "plant1-web-01, plant1-web-02"},
        {"Command": "pip install --upgrade 'Pygments>=2.15.1'", "Reboot": "no",
         "Fixes": "Vulnerabilities: 1 · open findings: 1", "Hosts by priority": "P1: 1",
         "Hosts by next window": f"{window}: 1", "Hosts (1)": "plant1-web-01"}]
    # One block per vulnerability of each change, with the eight fields (and the most
    # urgent finding's reason), never one per host.
    kernel, firefox, pygments = (s.blocks for s in found)
    assert len(kernel) == 40 and len({h for h, _ in kernel}) == 40
    assert {h.split(" · ", 1)[1] for h, _ in kernel} == {"Hosts: 2 (P1: 1, P2: 1)"}
    assert [h for h, _ in firefox] == [
        f"P1 {v}{' · KEV' if v in FIREFOX_CVES[:2] else ''} · Hosts: 2 (P1: 2)"
        for v in FIREFOX_CVES]
    for _, fields in [*kernel, *firefox, *pygments]:
        assert [k for k, _ in fields] == list(FIELDS)
    assert dict(firefox[0][1]) == {
        "Priority reason": "P1: Critical × tier 1; known exploited; internet-facing · "
                           "Due: Mar 22, 2022",
        "Name": "Mozilla Firefox Use-After-Free Vulnerability",
        "Summary": dict(firefox[0][1])["Summary"],
        "Affected range": "AlmaLinux:8 firefox: < 91.7.0-3.el8_5.alma",
        "CVE": "CVE-2022-26485", "CVSS": "– (Critical)",
        "Exploit": "KEV", "Fix": "91.7.0-3.el8_5.alma", "Workaround": "none published"}
    assert pygments == [("P1 CVE-2022-40896 · Hosts: 1 (P1: 1)", [
        ("Priority reason", f"P1: Unknown × tier 1; internet-facing · Due: {_due(7)}"),
        ("Name", "pygments: A ReDoS issue was discovered in pygments/lexers/smithy.py in "
                 "pygments through 2.15.0 via SmithyLexer."),
        ("Summary", "A ReDoS issue was discovered in pygments/lexers/smithy.py in pygments "
                    "through 2.15.0 via SmithyLexer."),
        ("Affected range", "PyPI pygments: < 2.15.1"), ("CVE", "CVE-2022-40896"),
        ("CVSS", "– (Unknown)"), ("Exploit", "none known"), ("Fix", "2.15.1"),
        ("Workaround", "none published")])]
    assert "No fix yet" not in page and "Shortened" not in page
    # The PDF says the same: its text layer, one label of each field per block.
    text = _pdf(tmp_path, pdf.content)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert "Changes: 3 · Packages without a fix: 0 · Vulnerabilities: 51" in lines
    assert [line for line in lines if re.match(r"\d+\. ", line)] == [KERNEL, FIREFOX, PYGMENTS]
    for label in FIELDS:
        starts = [line for line in text.splitlines()
                  if re.match(rf"\s*{re.escape(label)}\s{{2,}}\S", line)]
        assert len(starts) == 51, label
    assert sum(line.startswith("P1 CVE-2022-26485 ") for line in lines) == 1


def _pdf(tmp_path: Path, content: bytes) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(content)
    return pdf_text(path)


def test_what_no_fix_removes_comes_last(estate: dict[str, int], engine: Engine) -> None:
    with engine.connect() as conn:
        page = generate(conn, "technical", "html", "en").content.decode()
    found = sections(page)
    assert [s.head for s in found] == [KERNEL, FIREFOX, PYGMENTS, "P4 ajenti-panel (PyPI)"]
    assert found[1].facts["Hosts (3)"] == "plant1-web-01, plant1-web-02, plant2-dev-07"
    assert found[1].facts["Hosts by priority"] == "P1: 2 · P2: 1"
    assert page.index("<h2>No fix yet</h2>") > page.index("pygments → 2.15.1")
    unfixed = found[3]
    # No window nor priority count for what cannot be patched: the hosts, named.
    assert unfixed.facts == {"Hosts (1)": "plant2-dev-07"}
    header, fields = unfixed.blocks[0]
    assert len(unfixed.blocks) == 1 and header == "P4 CVE-2018-1000080 · Hosts: 1 (P4: 1)"
    assert [(k, v) for k, v in fields if k not in ("Name", "Summary")] == [
        ("Priority reason", f"P4: Unknown × tier 4; development · Due: {_due(180)}"),
        ("Affected range", "PyPI ajenti-panel: all versions"), ("CVE", "CVE-2018-1000080"),
        ("CVSS", "– (Unknown)"), ("Exploit", "none known"), ("Fix", "No fix published yet"),
        ("Workaround", "none published")]


def test_the_size_guard_stops_and_says_where_the_rest_is(
        estate: dict[str, int], engine: Engine, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setenv("PATCHPILOT_REPORT_MAX_FINDINGS", "42")
    with engine.connect() as conn:
        page = generate(conn, "technical", "html", "en").content.decode()
        ja = generate(conn, "technical", "html", "ja").content.decode()
        pdf = generate(conn, "technical", "pdf", "en").content
    found = sections(page)
    # The kernel's 40 blocks, then firefox's two most urgent (known exploited first): 42.
    assert [s.head for s in found] == [KERNEL, FIREFOX]
    assert [len(s.blocks) for s in found] == [40, 2]
    assert [h for h, _ in found[1].blocks] == [
        "P1 CVE-2022-26485 · KEV · Hosts: 3 (P1: 2, P2: 1)",
        "P1 CVE-2022-26486 · KEV · Hosts: 3 (P1: 2, P2: 1)"]
    # The section still counts everything it fixes.
    assert found[1].facts["Fixes"] == "Vulnerabilities: 10 · open findings: 30 · KEV: 6"
    shortened = ("Shortened: this report details 42 of 52 vulnerabilities (limit: 42). The "
                 "CSV/XLSX export of the same scope lists every open finding.")
    stops = ("The report stops here (limit: 42 vulnerabilities). Not shown: vulnerabilities "
             "10, whole changes 1, whole packages without a fix 1. The CSV/XLSX export of "
             "the same scope lists every open finding (112).")
    assert found[1].guard == [
        "Vulnerabilities of this change not shown: 8 (see the CSV/XLSX export).", stops]
    assert [_text(g) for g in re.findall(r'<p class="guard">(.*?)</p>', page, re.S)] == [
        shortened, "Vulnerabilities of this change not shown: 8 (see the CSV/XLSX export).",
        stops]
    assert "pygments" not in page and "No fix yet" not in page
    assert [_text(g) for g in re.findall(r'<p class="guard">(.*?)</p>', ja, re.S)] == [
        "省略あり: このレポートは脆弱性 52 件のうち 42 件を詳しく示します（上限: 42 件）。"
        "同じ対象の CSV/XLSX エクスポートには未対応の検出がすべて含まれます。",
        "この変更で修正される脆弱性のうち、表示していないもの: 8 件"
        "（CSV/XLSX エクスポートを参照）。",
        "レポートはここまでです（上限: 脆弱性 42 件）。表示していないもの: 脆弱性 10 件、"
        "変更 1 件、修正版が未公開のパッケージ 1 件。同じ対象の CSV/XLSX エクスポートには"
        "未対応の検出 112 件がすべて含まれます。"]
    text = " ".join(_pdf(tmp_path, pdf).split())
    assert shortened in text and stops in text


def test_host_names_are_capped_per_section(estate: dict[str, int], engine: Engine,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(technical_data, "HOSTS_SHOWN", 1)
    with engine.connect() as conn:
        page = generate(conn, "technical", "html", "en").content.decode()
    # Most urgent first: a P1 host is named, the others counted.
    assert [s.hosts() for s in sections(page)] == [
        "plant1-web-01 and 1 more (see the CSV/XLSX export)",
        "plant1-web-01 and 2 more (see the CSV/XLSX export)", "plant1-web-01",
        "plant2-dev-07"]
