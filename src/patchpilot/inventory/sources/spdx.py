"""SPDX 2.x SBOMs: JSON (2.2, 2.3) and the tag-value text format.

Spec: https://spdx.github.io/spdx-spec/v2.3/ -- a document's ``packages`` each carry
``externalRefs``; the one with ``referenceType`` ``purl`` (category ``PACKAGE-MANAGER``,
spelled ``PACKAGE_MANAGER`` in 2.2, and ``SECURITY`` by some tools) names the package
(https://spdx.github.io/spdx-spec/v2.3/external-repository-identifiers/#f35-purl).

Choices:

* Parsed directly, as DESIGN says (orjson for JSON): the SPDX tools library pulls in a
  large dependency tree for what is a walk over one list.
* Tag-value (``.spdx``) is supported too, because it is the format SPDX 2 started with and
  tools still write it: only ``SPDXVersion``, ``PackageName``, ``PackageVersion``,
  ``SPDXID``, ``PrimaryPackagePurpose`` and ``ExternalRef`` lines are read; multi-line
  ``<text>…</text>`` values are skipped
  (https://spdx.github.io/spdx-spec/v2.3/conformance/#44-standard-data-format-requirements).
* A package with ``primaryPackagePurpose: OPERATING-SYSTEM`` (SPDX 2.3) names the OS.
* A package without a purl is not matched and is named in a warning (SPDX packages are
  often directories or whole images with no purl); so is a purl that names no ecosystem.
* SPDX 3 (JSON-LD) is a different model and is refused with a clear error.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.inventory.sources.purl_map import SbomPackages
from patchpilot.knowledge.ecosystems import ecosystem_for_os
from patchpilot.models import Ecosystem, OsRelease

_JSON_MARKER = re.compile(rb'"spdxVersion"\s*:\s*"SPDX-')
_TAG_MARKER = re.compile(rb"^SPDXVersion:\s*SPDX-", re.MULTILINE)
_SPDX3_MARKER = re.compile(rb"spdx\.org/rdf/3\.")


class _Entry:
    """One SPDX package, whichever the encoding."""

    __slots__ = ("name", "purls", "purpose", "spdx_id", "version")

    def __init__(self, name: str = "", version: str = "", spdx_id: str = "") -> None:
        self.name = name
        self.version = version
        self.spdx_id = spdx_id
        self.purpose = ""
        self.purls: list[str] = []

    @property
    def label(self) -> str:
        """``name@version`` for warnings."""
        name = self.name or self.spdx_id or "(unnamed)"
        return f"{name}@{self.version}" if self.version else name


def _check_version(version: object, location: str) -> None:
    if not isinstance(version, str) or not version.startswith("SPDX-2."):
        raise InventoryFormatError(
            location, f"SPDX: spdxVersion {version!r} is not SPDX-2.x (2.2 and 2.3 are read)")


def _build(entries: list[_Entry], location: str, distro: Ecosystem | None) -> Parsed:
    """Packages, OS and warnings from the packages of one SPDX document."""
    os_release = None
    for entry in entries:
        if entry.purpose == "OPERATING-SYSTEM" and entry.name:
            os_release = OsRelease(id=entry.name.strip().lower(),
                                   version_id=entry.version or None)
            break
    fallback = distro or (ecosystem_for_os(os_release) if os_release else None)
    found = SbomPackages(location, fallback, "package")
    for entry in entries:
        if entry.purls:
            for purl in entry.purls:
                found.add(purl, entry.label)
        elif entry.purpose not in ("OPERATING-SYSTEM", "FILE"):
            found.skip("no purl", entry.label)
    warnings = found.warnings()
    if not entries:
        warnings = (*warnings, f"{location}: SPDX document lists no packages")
    return Parsed(found.packages, os_release, warnings)


def parse_spdx_json(data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
    """The packages of an SPDX 2.2/2.3 JSON document."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InventoryFormatError(location, f"SPDX: not valid JSON ({exc.msg})",
                                   line=exc.lineno) from None
    if not isinstance(document, dict) or "spdxVersion" not in document:
        if _SPDX3_MARKER.search(data[:4096]):
            raise InventoryFormatError(location, "SPDX 3 (JSON-LD) is not supported; "
                                                 "export SPDX 2.3 JSON")
        raise InventoryFormatError(location, 'not an SPDX document (no "spdxVersion")')
    _check_version(document["spdxVersion"], location)
    packages = document.get("packages")
    if packages is None:
        packages = []  # a document may describe only files, or nothing (minimal.spdx.json)
    if not isinstance(packages, list):
        raise InventoryFormatError(location, "SPDX: packages is not a list")
    entries = []
    for index, raw in enumerate(packages):
        if not isinstance(raw, dict):
            raise InventoryFormatError(location, f"SPDX: packages[{index}] is not an object")
        entries.append(_json_entry(raw, index, location))
    return _build(entries, location, distro)


