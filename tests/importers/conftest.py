"""Helpers for the importer tests: read a shared report sample through its format."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.importers import registry
from patchpilot.importers.model import Format, ReportItem, Skipped, Target


class Parsed:
    """What a format's parser made of one file: its items, targets and skipped notes."""

    def __init__(self, fmt: Format, rows: list[ReportItem | Target | Skipped]) -> None:
        self.format = fmt
        self.items = [r for r in rows if isinstance(r, ReportItem)]
        self.findings = [r for r in self.items if not r.informational]
        self.informational = [r for r in self.items if r.informational]
        self.targets = [r for r in rows if isinstance(r, Target)]
        self.skipped = [r for r in rows if isinstance(r, Skipped)]


@pytest.fixture
def parse_report(shared_data: Path):  # type: ignore[no-untyped-def]
    """``parse_report("tenable/x.nessus")``: detect the sample's format by content
    (``expect`` asserts which) and parse it whole."""

    def parse(relative: str, expect: str | None = None) -> Parsed:
        path = shared_data / "reports" / relative
        with path.open("rb") as stream:
            fmt = registry.detect(registry.sniff(stream, path.name))
            if expect is not None:
                assert fmt.name == expect
            return Parsed(fmt, list(fmt.parse(stream, path.name)))

    return parse
