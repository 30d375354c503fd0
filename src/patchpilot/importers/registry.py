"""The one table of report formats, and detection by content.

Adding a format is one module in ``importers/formats/`` defining ``FORMAT`` and one row
here; ``tests/importers/test_registry.py`` fails when a module is not registered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from patchpilot.errors import InvalidInput
from patchpilot.importers.formats import (
    anchore_engine,
    aqua,
    bundler_audit,
    cargo_audit,
    clair,
    composer_audit,
    cyclonedx,
    dependency_check,
    dependency_track,
    generic,
    gitlab_dep_scan,
    govulncheck,
    grype,
    harbor,
    jfrog_xray,
    nessus,
    nexpose,
    npm_audit,
    openvas,
    osv_scanner,
    pip_audit,
    qualys,
    qualys_vmdr,
    sarif,
    snyk,
    spdx,
    tenable_csv,
    trivy,
    trivy_operator,
    twistlock,
    wazuh,
    yarn_audit,
)
from patchpilot.importers.model import SNIFF_BYTES, Format, Sniff

FORMATS: tuple[Format, ...] = (
    # -- network and host scanners --
    nessus.FORMAT,
    tenable_csv.FORMAT,
    openvas.FORMAT,
    openvas.FORMAT_CSV,
    qualys.FORMAT,
    qualys.FORMAT_CSV,
    qualys_vmdr.FORMAT,
    nexpose.FORMAT,
    # -- container and image scanners --
    trivy.FORMAT,
    grype.FORMAT,
    trivy_operator.FORMAT,
    anchore_engine.FORMAT,
    aqua.FORMAT,
    clair.FORMAT,
    harbor.FORMAT,
    jfrog_xray.FORMAT,
    twistlock.FORMAT,
    twistlock.FORMAT_CSV,
    wazuh.FORMAT,
    # -- application dependency scanners, SBOM/VEX, SARIF, the generic format --
    osv_scanner.FORMAT,
    snyk.FORMAT,
    gitlab_dep_scan.FORMAT,
    dependency_check.FORMAT,
    dependency_check.FORMAT_JSON,
    dependency_track.FORMAT,
    cyclonedx.FORMAT,
    cyclonedx.FORMAT_XML,
    spdx.FORMAT,
    spdx.FORMAT_TAG_VALUE,
    sarif.FORMAT,
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
