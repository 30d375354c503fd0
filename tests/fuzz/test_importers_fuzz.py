"""Fuzz every report format of the importer registry: bad input only ever raises a
ReportError naming the file (``read_report``: a reader's own checks, or the shape it did
not foresee, never a traceback).

A scanner export is truncated by a full disk, re-encoded by a mail gateway, edited by
hand; a reader that answers with a ``KeyError`` or ``TypeError`` turns that into a
traceback on the command line and a failed job without a reason.  Each format is fed
random input and its own real samples (the ones ``tests/importers/golden/samples.json``
says it reads) mutated the way files break.  Detection is fuzzed too: it either names a
format or refuses the file.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchpilot import importers
from patchpilot.importers import registry
from patchpilot.importers.model import Format, ReportError, ReportItem, Sniff, read_report
from tests.fuzz.conftest import FUZZ, mutated, random_input, seed_bytes

TEMPLATES = Path(importers.__file__).parent / "templates"
GOLDEN = Path(__file__).resolve().parents[1] / "importers" / "golden" / "samples.json"
_seeds: dict[str, list[tuple[str, bytes]]] = {}


def seeds_of(fmt: Format, shared_data: Path) -> list[tuple[str, bytes]]:
    """The real samples of ``fmt`` (read once, cut down)."""
    if not _seeds:
        for relative, outcome in json.loads(GOLDEN.read_text(encoding="utf-8")).items():
            if "format" in outcome:
                path = shared_data / "reports" / relative
                _seeds.setdefault(outcome["format"], []).append((path.name, seed_bytes(path)))
        # The generic format's samples are its shipped templates.
        for suffix, name in (("csv", "generic-csv"), ("json", "generic-json")):
            path = TEMPLATES / f"generic-findings.{suffix}"
            _seeds.setdefault(name, []).append((path.name, seed_bytes(path)))
    return _seeds.get(fmt.name, [])


def parse_or_report_error(fmt: Format, data: bytes, name: str) -> None:
    """Parse ``data`` whole; a ReportError naming ``name`` is the one allowed error."""
    try:
        rows = list(read_report(fmt, io.BytesIO(data), name))
    except ReportError as exc:
        assert exc.source == name
        return
    for row in rows:
        if isinstance(row, ReportItem):
            assert row.scanner_id, row
            assert row.severity in ("Critical", "High", "Medium", "Low", "None", "Unknown")


def test_every_format_has_real_samples(shared_data: Path) -> None:
    # Dependency-Check's JSON has no sample in the shared data: its reader is fuzzed with
    # random input only.
    without = sorted(f.name for f in registry.FORMATS if not seeds_of(f, shared_data))
    assert without == ["dependency-check-json"]


@pytest.mark.parametrize("fmt", registry.FORMATS, ids=lambda f: f.name)
@FUZZ
@given(data=random_input())
def test_random_input_raises_only_report_errors(fmt: Format, data: bytes) -> None:
    parse_or_report_error(fmt, data, "random-input")


@pytest.mark.parametrize("fmt", registry.FORMATS, ids=lambda f: f.name)
@FUZZ
@given(draw=st.data())
def test_mutated_samples_raise_only_report_errors(fmt: Format, shared_data: Path,
                                                  draw: st.DataObject) -> None:
    seeds = seeds_of(fmt, shared_data)
    if not seeds:
        return
    name, seed = draw.draw(st.sampled_from(seeds))
    parse_or_report_error(fmt, draw.draw(mutated(seed)), name)


@FUZZ
@given(data=random_input())
def test_detection_names_a_format_or_refuses(data: bytes) -> None:
    try:
        fmt = registry.detect(Sniff("input", data))
    except registry.UnknownFormat:
        return
    assert fmt in registry.FORMATS
