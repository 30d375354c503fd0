"""Japanese all the way through: every page and every report of a real estate, read in
Japanese, shows no English phrase that PatchPilot itself writes.

The estate is the report tests' (tests/reports/conftest.py: AlmaLinux and PyPI advisories,
CISA KEV, CMDB context -- reasons with every matrix adjustment) plus a Debian 12 host
whose apt offers a security update the knowledge base does not know ("Security update
available: …", "none published"), a sweep, a schedule and a window.  Pages are fetched
with an HTTP client in a session whose language is Japanese; reports are generated in
every kind and format.

"English PatchPilot writes" is every message id of the pages' and the reports'
catalogues, the priority reasons' words and the fixed phrases of a finding, less the
ones that read the same in Japanese (CVE, CVSS, KEV, …).  Text that is data -- an
advisory's title and summary, a package, an asset's name, any string stored in the
database that is not one of those phrases -- is taken out first: it stays in its own
language.  A phrase added to a page, a report or a finding without its Japanese
translation shows up here as English, and fails the test.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy import Engine, MetaData, func, select, update

from patchpilot import worker
from patchpilot.assets.groups import group_id_named
from patchpilot.db.tables import finding_priority, findings, users
from patchpilot.findings import phrases
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory, OsInfo, PendingUpdate
from patchpilot.models import Ecosystem, Package
from patchpilot.queue import Job
from patchpilot.reports import i18n as report_i18n
from patchpilot.reports.generate import FORMATS, KINDS, generate
from patchpilot.scans.groups import add_schedule, add_window
from patchpilot.scans.sweeps import SweepQuery, start_sweep
from patchpilot.scoring import reasons
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, set_password
from patchpilot.server.web import i18n as web_i18n
from patchpilot.server.web.catalogue import msgids as page_msgids
from patchpilot.server.web.pages import DATA_MSGIDS

SECRET = "test-secret-" + "x" * 32
# The tables whose text pages and reports show as it is stored (a finding's JSON holds
# what it took from advisories, KEV and CVE records; the knowledge base's own tables are
# not shown, and would bring every vendor's product names in as "data").
SHOWN_TABLES = {"users", "asset_groups", "assets", "inventories", "findings",
                "finding_events", "triage_decisions", "agents", "schedules",
                "maintenance_windows", "sweeps", "sweep_results", "asset_packages",
                "asset_context", "report_schedules"}
DEB12 = Ecosystem("Debian:12")
# Placeholders of either catalogue's style: %(n)s, %s, {name}.
_FIELD = re.compile(r"%\(\w+\)s|%s|\{\w*\}")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]")


def _po(path: Path, lang: str) -> dict[str, str]:
    with path.open("rb") as fh:
        return {str(m.id): str(m.string) for m in read_po(fh, locale=lang)
                if m.id and isinstance(m.id, str)}


def _page_catalogue(lang: str) -> dict[str, str]:
    return _po(web_i18n.LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po", lang)


def _report_catalogue(lang: str) -> dict[str, str]:
    return _po(Path(report_i18n.__file__).parent / "locale" / lang / "LC_MESSAGES"
               / "reports.po", lang)


@cache
def english_fragments(only_data_phrases: bool = False) -> tuple[set[str], set[str]]:
    """(phrases of two words or more, single words) of every English message PatchPilot
    shows -- or only of the reasons' and findings' phrases -- cut at their placeholders;
    messages whose Japanese is the same text (names such as "CVSS") are left out."""
    pages, report = _page_catalogue("ja"), _report_catalogue("ja")
    ids = ({*reasons.MSGIDS, *phrases.MSGIDS} if only_data_phrases else
           {*page_msgids(), *report_i18n.DATA_MSGIDS, *_report_catalogue("en")})
    several, single = set(), set()
    for msgid in ids:
        translated = pages.get(msgid) or report.get(msgid) or ""
        pieces = _FIELD.split(msgid)
        for piece in pieces:
            piece = piece.strip(" .,:;()·–→×\n")
            # A name that Japanese keeps (CVE, CVSS, KEV, SSVC) is no English phrase.
            if not _WORD.search(piece) or piece in translated:
                continue
            if " " in piece and len(piece) >= 8:
                several.add(piece)
            elif " " not in piece and len(piece) >= (3 if len(pieces) == 1 else 4):
                single.add(piece)  # a word between placeholders: "tier", not "The"
    return several, single


def data_strings(engine: Engine) -> set[str]:
    """Every string the database holds (JSON documents opened up) that is not a word
    PatchPilot translates: states, bands, fixed phrases and reasons are shown
    translated, everything else is data and stays as it is."""
    # The stored words that pages and reports translate: a finding's state and band, a
    # decision, a role, a sweep's answer (not a CMDB's "internet-facing", which is the
    # CMDB's own word even though a reason's words include it).
    words = ((set(DATA_MSGIDS) - set(reasons.MSGIDS)) | set(reasons.SEVERITY_WORDS)
             | set(report_i18n.DATA_MSGIDS) - set(reasons.MSGIDS))
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if value.startswith(("{", "[")):
                try:
                    walk(orjson.loads(value))
                    return
                except orjson.JSONDecodeError:
                    pass
            found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            if table.name not in SHOWN_TABLES:
                continue
            for row in conn.execute(select(table)):
                for value in row:
                    walk(value)
    return {" ".join(s.split()) for s in found
            if s.strip() and s not in words and not phrases.is_phrase(s)
            and reasons.loads(s) is None}


class _Text(HTMLParser):
    """The text nodes of a page (and the attributes a reader sees), one chunk each --
    not scripts, styles nor ``<code>``: a command line (``patchpilot report schedule
    add``) is typed as it is in every language."""

    SHOWN = ("title", "placeholder", "aria-label", "alt")

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "code"):
            self._skip += 1
        for name, value in attrs:
            if value and (name in self.SHOWN or (name == "value" and tag == "button")):
                self.chunks.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "code"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.chunks.append(data)


def html_chunks(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    return parser.chunks


def untranslated(chunks: list[str], data: set[str], *, only_data_phrases: bool = False
                 ) -> list[str]:
    """The English fragments in ``chunks`` once data is taken out, as "fragment in chunk"."""
    several, single = english_fragments(only_data_phrases)
    # Longest first, so that a value containing another is removed whole.
    ordered = sorted((d for d in data if len(d) >= 3), key=len, reverse=True)
    found = []
    for chunk in chunks:
        text = " ".join(chunk.split())
        # A summary cut short ("…" or "...") is data up to the cut.
        cut = text.removesuffix("...").removesuffix("…").rstrip()
        if text in data or (cut != text and any(d.startswith(cut) for d in data)):
            continue
        for value in ordered:
            if value in text:
                text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", " ", text)
        found += [f"{phrase!r} in {chunk.strip()[:160]!r}" for phrase in several
                  if re.search(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", text)]
        found += [f"{word!r} in {chunk.strip()[:160]!r}" for word in _WORD.findall(text)
                  if word in single]
    return sorted(set(found))


# --- the estate ---------------------------------------------------------------------------


def _debian_host(engine: Engine) -> int:
    """A Debian 12 host whose apt offers jq 1.6-2.1+deb12u3 from bookworm-security, an
    update the knowledge base knows nothing of (tests/findings/test_host_updates.py)."""
    packages = [Package(DEB12, "jq", "1.6-2.1+deb12u1", arch="amd64", source_name="jq",
                        source_version="1.6-2.1+deb12u1"),
                Package(DEB12, "libjq1", "1.6-2.1+deb12u1", arch="amd64", source_name="jq",
                        source_version="1.6-2.1+deb12u1")]
    pending = [PendingUpdate(package=p.name, source_name="jq", arch="amd64",
                             installed_version="1.6-2.1+deb12u1",
                             candidate_version="1.6-2.1+deb12u3",
                             repository="bookworm-security",
                             cve_ids=["CVE-2024-23337"] if p.name == "jq" else [])
               for p in packages]
    inv = Inventory.from_packages(
        packages, complete=True, os=OsInfo(id="debian", version_id="12", codename="bookworm"),
        pending_updates=pending, asset=AssetIdentity(hostname="plant3-ci",
                                                     machine_id="plant3-ci"),
        collector=Collector(name="agent"))
    result = ingest_inventory(engine, inv)
    job = Job(0, "match", {"inventory_id": result.inventory_id}, 1, None, None, None, None)
    return int(worker.HANDLERS["match"](engine, job)["asset_id"])


@pytest.fixture
def japanese(estate: dict[str, int], engine: Engine,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    """The estate with more to show, and an admin's session in Japanese."""
    _debian_host(engine)
    start_sweep(engine, SweepQuery(vuln="CVE-2022-26485"), created_by="sato")
    with engine.begin() as conn:
        plant1 = group_id_named(conn, "plant1")
        add_schedule(conn, "sato", plant1, "cron", "0 2 * * 6", "Asia/Tokyo")
        add_window(conn, "sato", plant1, rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=1",
                   duration=timedelta(hours=4), timezone="Asia/Tokyo",
                   description="週末の保守")
        add_window(conn, "sato", plant1, kind="blackout",
                   starts_at=datetime(2026, 12, 28, tzinfo=UTC),
                   ends_at=datetime(2027, 1, 4, tzinfo=UTC), description="年末年始")
    monkeypatch.setenv("PATCHPILOT_SESSION_SECRET", SECRET)
    set_password(engine, "kato", Role.ADMIN, "kato-admin-password")
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.name == "kato").values(language="ja"))
    with TestClient(create_app(engine), follow_redirects=False,
                    headers={"accept-language": "ja"}) as client:
        login = client.get("/login")
        assert login.status_code == 200
        token = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert token
        answer = client.post("/login", data={"username": "kato",
                                             "password": "kato-admin-password",
                                             "csrf": token.group(1), "next": "/overview"})
        assert answer.status_code == 303, answer.text
        yield client, {"engine": engine, "login_page": login.text}


