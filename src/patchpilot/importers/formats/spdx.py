"""SPDX 2.x documents that name vulnerabilities (JSON and tag-value), e.g. syft's SPDX
with a scanner's advisories attached.

SPDX 2 has no vulnerability section: a package names an advisory by an external
reference of category ``SECURITY``, type ``advisory`` (a URL).  Each such reference whose
URL names an advisory id (CVE, GHSA …) is one item on the package (from its purl, else
its name and version).  A document without advisory references is an SBOM, an
inventory: refused here, it is scanned with ``patchpilot scan file``.  SPDX 3 documents
are refused (their security profile is not read yet).  The target is the document's name
(the image or directory it describes).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._advisories import advisory_ids, purl_package, split_ids
from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    read_json,
    text_or_none,
)

_SBOM = ("this SPDX document names no advisories: it is an SBOM (an inventory); scan it "
         "with `patchpilot scan file` instead")
_SPDX3 = ("SPDX 3 documents are not supported: export SPDX 2.3 or CycloneDX with "
          "vulnerabilities")


def detect(sniff: Sniff) -> int:
    keys = sniff.json_keys
    if "spdxVersion" in keys or ("@context" in keys and "spdx" in sniff.text[:4000].lower()):
        return 50
    return 0


def detect_tag_value(sniff: Sniff) -> int:
    return 50 if re.match(r"\s*SPDXVersion:\s*SPDX-", sniff.text) else 0


def _items(target: Target, package: dict[str, Any]) -> Iterator[ReportItem]:
    """One item per advisory reference of ``package`` (``{name, version, refs}``, refs
    as (category, type, locator))."""
    advisories = [loc for category, kind, loc in package["refs"]
                  if kind.lower() == "advisory" and category.upper() == "SECURITY"]
    purl = next((loc for _c, kind, loc in package["refs"] if kind.lower() == "purl"), None)
    found = purl_package(purl)
    for url in advisories:
        ids = advisory_ids(url)
        if not ids:
            continue
        cves, others = split_ids(ids)
        yield ReportItem(
            target=target,
            scanner_id=ids[0],
            cves=cves,
            aliases=tuple(o for o in others if o != ids[0]),
            ecosystem=str(found.ecosystem) if found else None,
            package=found.name if found else package["name"],
            installed_version=found.version if found else package["version"],
            references=(url,),
        )


def _check(items: list[ReportItem], source: str) -> None:
    if not items:
        raise ReportError(source, _SBOM)


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    document = read_json(stream, source)
    if not isinstance(document, dict):
        raise ReportError(source, "not an SPDX document")
    version = str(document.get("spdxVersion") or "")
    if "@graph" in document or version.startswith("SPDX-3"):
        raise ReportError(source, _SPDX3)
    if not version.startswith("SPDX-2"):
        raise ReportError(source, f"not an SPDX 2 document (spdxVersion {version!r})")
    name = text_or_none(document.get("name"))
    target = Target(artifact=name) if name else Target()
    items = [item for package in document.get("packages") or []
             for item in _items(target, {
                 "name": text_or_none(package.get("name")),
                 "version": text_or_none(package.get("versionInfo")),
                 "refs": [(str(r.get("referenceCategory") or ""),
                           str(r.get("referenceType") or ""),
                           str(r.get("referenceLocator") or ""))
                          for r in package.get("externalRefs") or []]})]
    _check(items, source)
    yield target
    yield from items


def parse_tag_value(stream: IO[bytes], source: str
                    ) -> Iterator[ReportItem | Target | Skipped]:
    text = stream.read().decode("utf-8", errors="replace")
    if not text.strip():
        raise ReportError(source, "the file is empty")
    document: str | None = None
    packages: list[dict[str, Any]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue  # a continuation of a <text> value
        value = value.strip()
        if key == "SPDXVersion" and not value.startswith("SPDX-2"):
            raise ReportError(source, _SPDX3 if value.startswith("SPDX-3") else
                              f"not an SPDX 2 document ({value})", line=number)
        if key == "DocumentName":
            document = value
        elif key == "PackageName":
            packages.append({"name": value, "version": None, "refs": []})
        elif key == "PackageVersion" and packages:
            packages[-1]["version"] = value
        elif key == "ExternalRef" and packages:
            parts = value.split(None, 2)
            if len(parts) == 3:
                packages[-1]["refs"].append(tuple(parts))
    target = Target(artifact=document) if document else Target()
    items = [item for package in packages for item in _items(target, package)]
    _check(items, source)
    yield target
    yield from items


FORMAT = Format(
    name="spdx", producer="spdx", title="SPDX 2 JSON with advisory references",
    detect=detect, parse=parse, extensions=(".spdx.json", ".json"),
    notes="Packages' SECURITY advisory references that name an advisory id; a document "
          "without them is refused (an SBOM), SPDX 3 is refused.")

FORMAT_TAG_VALUE = Format(
    name="spdx-tag-value", producer="spdx", title="SPDX 2 tag-value with advisory references",
    detect=detect_tag_value, parse=parse_tag_value, extensions=(".spdx",),
    notes="As the SPDX JSON reader, from the tag-value form.")
