"""Output formats of ``patchpilot scan``: one module per format, listed in ``FORMATS``."""

from __future__ import annotations

from collections.abc import Callable

from patchpilot.findings.scan import ScanResult
from patchpilot.reports.scan import csv_format, json_format, sarif_format, table_format

Renderer = Callable[[ScanResult], str]

# The one table of output formats (the table format renders to the terminal itself).
FORMATS: dict[str, Renderer] = {
    "table": table_format.render,
    "json": json_format.render,
    "csv": csv_format.render,
    "sarif": sarif_format.render,
}
