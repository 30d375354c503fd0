"""Helpers shared by the lock-file source tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources.interface import InventorySource, Parsed


def parse_file(source: InventorySource, path: Path) -> Parsed:
    """What ``source`` reads in ``path``, located by its full path as the transports do."""
    return source.parse(path.read_bytes(), str(path), None)


def format_error(source: InventorySource, data: bytes, location: str = "lockfile"
                 ) -> InventoryFormatError:
    """The InventoryFormatError ``source`` raises for ``data`` (fails when none is raised)."""
    with pytest.raises(InventoryFormatError) as raised:
        source.parse(data, location, None)
    assert raised.value.path == location
    return raised.value
