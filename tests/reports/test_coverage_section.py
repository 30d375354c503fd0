"""The reports' coverage section on the real estate of tests/reports/conftest.py.

Its knowledge base holds two AlmaLinux 8 errata and two PyPI advisories -- a handful,
under the threshold of ten: a report on it must say that its ecosystems are not covered
rather than let "no findings" there read as clean.  By hand from the estate: AlmaLinux:8
has 6 packages on 4 assets (firefox on each, the kernel on the two plant1 web servers),
PyPI 2 packages on 2 assets (Pygments on plant1-web-01, ajenti-panel on plant2-dev-07).
"""

from __future__ import annotations

import io
import re
from html import unescape

from sqlalchemy import Engine
from weasyprint import HTML

from patchpilot.assets.groups import Scope
from patchpilot.reports.generate import generate

ALMA_EN = "Not covered: AlmaLinux:8 (packages: 6, assets: 4, advisories loaded: 2)"
PYPI_EN = "Not covered: PyPI (packages: 2, assets: 2, advisories loaded: 2)"
MEANING_EN = ("No finding in an ecosystem that is not covered means nothing could be "
              "checked, not that it is clean.")


def _paragraphs(html: str) -> list[str]:
    """The text of each paragraph of the page."""
    return [re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", p))).strip()
            for p in re.findall(r"<p\b[^>]*>(.*?)</p>", html, re.S)]


def test_executive_report_names_the_ecosystems_not_covered(estate: dict[str, int],
                                                           engine: Engine) -> None:
    with engine.connect() as conn:
        en = generate(conn, "executive", "html", "en").content.decode()
        ja = generate(conn, "executive", "html", "ja").content.decode()
    text = _paragraphs(en)
    assert text[text.index(ALMA_EN):] == [ALMA_EN, PYPI_EN, MEANING_EN]
    assert "<h2>Coverage</h2>" in en
    assert _paragraphs(ja)[-3:] == [
        "未カバー: AlmaLinux:8（パッケージ 6 個、資産 4 台、読み込み済みアドバイザリ 2 件）",
        "未カバー: PyPI（パッケージ 2 個、資産 2 台、読み込み済みアドバイザリ 2 件）",
        "カバーされていないエコシステムで検出がないのは、安全という意味ではなく、"
        "何も確認できなかったという意味です。"]
    assert "<h2>カバー状況</h2>" in ja
    # Still one page for management.
    assert len(HTML(string=en).render().pages) == 1
    assert len(HTML(string=ja).render().pages) == 1


def test_technical_report_of_a_group_has_its_own_coverage(estate: dict[str, int],
                                                          engine: Engine) -> None:
    with engine.connect() as conn:
        plant1 = generate(conn, "technical", "html", "en", Scope(group="plant1")
                          ).content.decode()
        shop = generate(conn, "technical", "html", "ja", Scope(service="web shop")
                        ).content.decode()
    # plant1: the two web servers -- firefox and the kernel each, Pygments on one.
    assert _paragraphs(plant1)[:3] == [
        "Not covered: AlmaLinux:8 (packages: 4, assets: 2, advisories loaded: 2)",
        "Not covered: PyPI (packages: 1, assets: 1, advisories loaded: 2)", MEANING_EN]
    assert _paragraphs(shop)[:2] == [
        "未カバー: AlmaLinux:8（パッケージ 4 個、資産 2 台、読み込み済みアドバイザリ 2 件）",
        "未カバー: PyPI（パッケージ 1 個、資産 1 台、読み込み済みアドバイザリ 2 件）"]


def test_xlsx_exports_carry_a_coverage_sheet(estate: dict[str, int], engine: Engine) -> None:
    from openpyxl import load_workbook

    with engine.connect() as conn:
        executive = generate(conn, "executive", "xlsx", "en")
        technical = generate(conn, "technical", "xlsx", "en", Scope(group="plant1"))
    sheets = {name: load_workbook(io.BytesIO(report.content))["Coverage"]
              for name, report in (("executive", executive), ("technical", technical))}
    assert [[c.value for c in row] for row in sheets["executive"].iter_rows()] == [
        ["ecosystem", "packages", "assets", "advisories", "covered"],
        ["AlmaLinux:8", 6, 4, 2, "no"], ["PyPI", 2, 2, 2, "no"]]
    assert [[c.value for c in row] for row in sheets["technical"].iter_rows(min_row=2)] == [
        ["AlmaLinux:8", 4, 2, 2, "no"], ["PyPI", 1, 1, 2, "no"]]
