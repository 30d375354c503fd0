"""docs/importers.md lists every registered format with its producer."""

from __future__ import annotations

from patchpilot.importers.registry import FORMATS
from tests.conftest import REPO


def test_every_format_is_documented() -> None:
    text = (REPO / "docs" / "importers.md").read_text(encoding="utf-8")
    missing = [f.name for f in FORMATS
               if f"| `{f.name}` | {f.producer} |" not in text]
    assert missing == []