def _pages(client: TestClient, engine: Engine) -> dict[str, str]:
    """Every page of the dashboard, with each finding, asset and sweep page."""
    with engine.connect() as conn:
        finding_ids = [int(i) for i in conn.execute(select(findings.c.id)).scalars()]
    paths = ["/overview", "/findings", "/findings?state=any", "/findings?state=fixed",
             "/assets", "/plan", "/schedules", "/sweeps", "/reports", "/assets/import",
             "/assets/upload", "/findings/999999", "/assets/999999"]
    paths += [f"/findings/{i}" for i in finding_ids]
    pages = {}
    for path in paths:
        answer = client.get(path)
        assert answer.status_code in (200, 404), (path, answer.status_code)
        pages[path] = answer.text
    for link in sorted(set(re.findall(r'href="(/(?:assets|sweeps)/\d+)"',
                                      "".join(pages.values())))):
        answer = client.get(link)
        assert answer.status_code == 200, link
        pages[link] = answer.text
    return pages


def test_every_page_is_in_japanese(japanese: tuple[TestClient, dict[str, Any]]) -> None:
    client, site = japanese
    engine = site["engine"]
    # A reason stored as English text by an older version is shown in Japanese too.
    with engine.begin() as conn:
        oldest = conn.execute(select(func.min(finding_priority.c.finding_id))).scalar_one()
        conn.execute(update(finding_priority).where(finding_priority.c.finding_id == oldest)
                     .values(reason="P3: High × tier 3 (unknown asset); EPSS above 0.1"))
    assert "P3: 重要 × ティア 3（CMDB 未登録の資産）; EPSS が 0.1 超" in client.get(
        f"/findings/{oldest}").text
    pages = {"/login": site["login_page"], **_pages(client, engine)}
    # The pages show what the test is about: reasons, phrases, bands, states in Japanese.
    shown = "".join(pages.values())
    assert "P1: 緊急 × ティア 1; インターネット公開" in shown
    assert "セキュリティ更新あり: jq 1.6-2.1+deb12u3" in shown
    assert "公開なし" in shown and "悪用が確認済み" in shown
    assert any(p.startswith("/sweeps/") for p in pages)
    data = data_strings(engine)
    problems = {path: untranslated(html_chunks(text), data) for path, text in pages.items()}
    assert {path: found for path, found in problems.items() if found} == {}


