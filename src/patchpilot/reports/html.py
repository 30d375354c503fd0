"""Rendering shared by the reports: Jinja2 templates, the print CSS, WeasyPrint PDF.

Templates are autoescaped (finding summaries come from advisories, i.e. from outside);
the one piece of raw markup is the trend chart, an SVG string built by ``executive``
from numbers only.
"""

from __future__ import annotations

import json
from functools import lru_cache, partial
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from patchpilot.findings.phrases import localise
from patchpilot.reports.i18n import Translator
from patchpilot.scoring.reasons import reason_text


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja2 environment of ``reports/templates``."""
    return Environment(loader=PackageLoader("patchpilot.reports", "templates"),
                       autoescape=select_autoescape(("html",)), trim_blocks=True,
                       lstrip_blocks=True)


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """The print CSS shared by every report."""
    return (resources.files("patchpilot.reports").joinpath("templates", "report.css")
            .read_text(encoding="utf-8"))


def page_counter(t: Translator) -> str:
    """The CSS ``content`` of the page footer: "Page" counter(page) in the language's order.

    ("Page {page}" in English, "{page} ページ" in Japanese: the number is not always last.)
    """
    before, _, after = t.gettext("Page {page}").partition("{page}")
    parts = [json.dumps(before, ensure_ascii=False)] if before else []
    parts.append("counter(page)")
    if after:
        parts.append(json.dumps(after, ensure_ascii=False))
    return " ".join(parts)


def render(template: str, t: Translator, **values: Any) -> str:
    """Render a report template in the translator's language."""
    return environment().get_template(template).render(
        t=t, _=t.gettext, reason=partial(reason_text, gettext=t.gettext),
        phrase=partial(localise, gettext=t.gettext), css=stylesheet(),
        page_counter=page_counter(t), **values)


def to_pdf(html: str) -> bytes:
    """HTML to PDF with WeasyPrint (fonts from fontconfig: the CJK font must be installed)."""
    from weasyprint import HTML

    pdf = HTML(string=html).write_pdf()
    assert pdf is not None  # write_pdf returns bytes when no target is given
    return bytes(pdf)
