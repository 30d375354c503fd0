"""Spreadsheet cells: text that a spreadsheet would run as a formula is neutralised.

An asset's name comes from an agent's hostname or a CMDB import; a package name from a
lock file.  Written as-is into a CSV or XLSX export, ``=HYPERLINK("http://evil","host")``
becomes a live formula when a manager opens the file (CSV injection).  Following the
OWASP guidance (https://owasp.org/www-community/attacks/CSV_Injection), a text cell that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with ``'``.

Numbers stay numbers: only ``str`` cells are touched, and a text cell that is a plain
decimal number (``-1.5``, ``+3``) is not a formula in any spreadsheet, so it is kept.
This module sits on the bottom floor: scans (the patch plan), reports and the CLI use it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_FIRST = frozenset(FORMULA_STARTS)
# A streamed CSV is sent in pieces of about this many characters.
CSV_CHUNK_CHARS = 64 * 1024
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet may show it: text starting like a formula gets a ``'``
    in front; anything else (numbers, dates, None, plain text) is returned unchanged."""
    if (isinstance(value, str) and value.startswith(FORMULA_STARTS)
            and not _PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    """Every cell of a row through :func:`safe_cell`."""
    return [safe_cell(v) for v in values]


def safe_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row keyed by column (``csv.DictWriter``'s shape) through :func:`safe_cell`."""
    return {k: safe_cell(v) for k, v in row.items()}


def safe_values(values: Sequence[Any]) -> list[Any]:
    """A row's cells, each through :func:`safe_cell` -- called only for text whose first
    character may start a formula (the common case, plain text, costs one set lookup;
    an export has twenty cells a row)."""
    return [safe_cell(v) if isinstance(v, str) and v and v[0] in FORMULA_FIRST else v
            for v in values]


def csv_chunks(rows: Iterable[Sequence[Any]], columns: Sequence[str]) -> Iterator[bytes]:
    """Rows (cells in ``columns`` order) as UTF-8 CSV with a header line (``\\n`` line
    ends), in pieces of about :data:`CSV_CHUNK_CHARS`, as the rows come: memory stays flat
    however many there are (the plan's and the reports' streamed downloads).  Text cells
    that start like a formula are neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    held = writer.writerow(columns)
    for row in rows:
        # writerow answers the characters written: StringIO.tell() would copy the buffer
        # each time it is asked (quadratic in the chunk's size).
        held += writer.writerow(safe_values(row))
        if held >= CSV_CHUNK_CHARS:
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
            held = 0
    yield out.getvalue().encode("utf-8")