def _xlsx_cells(content: bytes) -> list[str]:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(content))
    cells = []
    for sheet in book.worksheets:
        # Row 1 holds the column keys, and the summary sheet's first column its metric keys:
        # stable English names for scripts, in every language.
        for row in sheet.iter_rows(min_row=2, values_only=True):
            values = row[1:] if sheet.title == "Summary" else row
            cells += [str(v) for v in values if isinstance(v, str)]
    return cells


def _csv_cells(content: bytes) -> list[str]:
    rows = list(csv.reader(io.StringIO(content.decode())))
    return [cell for row in rows[1:] for cell in row]  # row 1: the column keys


def test_every_report_is_in_japanese(japanese: tuple[TestClient, dict[str, Any]],
                                     tmp_path: Path) -> None:
    _, site = japanese
    engine = site["engine"]
    data = data_strings(engine)
    problems = {}
    with engine.connect() as conn:
        for kind in KINDS:
            for fmt in FORMATS:
                if fmt == "pdf" and shutil.which("pdftotext") is None:
                    continue  # the PDF is drawn from the HTML checked here (poppler-utils)
                content = generate(conn, kind, fmt, "ja").content
                if fmt == "html":
                    chunks = html_chunks(content.decode())
                elif fmt == "csv":
                    chunks = _csv_cells(content)
                elif fmt == "xlsx":
                    chunks = _xlsx_cells(content)
                else:
                    path = tmp_path / f"{kind}.pdf"
                    path.write_bytes(content)
                    text = subprocess.run(["pdftotext", str(path), "-"], check=True,
                                          capture_output=True, text=True).stdout
                    chunks = [line for line in text.splitlines() if line.strip()]
                # A PDF's lines cut the advisories' text anywhere: only the reasons' and the
                # findings' phrases are looked for there (the HTML it is drawn from is
                # checked whole).
                problems[f"{kind}.{fmt}"] = untranslated(chunks, data,
                                                         only_data_phrases=fmt == "pdf")
                if kind == "technical":
                    shown = "\n".join(chunks)
                    assert "P1: 緊急 × ティア 1; インターネット公開" in shown, fmt
                    assert "セキュリティ更新あり: jq 1.6-2.1+deb12u3" in shown, fmt
    assert {name: found for name, found in problems.items() if found} == {}


