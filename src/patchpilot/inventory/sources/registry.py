"""The one table of inventory sources.  Adding a format is one module and one line here."""

from __future__ import annotations

from patchpilot.inventory.sources import (
    apk,
    cargo_lock,
    cyclonedx,
    dpkg,
    go_mod,
    maven_pom,
    npm_lock,
    pip_requirements,
    pipfile_lock,
    pnpm_lock,
    poetry_lock,
    rpm,
    spdx,
    syft_json,
    uv_lock,
    yarn_lock,
)
from patchpilot.inventory.sources.interface import InventorySource

# Order matters for detection by content: the first source whose detect() says yes wins,
# so formats recognised by name come before those recognised by content.
SOURCES: tuple[InventorySource, ...] = (
    dpkg.SOURCE,
    apk.SOURCE,
    rpm.SOURCE,
    # Language lock files, told by their file names (yarn also by its v1 header).
    pip_requirements.SOURCE,
    poetry_lock.SOURCE,
    pipfile_lock.SOURCE,
    uv_lock.SOURCE,
    npm_lock.SOURCE,
    yarn_lock.SOURCE,
    pnpm_lock.SOURCE,
    go_mod.SOURCE,
    maven_pom.SOURCE,
    cargo_lock.SOURCE,
    # SBOMs, told by content (a bomFormat / namespace, spdxVersion, syft's fields).
    cyclonedx.SOURCE,
    spdx.SOURCE,
    syft_json.SOURCE,
)

SOURCES_BY_NAME: dict[str, InventorySource] = {s.name: s for s in SOURCES}
