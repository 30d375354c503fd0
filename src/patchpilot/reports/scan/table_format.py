"""``--format table``: the terminal view, most severe first."""

from __future__ import annotations

import io

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from patchpilot.findings.scan import ScanResult

_STYLES = {"Critical": "bold red", "High": "red", "Medium": "yellow", "Low": "cyan",
           "None": "dim", "Unknown": "dim"}


def table(result: ScanResult) -> Table:
    """A rich Table of the findings (print it with :func:`show`)."""
    t = Table(title=f"{len(result.findings)} findings on "
                    f"{result.inventory.asset.hostname or 'this host'}",
              show_lines=False, header_style="bold")
    rows = [(f"[{_STYLES.get(f.severity, '')}]{f.severity}[/]",
             f"{f.cvss.score:.1f}" if f.cvss else "-", f.vuln_id, f.package,
             _packed(list(dict.fromkeys(i.installed_version for i in f.installations)))
             or f.evidence.installed_version, f.fix.fixed_version or "[bold]unfixed[/]",
             f.exploit.summary if f.exploit.summary != "none known" else "-", f.name)
            for f in result.findings]
    headers = ("Severity", "CVSS", "Vulnerability", "Package", "Installed", "Fixed in",
               "Exploit")
    # Ids and versions are never cut (they are copied into tickets and commands): each
    # column is as wide as its longest value (the installed versions of a package found
    # in several places on lines of their own) and the title takes what is left.
    for i, col in enumerate(headers):
        least = max([len(col)] + [len(line) for r in rows for line in _plain(r[i]).split("\n")])
        t.add_column(col, no_wrap=True, min_width=least,
                     justify="right" if col == "CVSS" else "left")
    t.add_column("Title", no_wrap=True, overflow="ellipsis", min_width=TITLE_MIN)
    for row in rows:
        t.add_row(*row)
    return t


def show(console: Console, t: Table) -> None:
    """Print a table of :func:`table` on ``console``.  No column is ever squeezed away:
    when its ids and versions do not fit the console, it is drawn as wide as they need
    (a terminal then wraps its lines) rather than cropped."""
    title = t.columns[-1]  # the title takes what the others leave, never their room
    title.max_width = TITLE_MIN
    least = console.measure(t, options=console.options.update_width(10_000)).maximum
    width = max(console.width, least)
    title.max_width = TITLE_MIN + width - least
    if width > console.width:  # print() never goes past the console's width by itself
        t.width = width
    console.print(t, crop=False)


# The title's narrowest: a few words, then "…".
TITLE_MIN = 10


# The installed versions of a package found in several places go on lines this wide.
INSTALLED_WIDTH = 24


def _packed(versions: list[str]) -> str:
    """The versions, comma-separated, on lines of at most INSTALLED_WIDTH characters
    (a longer version on a line of its own): a version is never broken."""
    lines: list[str] = []
    for v in versions:
        if lines and len(lines[-1]) + 2 + len(v) <= INSTALLED_WIDTH:
            lines[-1] += f", {v}"
        else:
            if lines:
                lines[-1] += ","
            lines.append(v)
    return "\n".join(lines)


def _plain(text: str) -> str:
    return Text.from_markup(text).plain


def summary_line(result: ScanResult) -> str:
    """"3 Critical, 10 High, … · 1,234 packages · 0.04 s"."""
    counts = result.counts()
    order = ("Critical", "High", "Medium", "Low", "None", "Unknown")
    parts = [f"{counts[b]} {b}" for b in order if counts.get(b)]
    text = ", ".join(parts) or "no findings"
    windows = result.inventory.windows
    if windows is not None and not result.packages:
        # A Windows host: judged by its build and KBs, not by packages.
        named = result.windows.products if result.windows is not None else ()
        if named:
            text += (f" · {', '.join(dict.fromkeys(p.package for p in named))} judged with "
                     f"{len(windows.kbs):,} installed KBs")
        else:
            text += (f" · {windows.family or 'Windows'}: no product of the loaded MSRC "
                     f"documents ({len(windows.kbs):,} installed KBs)")
        text += f" in {result.match_seconds * 1000:.0f} ms"
    else:
        text += (f" · {result.packages:,} packages ({result.distinct:,} distinct) matched "
                 f"in {result.match_seconds * 1000:.0f} ms")
    if result.undetermined:
        text += f" · {len(result.undetermined)} undetermined (version unreadable)"
    missing = result.not_covered()
    if missing:
        text += (f" · {len(missing)} ecosystem{'s' if len(missing) > 1 else ''} not covered "
                 "by the advisories loaded")
    if result.set_aside:
        text += (f" · {len(result.set_aside)} upstream matches on OS-owned packages "
                 "not reported")
    return text


def set_aside_lines(result: ScanResult) -> list[str]:
    """One line per upstream match not reported because an OS package owns the copy:
    "not reported: CVE-2023-49083 on cryptography 38.0.4 (/usr/lib/python3/dist-packages):
    owned by python3-cryptography 38.0.4-3+deb12u1, whose changelog names … as fixed"."""
    return [f"not reported: {s.vuln_id} on {s.package} {s.version} "
            f"({', '.join(s.locations)}): {s.explanation}" for s in result.set_aside]


# How many inventory warnings the terminal shows before "and N more".
SHOWN_WARNINGS = 20


def warning_lines(result: ScanResult, limit: int = SHOWN_WARNINGS) -> list[str]:
    """The inventory's warnings with their count (rich markup), empty when there are none:
    what reading it skipped or inferred, shown so that nothing is dropped silently."""
    warnings = result.inventory.warnings
    if not warnings:
        return []
    noun = "warning" if len(warnings) == 1 else "warnings"
    lines = [f"[yellow]{len(warnings)} inventory {noun}[/] (what was skipped or inferred "
             "while reading it):"]
    lines += [f"  [yellow]![/] {escape(w)}" for w in warnings[:limit]]
    if len(warnings) > limit:
        lines.append(f"  … and {len(warnings) - limit} more (all in --format json)")
    return lines


COVERAGE_HINT = ("No findings in an ecosystem that is not covered means nothing could be "
                 "checked, not that it is clean: load its advisories (`patchpilot db "
                 "update`; `patchpilot db status` shows what is loaded).")


def coverage_lines(result: ScanResult) -> list[str]:
    """One line per ecosystem of the scan that no (or almost no) advisory covers --
    "not covered: npm 978 packages (0 advisories loaded)" -- and what to do; none when
    every ecosystem is covered."""
    missing = result.not_covered()
    if not missing:
        return []
    return [*(c.describe() for c in missing), COVERAGE_HINT]


def render(result: ScanResult, width: int = 200) -> str:
    """The table as plain text (for --output FILE)."""
    console = Console(file=io.StringIO(), width=width, color_system=None)
    show(console, table(result))
    console.print(summary_line(result))
    for line in set_aside_lines(result):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    for line in warning_lines(result, limit=len(result.inventory.warnings)):
        console.print(line, overflow="fold")
    for line in coverage_lines(result):
        console.print(line, markup=False, highlight=False)
    return console.file.getvalue()  # type: ignore[attr-defined]