def test_the_check_finds_english() -> None:
    """The check itself: an untranslated reason, phrase, band or label is caught; data
    is not."""
    data = {"Pygments has a ReDoS in the SQL lexer", "plant1-web-01"}
    chunks = ["P3: High × tier 3 (unknown asset)", "none published", "High",
              "Pygments has a ReDoS in the SQL lexer", "plant1-web-01 (3)",
              "P1: 高 × ティア 1; インターネット公開"]
    found = untranslated(chunks, data)
    assert "'High' in 'High'" in found
    assert "'none published' in 'none published'" in found
    assert any("unknown asset" in f for f in found)
    assert not any("Pygments" in f or "plant1" in f or "ティア" in f for f in found)


def test_every_data_phrase_is_translated_in_both_catalogues() -> None:
    ids = set(report_i18n.DATA_MSGIDS)
    assert set(reasons.MSGIDS) | set(phrases.MSGIDS) <= ids
    for catalogue in (_page_catalogue("ja"), _report_catalogue("ja")):
        assert sorted(i for i in ids if not catalogue.get(i)) == []
    templates = Path(report_i18n.__file__).parent / "templates"
    used = {m for path in templates.glob("*.html")
            for m in re.findall(r"""\b_\(\s*"((?:[^"\\]|\\.)+)"\s*[,)]""", path.read_text())}
    assert sorted(i for i in used if not _report_catalogue("ja").get(i)) == []


def test_reasons_in_japanese() -> None:
    ja = report_i18n.translator("ja").gettext
    code = reasons.matrix_code(2, "Critical", 3, False, False,
                               [{"code": reasons.KEV}, {"code": reasons.EPSS, "threshold": 0.1}])
    assert reasons.render(code) == ("P2: Critical × tier 3 (unknown asset); known exploited; "
                                    "EPSS above 0.1")
    assert reasons.render(code, ja) == ("P2: 緊急 × ティア 3（CMDB 未登録の資産）; 悪用が確認済み; "
                                        "EPSS が 0.1 超")
    ssvc = reasons.ssvc_code(1, "Immediate", ("active", "open", "yes", "very high"), True, False)
    assert reasons.render(ssvc) == ("P1: SSVC Immediate (exploitation active, exposure open, "
                                    "automatable yes, human impact very high); tier unknown")
    assert reasons.render(ssvc, ja) == ("P1: SSVC 即時対応（悪用: 実際に発生, 露出: 公開, "
                                        "自動化可能: はい, 人的影響: 非常に高い）; ティア不明")
    # A reason stored as text by an older version reads back into its code, and anything
    # else is shown as it was stored.
    old = "P3: High × tier 3 (unknown asset); EPSS above 0.1; development"
    assert reasons.reason_text(old) == old
    assert reasons.reason_text(old, ja) == ("P3: 重要 × ティア 3（CMDB 未登録の資産）; "
                                            "EPSS が 0.1 超; 開発環境")
    assert reasons.reason_text("set by hand", ja) == "set by hand"
    assert reasons.reason_text(None, ja) == ""
