"""The one table of inventory sources.  Adding a format is one module and one line here."""

from __future__ import annotations

from patchpilot.inventory.sources import apk, dpkg, rpm
from patchpilot.inventory.sources.interface import InventorySource

# Order matters for detection by content: the first source whose detect() says yes wins,
# so formats recognised by name come before those recognised by content.
SOURCES: tuple[InventorySource, ...] = (
    dpkg.SOURCE,
    apk.SOURCE,
    rpm.SOURCE,
)

SOURCES_BY_NAME: dict[str, InventorySource] = {s.name: s for s in SOURCES}
