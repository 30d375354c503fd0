"""Reports on a real estate: the PDF's text (pdftotext) carries the real figures, the
Japanese page is drawn with the embedded CJK font, exports read back exactly, and a
scheduled report arrives at a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import re
import socket
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update

from patchpilot import worker
from patchpilot.assets.groups import Scope, UnknownScope, resolve_scope
from patchpilot.clock import now_utc
from patchpilot.db.tables import findings, jobs, report_schedules
from patchpilot.reports.exports import ASSET_COLUMNS, FINDING_COLUMNS
from patchpilot.reports.generate import generate
from tests.builders.report_estate import (
    FIXED,
    KEV_ASSETS,
    KEV_CVES,
    KEV_FINDINGS,
    OPEN,
    OVERDUE,
    P1,
    P2,
    P4,
    WITHIN,
    pdf_text,
)


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_executive_pdf_carries_the_real_figures(estate: dict[str, int], engine: Engine,
                                                tmp_path: Path) -> None:
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(findings)
                            .where(findings.c.state == "open")).scalar() == OPEN
        report = generate(conn, "executive", "pdf", "en")
    pdf = write(tmp_path, "executive.pdf", report.content)
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True,
                          text=True).stdout
    assert re.search(r"^Pages:\s+1$", info, re.M)  # one page for management
    text = pdf_text(pdf)
    assert "Vulnerability risk report" in text and "Whole estate" in text
    tiles = next(line for line in text.splitlines() if line.strip().startswith(str(OPEN)))
    assert tiles.split() == [str(OPEN), str(P1), str(KEV_FINDINGS), str(OVERDUE), "50%",
                             "0", "days", "4"]
    assert f"Fixed within SLA: {WITHIN} of {FIXED + OVERDUE}" in text
    # Laid out, a priority row shares its line with the severity table beside it.
    rows = {line.split()[0]: line.split()[1] for line in text.splitlines()
            if re.match(r"\s*P[1-4]\s+\d+", line)}
    assert rows == {"P1": str(P1), "P2": str(P2), "P3": "0", "P4": str(P4)}
    assert (f"{KEV_FINDINGS} open findings of {KEV_CVES} known-exploited CVEs on "
            f"{KEV_ASSETS} assets") in text
    assert "CVE-2022-26485" in text and "CVE-2022-26486" in text
    # The top patch action: the kernel update (40 CVEs on the two plant1 servers).
    first = next(line for line in text.splitlines() if line.strip().startswith("1 "))
    assert "kernel → 4.18.0-372.9.1.el8" in first
    assert first.split()[-5:] == ["40", "2", "1", "0", "yes"]


def test_executive_pdf_in_japanese_is_drawn_with_the_cjk_font(
        estate: dict[str, int], engine: Engine, tmp_path: Path) -> None:
    from PIL import Image

    with engine.connect() as conn:
        report = generate(conn, "executive", "pdf", "ja")
    pdf = write(tmp_path, "executive-ja.pdf", report.content)
    text = pdf_text(pdf)
    assert "脆弱性リスクレポート" in text and "未対応の検出" in text
    assert f"期限内に修正: {FIXED + OVERDUE} 件中 {WITHIN} 件" in text
    assert (f"悪用が確認された CVE {KEV_CVES} 件について、{KEV_ASSETS} 台の資産に"
            f"未対応の検出が {KEV_FINDINGS} 件あります") in text
    # The text layer alone would read fine with tofu boxes on the page: check the CJK
    # face is embedded, and that the page is really drawn.
    fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True,
                           text=True).stdout
    cjk = [line for line in fonts.splitlines() if "IPAexGothic" in line
           or "NotoSansCJK" in line]
    assert cjk and all(line.split()[-5] == "yes" for line in cjk)  # "emb" column
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf),
                    str(tmp_path / "page")], check=True)
    image = Image.open(tmp_path / "page-1.png").convert("L")
    dark = sum(image.histogram()[:128])
    assert dark > 0.01 * image.width * image.height, "page 1 is blank"
    # Tofu check: the title, drawn alone, must cover far more pixels than a missing-glyph
    # box of the same size would (a box is an outline; kanji are dense strokes) -- and
    # differ glyph by glyph: identical boxes render identical columns.
    title = image.crop((0, 0, image.width, int(image.height * 0.07)))
    columns = [sum(1 for y in range(title.height) if title.getpixel((x, y)) < 128)  # type: ignore[operator,misc]
               for x in range(title.width)]
    assert len(set(columns)) > 5


def test_technical_report_of_a_group(estate: dict[str, int], engine: Engine,
                                     tmp_path: Path) -> None:
    """The technical PDF of plant1, by patch (its structure: tests/reports/test_technical.py),
    in English and in Japanese."""
    with engine.connect() as conn:
        ids = resolve_scope(conn, Scope(group="plant1"))
        expected = conn.execute(select(func.count()).select_from(findings).where(
            findings.c.state == "open", findings.c.asset_id.in_(ids or []))).scalar()
        report = generate(conn, "technical", "pdf", "en", Scope(group="plant1"))
        report_ja = generate(conn, "technical", "pdf", "ja", Scope(group="plant1"))
    assert expected == 101
    text = pdf_text(write(tmp_path, "technical.pdf", report.content))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert "Open findings: 101" in text and "Group plant1" in text
    assert "plant1-web-01" in text and "plant1-web-02" in text and "plant2-dev-07" not in text
    assert "P1: High × tier 1; internet-facing" in text  # a priority reason
    assert "CVE-2022-26485" in text and "Command dnf upgrade kernel" in lines
    assert "Changes to make" in lines
    for label in ("Affected range", "CVSS", "Exploit", "Workaround", "Priority reason",
                  "Hosts by priority", "Hosts by next window"):
        assert label in text
    text_ja = pdf_text(write(tmp_path, "technical-ja.pdf", report_ja.content))
    lines_ja = [" ".join(line.split()) for line in text_ja.splitlines()]
    assert "技術レポート" in text_ja and "未対応の検出: 101 件" in text_ja
    assert "変更: 3 件 · 修正版が未公開のパッケージ: 0 件 · 脆弱性: 51 件" in lines_ja
    assert "適用する変更" in lines_ja and "コマンド dnf upgrade kernel" in lines_ja
    assert "再起動 はい" in lines_ja
    assert "修正される脆弱性 脆弱性: 40 件 · 未対応の検出: 80 件" in lines_ja
    assert "優先度別のホスト数 P1: 1 · P2: 1" in lines_ja
    assert "次の保守時間帯別のホスト数 随時（保守時間帯なし）: 2" in lines_ja
    assert "P1 CVE-2022-26485 · KEV · ホスト: 2 台 (P1: 2)" in lines_ja
    assert "優先度の根拠" in text_ja and "回避策" in text_ja and "影響を受けるバージョン" in text_ja


def test_csv_and_xlsx_exports(estate: dict[str, int], engine: Engine) -> None:
    from openpyxl import load_workbook

    with engine.connect() as conn:
        assets_csv = generate(conn, "executive", "csv", "en").content.decode()
        findings_csv = generate(conn, "technical", "csv", "en", Scope(service="lab"))
        xlsx = generate(conn, "technical", "xlsx", "en", Scope(group="plant1"))
    rows = list(csv.DictReader(io.StringIO(assets_csv)))
    assert assets_csv.splitlines()[0] == ",".join(ASSET_COLUMNS)
    assert [(r["asset"], r["criticality"], r["service"], r["open"], r["p1"], r["p2"],
             r["p3"], r["p4"], r["known_exploited"]) for r in rows] == [
        ("plant1-web-01", "1", "web shop", "51", "51", "0", "0", "0", "2"),
        ("plant1-web-02", "2", "web shop", "50", "10", "40", "0", "0", "2"),
        ("plant2-dev-07", "4", "lab", "11", "0", "2", "0", "9", "2"),
        ("plant2-ws-11", "", "", "0", "0", "0", "0", "0", "0")]
    lab = list(csv.DictReader(io.StringIO(findings_csv.content.decode())))
    assert len(lab) == 11 and {r["asset"] for r in lab} == {"plant2-dev-07"}
    kev = [r for r in lab if r["known_exploited"] == "yes"]
    assert sorted(r["cve"] for r in kev) == ["CVE-2022-26485", "CVE-2022-26486"]
    assert {r["priority"] for r in kev} == {"P2"}
    assert all("; known exploited" in r["priority_reason"] for r in kev)

    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["Findings", "Assets", "Coverage"]
    sheet = book["Findings"]
    assert [c.value for c in sheet[1]] == list(FINDING_COLUMNS)
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:U{101 + 1}"
    assert sheet.max_row == 102
    assert {sheet.cell(r, 1).value for r in range(2, 103)} == {"plant1-web-01",
                                                               "plant1-web-02"}
    assets_sheet = book["Assets"]
    assert [[c.value for c in row][:5] for row in assets_sheet.iter_rows(min_row=2)] == [
        ["plant1-web-01", None, None, 1, "production"],
        ["plant1-web-02", None, None, 2, "production"]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_scheduled_report_is_mailed(estate: dict[str, int], engine: Engine,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    from patchpilot.reports.mail import add_schedule, tick_reports

    received: list[email.message.EmailMessage] = []

    class Inbox(Message):  # type: ignore[misc]
        def handle_message(self, message: email.message.Message) -> None:
            received.append(message)  # type: ignore[arg-type]

    port = _free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv("PATCHPILOT_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("PATCHPILOT_SMTP_PORT", str(port))
        monkeypatch.setenv("PATCHPILOT_SMTP_FROM", "patchpilot@plant.example")
        with engine.begin() as conn:
            stored = add_schedule(conn, "sato", kind="executive", fmt="pdf", lang="ja",
                                  cron="0 8 1 * *", timezone="Asia/Tokyo",
                                  recipients=["manager@plant.example"])
            assert stored["next_run_at"].endswith("T23:00:00+00:00")  # 08:00 in Tokyo
            # Due a minute ago (as if the first of the month had come).
            conn.execute(update(report_schedules).values(
                next_run_at=now_utc() - timedelta(minutes=1)))
        assert tick_reports(engine) == 1
        assert tick_reports(engine) == 0  # claimed once
        job = worker.run_once(engine)
        assert job is not None and job.kind == "report"
        with engine.connect() as conn:
            state, error = conn.execute(select(jobs.c.state, jobs.c.error)
                                        .where(jobs.c.id == job.id)).one()
        assert (state, error) == ("done", None)
    finally:
        controller.stop()
    assert len(received) == 1
    msg = email.message_from_bytes(received[0].as_bytes(), policy=email.policy.default)
    assert msg["To"] == "manager@plant.example"
    assert str(msg["Subject"]).startswith("PatchPilot: 脆弱性リスクレポート")
    attachments = list(msg.iter_attachments())  # type: ignore[attr-defined]
    assert len(attachments) == 1
    part = attachments[0]
    assert part.get_content_type() == "application/pdf"
    assert str(part.get_filename()).startswith("patchpilot-executive-ja-")
    assert part.get_content().startswith(b"%PDF")


def test_schedule_for_an_unknown_scope_is_refused(estate: dict[str, int],
                                                  engine: Engine) -> None:
    from patchpilot.reports.mail import add_schedule

    for scope, message in (({"group": "plant9"}, "group: no asset group named 'plant9'"),
                           ({"service": "payroll"},
                            "service: no asset belongs to a service named 'payroll'")):
        with engine.begin() as conn, pytest.raises(UnknownScope) as caught:
            add_schedule(conn, "sato", kind="technical", fmt="pdf", lang="en",
                         cron="0 8 * * 1", timezone="Asia/Tokyo", recipients=["a@example.com"],
                         **scope)
        assert str(caught.value) == message
    with engine.connect() as conn:
        assert conn.execute(select(report_schedules)).all() == []
