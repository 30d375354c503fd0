"""The one table of report formats, and detection by content.

Adding a format is one module in ``importers/formats/`` defining ``FORMAT`` and one row
here; ``tests/importers/test_registry.py`` fails when a module is not registered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from patchpilot.errors import InvalidInput
from patchpilot.importers.formats import (
    bundler_audit,
    cargo_audit,
    composer_audit,
    generic,
    govulncheck,
    nessus,
    npm_audit,
    pip_audit,
    yarn_audit,
)
from patchpilot.importers.model import SNIFF_BYTES, Format, Sniff

FORMATS: tuple[Format, ...] = (
    # -- network and host scanners --
    nessus.FORMAT,
    # -- container and image scanners --
    # -- application dependency scanners, SBOM/VEX, SARIF, the generic format --
    # audit tools and the generic format
    npm_audit.FORMAT,
    npm_audit.FORMAT_7,
    yarn_audit.FORMAT,
    pip_audit.FORMAT,
    govulncheck.FORMAT,
    cargo_audit.FORMAT,
    bundler_audit.FORMAT,
    bundler_audit.FORMAT_JSON,
    composer_audit.FORMAT,
    generic.FORMAT,
    generic.FORMAT_JSON,
)

_BY_NAME = {f.name: f for f in FORMATS}


class UnknownFormat(InvalidInput):
    """A file no importer recognises, or a ``--format`` no importer has."""


def names() -> list[str]:
    """Every format's name, sorted."""
    return sorted(_BY_NAME)


def by_name(name: str) -> Format:
    """The format called ``name`` (``--format``), or UnknownFormat listing them all."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownFormat(f"no report format {name!r}; the formats are: "
                            f"{', '.join(names())}", field="format") from None


def sniff(stream: IO[bytes], name: str) -> Sniff:
    """The head of ``stream`` for detection; the stream is rewound."""
    head = stream.read(SNIFF_BYTES)
    stream.seek(0)
    return Sniff(name, head)


def detect(sniffed: Sniff, formats: Sequence[Format] = FORMATS) -> Format:
    """The format whose ``detect`` scores the file highest; UnknownFormat naming every
    format tried when none recognises it."""
    best: tuple[int, Format] | None = None
    for fmt in formats:
        score = fmt.detect(sniffed)
        if score > 0 and (best is None or score > best[0]):
            best = (score, fmt)
    if best is None:
        what = f"{sniffed.kind} file" if sniffed.head.strip() else "empty file"
        raise UnknownFormat(
            f"{sniffed.name}: no importer recognises this {what}; tried "
            f"{', '.join(f.name for f in formats)}. Give --format if it is one of them, or "
            "convert it to the generic format (docs/importers.md)", field="format")
    return best[1]
