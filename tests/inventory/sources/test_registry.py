"""The inventory source registry: every source module is listed, names are unique."""

from __future__ import annotations

import importlib
import pkgutil

import patchpilot.inventory.sources as sources_pkg
from patchpilot.inventory.sources.registry import SOURCES, SOURCES_BY_NAME

# Modules of the package that are not sources themselves (parsers used by transports,
# shared helpers, the contract and the table).
NOT_SOURCES = {"interface", "registry", "os_release", "python", "purl_map", "apt_pending",
               "dnf_updateinfo"}


def test_every_source_module_is_registered() -> None:
    modules = {m.name for m in pkgutil.iter_modules(sources_pkg.__path__)
               if not m.name.startswith("_")} - NOT_SOURCES
    for name in sorted(modules):
        module = importlib.import_module(f"patchpilot.inventory.sources.{name}")
        assert hasattr(module, "SOURCE"), f"{name} defines no SOURCE"
    registered = {type(s).__module__.rsplit(".", 1)[1] for s in SOURCES}
    assert registered == modules
    assert len(SOURCES_BY_NAME) == len(SOURCES)
