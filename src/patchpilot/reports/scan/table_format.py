"""``--format table``: the terminal view, most severe first."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from patchpilot.findings.scan import ScanResult

_STYLES = {"Critical": "bold red", "High": "red", "Medium": "yellow", "Low": "cyan",
           "None": "dim", "Unknown": "dim"}


def table(result: ScanResult) -> Table:
    """A rich Table of the findings."""
    t = Table(title=f"{len(result.findings)} findings on "
                    f"{result.inventory.asset.hostname or 'this host'}",
              show_lines=False, header_style="bold")
    rows = [(f"[{_STYLES.get(f.severity, '')}]{f.severity}[/]",
             f"{f.cvss.score:.1f}" if f.cvss else "-", f.vuln_id, f.package,
             ", ".join(dict.fromkeys(i.installed_version for i in f.installations))
             or f.evidence.installed_version, f.fix.fixed_version or "[bold]unfixed[/]",
             f.exploit.summary if f.exploit.summary != "none known" else "-", f.name)
            for f in result.findings]
    headers = ("Severity", "CVSS", "Vulnerability", "Package", "Installed", "Fixed in",
               "Exploit")
    # Ids and versions are never cut (they are copied into tickets and commands): each
    # column is as wide as its longest value, and the title takes what width is left.
    for i, col in enumerate(headers):
        width = max([len(col)] + [len(_plain(r[i])) for r in rows])
        t.add_column(col, no_wrap=True, min_width=width,
                     justify="right" if col == "CVSS" else "left")
    t.add_column("Title", no_wrap=True, overflow="ellipsis", min_width=10)
    for row in rows:
        t.add_row(*row)
    return t


def _plain(text: str) -> str:
    return Text.from_markup(text).plain


def summary_line(result: ScanResult) -> str:
    """"3 Critical, 10 High, … · 1,234 packages · 0.04 s"."""
    counts = result.counts()
    order = ("Critical", "High", "Medium", "Low", "None", "Unknown")
    parts = [f"{counts[b]} {b}" for b in order if counts.get(b)]
    text = ", ".join(parts) or "no findings"
    text += (f" · {result.packages:,} packages ({result.distinct:,} distinct) matched "
             f"in {result.match_seconds * 1000:.0f} ms")
    if result.undetermined:
        text += f" · {len(result.undetermined)} undetermined (version unreadable)"
    return text


def render(result: ScanResult, width: int = 200) -> str:
    """The table as plain text (for --output FILE)."""
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(table(result))
    console.print(summary_line(result))
    return console.file.getvalue()  # type: ignore[attr-defined]
