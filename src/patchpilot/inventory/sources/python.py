"""Installed Python distributions: a dist-info METADATA or egg-info PKG-INFO file.

Format: https://packaging.python.org/en/latest/specifications/core-metadata/ -- email
headers; only ``Name`` and ``Version`` are read, and only the headers (the long
description after the first blank line may be large and is never needed).
"""

from __future__ import annotations

import re

from patchpilot.errors import InventoryFormatError

ECOSYSTEM = "PyPI"

_PY_TAG = re.compile(r"-py\d+(\.\d+)*$")


def parse_metadata(text: str, location: str = "METADATA") -> tuple[str, str]:
    """``(name, version)`` of a METADATA / PKG-INFO file.

    Raises InventoryFormatError naming ``location`` when Name or Version is missing.
    """
    name = version = ""
    for line in text.splitlines():
        if not line.strip():
            break  # end of the headers; the body is the long description
        if line[0] in " \t":
            continue  # folded header continuation
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "name" and not name:
            name = value.strip()
        elif key == "version" and not version:
            version = value.strip()
        if name and version:
            break
    if not name or not version:
        missing = "Name" if not name else "Version"
        raise InventoryFormatError(location, f"core metadata without {missing}")
    return name, version


def parse_dist_dir_name(dirname: str) -> tuple[str, str] | None:
    """``(name, version)`` from a ``name-version.dist-info`` / ``.egg-info`` name, or None.

    PEP 427 escapes ``-`` in both parts, so the last ``-`` separates them.  Used when the
    METADATA file itself is unreadable.
    """
    for suffix in (".dist-info", ".egg-info"):
        if dirname.endswith(suffix):
            # egg-info may end in "-py3.11"; dist-info never does.
            stem = _PY_TAG.sub("", dirname[: -len(suffix)])
            name, sep, version = stem.rpartition("-")
            if sep and name and version:
                return name, version
    return None
