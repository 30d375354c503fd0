"""The executive report: the estate's risk posture on one page, for management.

Headline counts, open findings by priority and severity, the weekly trend of opened vs
fixed findings (an inline SVG drawn here: plotly needs a browser, WeasyPrint draws SVG
itself), SLA compliance, the top patch actions and KEV exposure -- in English or
Japanese, as HTML or as a PDF.
"""

from __future__ import annotations

from datetime import datetime
from xml.sax.saxutils import escape

from sqlalchemy.engine import Connection

from patchpilot.assets.groups import Reach, Scope
from patchpilot.reports import html
from patchpilot.reports.data import ExecutiveData, WeekPoint, executive_data
from patchpilot.reports.i18n import Translator, translator

# Chart geometry (SVG user units = CSS px at 96 dpi; 700 px is the A4 text width).
_W, _H = 700, 150
_LEFT, _BOTTOM, _TOP = 34, 20, 8
OPENED_COLOUR, FIXED_COLOUR = "#b3261e", "#2e7d32"


def trend_svg(points: list[WeekPoint], t: Translator) -> str:
    """Opened (red) and fixed (green) bars per week, with a y axis and week labels."""
    peak = max([1, *(max(p.opened, p.fixed) for p in points)])
    # A round top for the axis: 1, 2, 5 × 10^n.
    top = 1
    while top < peak:
        top = top * 5 // 2 if str(top).startswith("2") else top * 2
    plot_h = _H - _BOTTOM - _TOP
    slot = (_W - _LEFT) / max(len(points), 1)
    bar = slot * 0.36
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
           f'viewBox="0 0 {_W} {_H}" font-size="9" font-family="DejaVu Sans">']
    for k in range(5):  # horizontal grid lines with their values
        value = top * k / 4
        y = _TOP + plot_h - plot_h * k / 4
        out.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W}" y2="{y:.1f}" '
                   f'stroke="#d5dde5" stroke-width="0.6"/>')
        out.append(f'<text x="{_LEFT - 4}" y="{y + 3:.1f}" text-anchor="end" fill="#555">'
                   f'{escape(t.number(int(value) if value == int(value) else value))}</text>')
    for i, p in enumerate(points):
        x0 = _LEFT + i * slot + slot * 0.12
        for j, (n, colour) in enumerate(((p.opened, OPENED_COLOUR), (p.fixed, FIXED_COLOUR))):
            h = plot_h * n / top
            out.append(f'<rect x="{x0 + j * bar:.1f}" y="{_TOP + plot_h - h:.1f}" '
                       f'width="{bar:.1f}" height="{h:.1f}" fill="{colour}"/>')
        out.append(f'<text x="{_LEFT + i * slot + slot / 2:.1f}" y="{_H - 6}" '
                   f'text-anchor="middle" fill="#555">{escape(t.short_date(p.start))}</text>')
    out.append("</svg>")
    return "".join(out)


def scope_label(scope: Scope, t: Translator, limited: bool = False) -> str:
    """"Group: plant1", "Service: web shop" or "Whole estate", translated ("Your part of
    the estate" for a reader limited to part of it who asked for the whole)."""
    if scope.group:
        return f"{t.gettext('Group')} {scope.group}"
    if scope.service:
        return f"{t.gettext('Service')} {scope.service}"
    return t.gettext("Your part of the estate" if limited else "Whole estate")


def render_html(data: ExecutiveData, lang: str) -> str:
    """The executive report of ``data`` as a standalone HTML page."""
    t = translator(lang)
    return html.render("executive.html", t, d=data,
                       scope_label=scope_label(data.scope, t, data.limited),
                       chart=trend_svg(data.trend, t),
                       max_priority=max([1, *data.by_priority.values()]))


def render_pdf(data: ExecutiveData, lang: str) -> bytes:
    """The executive report of ``data`` as a PDF."""
    return html.to_pdf(render_html(data, lang))


def build(conn: Connection, scope: Scope | None = None, *, lang: str = "en",
          fmt: str = "pdf", now: datetime | None = None, reach: Reach = None) -> bytes:
    """Gather and render the executive report (``fmt``: pdf or html) as bytes, of the
    assets in ``reach`` only (the reader's part of the estate; None: no limit)."""
    translator(lang)  # an unknown language fails before any query runs
    data = executive_data(conn, scope, now=now, reach=reach)
    if fmt == "html":
        return render_html(data, lang).encode("utf-8")
    return render_pdf(data, lang)
