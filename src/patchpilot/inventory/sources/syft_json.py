"""syft's own JSON output (``syft -o syft-json``).

Schema: https://github.com/anchore/syft/tree/main/schema/json -- ``artifacts`` are the
packages found, each with a ``purl``; ``distro`` holds the image's /etc/os-release fields
(``id``, ``versionID``, ``versionCodename``, ``prettyName``, ``idLike``); ``descriptor``
names the tool (``syft``).  Only those three sections are read.

Choices:

* The purl decides the package (purl_map), as for the other SBOM formats: syft writes
  the release (``distro=alpine-3.16.3``) and the source package (``upstream``) into it.
* An artifact without a purl, or with one no feed covers, is named in a warning.
* ``descriptor.name`` other than ``syft`` is refused: another tool's "artifacts" document
  is not this format.  No ``descriptor`` at all is accepted (hand-trimmed files).
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

# "artifacts" comes first in syft's output and "descriptor" last, so the head of a large
# file shows only artifacts: their syft-only fields ("foundBy", "metadataType") tell it.
_ARTIFACTS = re.compile(rb'"artifacts"\s*:')
_SYFT_FIELDS = re.compile(rb'"(?:foundBy|metadataType)"\s*:|"descriptor"\s*:\s*\{\s*"name"\s*:'
                          rb'\s*"syft"|anchore/syft/')


def _os_release(raw: object) -> OsRelease | None:
    """The OS of syft's ``distro`` section, or None when it names none."""
    if not isinstance(raw, dict) or not raw.get("id"):
        return None
    id_like = raw.get("idLike") or ()
    if isinstance(id_like, str):
        id_like = id_like.split()  # older schemas wrote os-release's space-separated string
    return OsRelease(
        id=str(raw["id"]).lower(),
        version_id=str(raw.get("versionID") or "") or None,
        codename=str(raw.get("versionCodename") or "") or None,
        pretty_name=str(raw.get("prettyName") or "") or None,
        id_like=tuple(str(v) for v in id_like),
    )


def _label(artifact: dict[str, Any]) -> str:
    name = str(artifact.get("name") or "(unnamed)")
    version = artifact.get("version")
    return f"{name}@{version}" if version else name


def parse_syft_json(data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
    """The packages of a syft JSON document, and the OS its ``distro`` names."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InventoryFormatError(location, f"syft JSON: not valid JSON ({exc.msg})",
                                   line=exc.lineno) from None
    if not isinstance(document, dict) or "artifacts" not in document:
        raise InventoryFormatError(location, 'not a syft JSON document (no "artifacts")')
    descriptor = document.get("descriptor")
    if isinstance(descriptor, dict) and descriptor.get("name") not in (None, "syft"):
        raise InventoryFormatError(
            location, f"not a syft JSON document (descriptor names {descriptor.get('name')!r})")
    artifacts = document["artifacts"]
    if artifacts is None:
        artifacts = []  # syft writes null for an image with no packages
    if not isinstance(artifacts, list):
        raise InventoryFormatError(location, "syft JSON: artifacts is not a list")
    os_release = _os_release(document.get("distro"))
    fallback = distro or (ecosystem_for_os(os_release) if os_release else None)
    found = SbomPackages(location, fallback, "artifact")
    for index, artifact in enumerate(artifacts):
        if not isinstance(artifact, dict):
            raise InventoryFormatError(location, f"syft JSON: artifacts[{index}] is not an object")
        purl = artifact.get("purl")
        found.add(purl if isinstance(purl, str) else None, _label(artifact))
    warnings = found.warnings()
    if not artifacts:
        warnings = (*warnings, f"{location}: syft JSON lists no artifacts")
    return Parsed(found.packages, os_release, warnings)


class SyftJsonSource:
    """syft's native JSON (``syft -o syft-json``)."""

    name = "syft"
    file_names: tuple[str, ...] = ("*.syft.json",)

    def detect(self, name: str, head: bytes) -> bool:
        """A JSON object with ``"artifacts"`` showing syft's own fields."""
        return bool(head.lstrip().startswith(b"{") and _ARTIFACTS.search(head)
                    and _SYFT_FIELDS.search(head))

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Packages (by purl), the OS and warnings for artifacts not matched."""
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]  # a UTF-8 byte order mark, which orjson refuses
        if not data.strip():
            raise InventoryFormatError(location, "empty syft JSON file")
        return parse_syft_json(data, location, distro)


SOURCE = SyftJsonSource()