def _json_entry(raw: dict[str, Any], index: int, location: str) -> _Entry:
    entry = _Entry(str(raw.get("name") or ""), str(raw.get("versionInfo") or ""),
                   str(raw.get("SPDXID") or ""))
    entry.purpose = str(raw.get("primaryPackagePurpose") or "")
    refs = raw.get("externalRefs")
    if refs is None:
        refs = []
    if not isinstance(refs, list):
        raise InventoryFormatError(location, f"SPDX: packages[{index}].externalRefs is not a list")
    for ref in refs:
        if isinstance(ref, dict) and ref.get("referenceType") == "purl":
            locator = ref.get("referenceLocator")
            if isinstance(locator, str) and locator:
                entry.purls.append(locator)
    return entry


def parse_spdx_tag_value(text: str, location: str, distro: Ecosystem | None) -> Parsed:
    """The packages of an SPDX 2.x tag-value document (``Tag: value`` lines)."""
    entries: list[_Entry] = []
    current: _Entry | None = None
    version_seen = False
    in_text = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if in_text:
            # A <text> value spans lines until its closing tag.
            in_text = "</text>" not in line
            continue
        if not line or line.startswith("#"):
            continue
        tag, sep, value = line.partition(":")
        if not sep or " " in tag:
            raise InventoryFormatError(location, f"SPDX: not a 'Tag: value' line: {line[:60]!r}",
                                       line=number)
        value = value.strip()
        if value.startswith("<text>") and "</text>" not in value:
            in_text = True
            continue
        if tag == "SPDXVersion":
            _check_version(value, location)
            version_seen = True
        elif tag == "PackageName":
            current = _Entry(value)
            entries.append(current)
        elif current is None:
            continue  # document fields before the first package
        elif tag == "PackageVersion":
            current.version = value
        elif tag == "SPDXID" and not current.spdx_id:
            current.spdx_id = value
        elif tag == "PrimaryPackagePurpose":
            current.purpose = value
        elif tag == "ExternalRef":
            # "ExternalRef: <category> <type> <locator>"
            parts = value.split()
            if len(parts) >= 3 and parts[1] == "purl":
                current.purls.append(parts[2])
        elif tag in ("FileName", "SnippetSPDXID"):
            current = None  # a file or snippet section ends the package's fields
    if not version_seen:
        raise InventoryFormatError(location, "not an SPDX document (no SPDXVersion line)")
    return _build(entries, location, distro)


class SpdxSource:
    """An SPDX 2.2/2.3 SBOM, JSON or tag-value."""

    name = "spdx"
    file_names: tuple[str, ...] = ("*.spdx.json", "*.spdx")

    def detect(self, name: str, head: bytes) -> bool:
        """``"spdxVersion": "SPDX-…"`` in JSON, an ``SPDXVersion:`` line in tag-value."""
        return bool(_JSON_MARKER.search(head) or _TAG_MARKER.search(head))

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Packages (by purl), the OS and warnings for packages not matched."""
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]  # a UTF-8 byte order mark, which orjson refuses
        start = data.lstrip()[:1]
        if not start:
            raise InventoryFormatError(location, "empty SPDX file")
        if start == b"{":
            return parse_spdx_json(data, location, distro)
        if b"\x00" in data[:8192]:
            raise InventoryFormatError(location, "binary data, not an SPDX document")
        return parse_spdx_tag_value(data.decode("utf-8", errors="replace"), location, distro)


SOURCE = SpdxSource()
