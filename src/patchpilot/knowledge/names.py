"""Package-name normalisation per ecosystem, so lookups hit whatever spelling a feed used."""

from __future__ import annotations

import re

_PEP503 = re.compile(r"[-_.]+")


def normalize_name(ecosystem: str, name: str) -> str:
    """The key under which a package is indexed.

    PyPI names compare per PEP 503 (case-insensitive, ``-_.`` equivalent); npm, crates.io,
    NuGet and the distributions' package names are lower-cased; Go module paths and Maven
    coordinates are case-sensitive and kept as they are.
    """
    family = ecosystem.split(":", 1)[0]
    name = name.strip()
    if family == "PyPI":
        return _PEP503.sub("-", name).lower()
    if family in ("Go", "Maven"):
        return name
    return name.lower()
