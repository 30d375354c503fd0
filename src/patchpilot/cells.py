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

import re
from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
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
