"""SPDX 2.x SBOMs: JSON (2.2, 2.3), YAML, RDF/XML and the tag-value text format.

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
* YAML (``.spdx.yaml``) has the JSON document's keys and is read by the same code, with
  PyYAML's safe loader (no tags, no objects).  RDF/XML (``.spdx.rdf``, ``.spdx.xml``) is
  read with defusedxml, which refuses DTDs and entity declarations (no entity is ever
  expanded): ``spdx:Package`` elements, with ``spdx:name``, ``spdx:versionInfo``,
  ``spdx:downloadLocation``, ``spdx:supplier`` and ``spdx:externalRef``.
* A package with ``primaryPackagePurpose: OPERATING-SYSTEM`` (SPDX 2.3) names the OS; so
  does, in SPDX 2.2, a package the document describes whose name is a distribution
  (``alpine`` ``3.10`` in syft's vendor example).
* A package without a purl is not dropped: its other external references (a purl-like
  locator under another type), its ``downloadLocation`` on a registry
  (``go://module@v1.2.3``, registry.npmjs.org, files.pythonhosted.org, crates.io,
  repo1.maven.org, rubygems.org, proxy.golang.org) or, in a document describing a
  distribution, a version of that distribution's form (``1.30.1-r5`` for Alpine,
  ``+deb12u1`` for Debian, ``.el9`` for RPM) or a supplier naming it, say its ecosystem;
  the package then gets a purl built from that.
  The rest (directories, vendored code with a CPE only) are counted and named in a
  warning as undetermined; so is a purl that names no ecosystem.
* SPDX 3 (JSON-LD) is a different model and is refused with a clear error.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as DefusedET
import orjson
import yaml
from defusedxml import DefusedXmlException
from packageurl import PackageURL

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.inventory.sources.purl_map import SbomPackages
from patchpilot.knowledge.ecosystems import ecosystem_for_os, scheme_of
from patchpilot.models import Ecosystem, OsRelease

_JSON_MARKER = re.compile(rb'"spdxVersion"\s*:\s*"SPDX-')
_TAG_MARKER = re.compile(rb"^SPDXVersion:\s*SPDX-", re.MULTILINE)
_YAML_MARKER = re.compile(rb"^spdxVersion:\s*[\"']?SPDX-", re.MULTILINE)
_RDF_MARKER = re.compile(rb"http://spdx\.org/rdf/terms")
_SPDX3_MARKER = re.compile(rb"spdx\.org/rdf/3\.")
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_SPDX = "{http://spdx.org/rdf/terms#}"
_UNDETERMINED = "undetermined: no purl, nor an ecosystem in its references or download location"


class _Entry:
    """One SPDX package, whichever the encoding."""

    __slots__ = ("download", "locators", "name", "purls", "purpose", "spdx_id", "supplier",
                 "version")

    def __init__(self, name: str = "", version: str = "", spdx_id: str = "") -> None:
        self.name = name
        self.version = version
        self.spdx_id = spdx_id
        self.purpose = ""
        self.purls: list[str] = []
        self.locators: list[str] = []  # the locators of the other external references
        self.download = ""
        self.supplier = ""

    def add_ref(self, kind: str, locator: str) -> None:
        """One external reference: a purl, or another locator kept for the fallback."""
        if not locator:
            return
        if kind.rsplit("/", 1)[-1] == "purl":
            self.purls.append(locator)
        else:
            self.locators.append(locator)

    @property
    def label(self) -> str:
        """``name@version`` for warnings."""
        name = self.name or self.spdx_id or "(unnamed)"
        return f"{name}@{self.version}" if self.version else name


def _check_version(version: object, location: str) -> None:
    if not isinstance(version, str) or not version.startswith("SPDX-2."):
        raise InventoryFormatError(
            location, f"SPDX: spdxVersion {version!r} is not SPDX-2.x (2.2 and 2.3 are read)")


def _distro_of(entry: _Entry) -> OsRelease | None:
    """The OS a described package names (``alpine`` ``3.10``), or None."""
    if not entry.name or not entry.version:
        return None
    release = OsRelease(id=entry.name.strip().lower(), version_id=entry.version)
    return release if ecosystem_for_os(release) is not None else None


# Registry download URLs -> (purl type, the path's pattern giving namespace/name/version).
_GO_LOCATION = re.compile(r"^go://(?P<name>[^@\s]+)@(?P<version>\S+)$")
_DOWNLOADS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("proxy.golang.org", "golang", re.compile(r"^/(?P<name>.+)/@v/(?P<version>[^/]+)\.zip$")),
    ("registry.npmjs.org", "npm",
     re.compile(r"^/(?P<name>(?:@[^/]+/)?[^/]+)/-/[^/]+-(?P<version>\d[^/]*)\.tgz$")),
    ("files.pythonhosted.org", "pypi", re.compile(r"^/packages/.+/[^/]+$")),
    ("pypi.org", "pypi", re.compile(r"^/.+$")),
    ("crates.io", "cargo",
     re.compile(r"^/api/v1/crates/(?P<name>[^/]+)/(?P<version>[^/]+)/download$")),
    ("static.crates.io", "cargo",
     re.compile(r"^/crates/(?P<name>[^/]+)/[^/]+-(?P<version>\d[^/]*)\.crate$")),
    ("repo1.maven.org", "maven",
     re.compile(r"^/maven2/(?P<group>.+)/(?P<name>[^/]+)/(?P<version>[^/]+)/[^/]+$")),
    ("repo.maven.apache.org", "maven",
     re.compile(r"^/maven2/(?P<group>.+)/(?P<name>[^/]+)/(?P<version>[^/]+)/[^/]+$")),
    ("rubygems.org", "gem", re.compile(r"^/(?:gems|downloads)/[^/]+\.gem$")),
)
# A distribution package's version, by version scheme: Alpine's always ends in -rN; a
# Debian or RPM version only says so with a distribution marker (+deb12u1, ubuntu,
# .el9, .fc39), else the package's supplier must name the distribution.
_OS_PURLS = ("pkg:apk", "pkg:deb", "pkg:rpm")
_OS_VERSIONS = {"apk": re.compile(r"^\S+-r\d+$"),
                "dpkg": re.compile(r"[+~]deb\d+u\d+|ubuntu\d|~bpo\d+"),
                "rpm": re.compile(r"\.(?:el|fc|amzn|mga|ph|azl|cm)\d")}


def _purl(kind: str, namespace: str | None, name: str, version: str) -> str:
    return PackageURL(type=kind, namespace=namespace or None, name=name,
                      version=version).to_string()


def _from_download(entry: _Entry) -> str | None:
    """A purl built from a registry ``downloadLocation`` (with ``versionInfo``)."""
    location = entry.download.strip()
    go = _GO_LOCATION.match(location)
    if go:
        namespace, _, name = go.group("name").rpartition("/")
        return _purl("golang", namespace, name, entry.version or go.group("version"))
    if not location.startswith(("https://", "http://")):
        return None
    url = urlsplit(location)
    for host, kind, pattern in _DOWNLOADS:
        found = pattern.match(unquote(url.path))
        if url.hostname != host or not found:
            continue
        groups = found.groupdict()
        version = entry.version or groups.get("version") or ""
        name = groups.get("name") or entry.name
        if not version or not name:
            return None
        if kind == "maven":
            return _purl(kind, groups["group"].replace("/", "."), name, version)
        namespace, _, short = name.rpartition("/")
        return _purl(kind, namespace, short, version)
    return None


def _fallback_purl(entry: _Entry, os_release: OsRelease | None) -> str | None:
    """What names an entry without a purl: see the module's choices."""
    for locator in entry.locators:
        if locator.startswith("pkg:"):
            return locator
    built = _from_download(entry)
    if built is not None or os_release is None or not entry.name or not entry.version:
        return built
    ecosystem = ecosystem_for_os(os_release)
    scheme = scheme_of(ecosystem) if ecosystem else ""
    shape = _OS_VERSIONS.get(scheme)
    supplied = os_release.id in entry.supplier.lower()
    if shape is None or not (supplied or shape.search(entry.version)):
        return None
    kind = {"apk": "apk", "dpkg": "deb", "rpm": "rpm"}[scheme]
    return _purl(kind, os_release.id, entry.name, entry.version)


def _fallback_note(location: str, kind: str, labels: list[str]) -> str:
    """``N packages without a purl read as pkg:golang from …: a, b``."""
    how = ("the distribution the document describes" if kind in _OS_PURLS
           else "their download location or references")
    plural = "" if len(labels) == 1 else "s"
    more = f" and {len(labels) - 10} more" if len(labels) > 10 else ""
    return (f"{location}: {len(labels)} package{plural} without a purl read as {kind} from "
            f"{how}: {', '.join(labels[:10])}{more}")


def _build(entries: list[_Entry], location: str, distro: Ecosystem | None,
           described: set[str] | None = None, warnings: tuple[str, ...] = ()) -> Parsed:
    """Packages, OS and warnings from the packages of one SPDX document.

    ``described``: the SPDXIDs the document describes (a distribution among them is the
    OS of a document without ``primaryPackagePurpose``).
    """
    os_release = None
    os_entry: _Entry | None = None
    for entry in entries:
        if entry.purpose == "OPERATING-SYSTEM" and entry.name:
            os_release = OsRelease(id=entry.name.strip().lower(),
                                   version_id=entry.version or None)
            os_entry = entry
            break
    else:
        for entry in entries:
            if entry.spdx_id in (described or ()) and not entry.purls:
                os_release = _distro_of(entry)
                if os_release is not None:
                    os_entry = entry
                    break
    fallback = distro or (ecosystem_for_os(os_release) if os_release else None)
    found = SbomPackages(location, fallback, "package")
    fallbacks: dict[str, list[str]] = {}
    for entry in entries:
        if entry is os_entry or entry.purpose in ("OPERATING-SYSTEM", "FILE"):
            continue
        if entry.purls:
            for purl in entry.purls:
                found.add(purl, entry.label)
            continue
        built = _fallback_purl(entry, os_release)
        if built is None:
            only_cpe = next((loc for loc in entry.locators if loc.startswith("cpe:")), None)
            found.skip(f"{_UNDETERMINED}{' (a CPE only)' if only_cpe else ''}", entry.label)
        else:
            before = len(found.packages)
            found.add(built, entry.label)
            if len(found.packages) > before:
                fallbacks.setdefault(built.partition("/")[0], []).append(entry.label)
    notes = tuple(_fallback_note(location, kind, labels) for kind, labels in fallbacks.items())
    out = (*warnings, *notes, *found.warnings())
    if not entries:
        out = (*out, f"{location}: SPDX document lists no packages")
    return Parsed(found.packages, os_release, out)


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
    return _from_document(document, location, distro)


def parse_spdx_yaml(text: str, location: str, distro: Ecosystem | None) -> Parsed:
    """The packages of an SPDX 2.2/2.3 YAML document (the JSON document's keys)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InventoryFormatError(location, f"SPDX: not valid YAML ({problem})",
                                   line=mark.line + 1 if mark is not None else None) from None
    if not isinstance(document, dict) or "spdxVersion" not in document:
        raise InventoryFormatError(location, "not an SPDX document (no spdxVersion)")
    return _from_document(document, location, distro)


def _from_document(document: dict[str, Any], location: str, distro: Ecosystem | None
                   ) -> Parsed:
    _check_version(document["spdxVersion"], location)
    packages = document.get("packages")
    if packages is None:
        packages = []  # a document may describe only files, or nothing (minimal.spdx.json)
    if not isinstance(packages, list):
        raise InventoryFormatError(location, "SPDX: packages is not a list")
    entries = []
    warnings: list[str] = []
    for index, raw in enumerate(packages):
        if not isinstance(raw, dict):
            warnings.append(f"{location}: SPDX packages[{index}] is not an object; skipped")
            continue
        entries.append(_json_entry(raw, index, location, warnings))
    described = {d for d in document.get("documentDescribes") or [] if isinstance(d, str)}
    for relation in document.get("relationships") or []:
        if isinstance(relation, dict) and relation.get("relationshipType") == "DESCRIBES" \
                and relation.get("spdxElementId") == document.get("SPDXID"):
            described.add(str(relation.get("relatedSpdxElement")))
    return _build(entries, location, distro, described, tuple(warnings))


def _json_entry(raw: dict[str, Any], index: int, location: str, warnings: list[str]
                ) -> _Entry:
    entry = _Entry(str(raw.get("name") or ""), str(raw.get("versionInfo") or ""),
                   str(raw.get("SPDXID") or ""))
    entry.purpose = str(raw.get("primaryPackagePurpose") or "")
    entry.download = str(raw.get("downloadLocation") or "")
    entry.supplier = str(raw.get("supplier") or "")
    refs = raw.get("externalRefs")
    if refs is None:
        refs = []
    if not isinstance(refs, list):
        warnings.append(f"{location}: SPDX packages[{index}].externalRefs is not a list; "
                        "ignored")
        refs = []
    for ref in refs:
        if isinstance(ref, dict):
            locator = ref.get("referenceLocator")
            entry.add_ref(str(ref.get("referenceType") or ""),
                          locator if isinstance(locator, str) else "")
    return entry


def _text_of(element: Element, tag: str) -> str:
    child = element.find(_SPDX + tag)
    return (child.text or "").strip() if child is not None else ""


def _resource(element: Element, tag: str) -> str:
    child = element.find(_SPDX + tag)
    if child is None:
        return ""
    return child.get(_RDF + "resource") or (child.text or "").strip()


def parse_spdx_rdf(data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
    """The packages of an SPDX 2.x RDF/XML document (defusedxml: no DTD, no entities)."""
    try:
        root = DefusedET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise InventoryFormatError(location, f"SPDX RDF/XML refused: {exc}") from None
    except ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise InventoryFormatError(location, f"SPDX: invalid XML: {exc.msg}",
                                   line=line) from None
    document = root if root.tag == _SPDX + "SpdxDocument" else root.find(_SPDX + "SpdxDocument")
    if document is None:
        raise InventoryFormatError(location, "not an SPDX RDF/XML document (no "
                                             "spdx:SpdxDocument)")
    _check_version(_text_of(document, "specVersion"), location)
    entries: list[_Entry] = []
    seen: set[str] = set()
    for element in root.iter(_SPDX + "Package"):
        about = element.get(_RDF + "about") or ""
        if element.find(_SPDX + "name") is None or (about and about in seen):
            continue  # a reference to a package defined elsewhere in the document
        seen.add(about)
        entry = _Entry(_text_of(element, "name"), _text_of(element, "versionInfo"),
                       about.rpartition("#")[2])
        entry.purpose = _resource(element, "primaryPackagePurpose").rpartition(
            "purpose_")[2].upper().replace("_", "-").replace("OPERATINGSYSTEM",
                                                             "OPERATING-SYSTEM")
        entry.download = _text_of(element, "downloadLocation")
        entry.supplier = _text_of(element, "supplier")
        for ref in element.iter(_SPDX + "ExternalRef"):
            entry.add_ref(_resource(ref, "referenceType"), _text_of(ref, "referenceLocator"))
        entries.append(entry)
    described = {d.get(_RDF + "resource", "").rpartition("#")[2] for d in
                 document.findall(_SPDX + "describesPackage")}
    described |= {p.get(_RDF + "about", "").rpartition("#")[2]
                  for d in document.findall(_SPDX + "describesPackage")
                  for p in d.findall(_SPDX + "Package")}
    return _build(entries, location, distro, described)


def parse_spdx_tag_value(text: str, location: str, distro: Ecosystem | None) -> Parsed:
    """The packages of an SPDX 2.x tag-value document (``Tag: value`` lines); a line that
    is not one is skipped with a warning naming it."""
    entries: list[_Entry] = []
    warnings: list[str] = []
    described: set[str] = set()
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
            warnings.append(f"{location}:{number}: SPDX: not a 'Tag: value' line: "
                            f"{line[:60]!r}; skipped")
            continue
        value = value.strip()
        if value.startswith("<text>") and "</text>" not in value:
            in_text = True
            continue
        if tag == "SPDXVersion":
            _check_version(value, location)
            version_seen = True
        elif tag == "Relationship":
            parts = value.split()
            if len(parts) == 3 and parts[1] == "DESCRIBES":
                described.add(parts[2])
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
        elif tag == "PackageDownloadLocation":
            current.download = value
        elif tag == "PackageSupplier":
            current.supplier = value
        elif tag == "ExternalRef":
            # "ExternalRef: <category> <type> <locator>"
            parts = value.split()
            if len(parts) >= 3:
                current.add_ref(parts[1], parts[2])
        elif tag in ("FileName", "SnippetSPDXID"):
            current = None  # a file or snippet section ends the package's fields
    if not version_seen:
        raise InventoryFormatError(location, "not an SPDX document (no SPDXVersion line)")
    return _build(entries, location, distro, described, tuple(warnings))


class SpdxSource:
    """An SPDX 2.2/2.3 SBOM: JSON, YAML, RDF/XML or tag-value."""

    name = "spdx"
    file_names: tuple[str, ...] = ("*.spdx.json", "*.spdx", "*.spdx.yaml", "*.spdx.yml",
                                   "*.spdx.rdf", "*.spdx.rdf.xml", "*.spdx.xml")

    def detect(self, name: str, head: bytes) -> bool:
        """``"spdxVersion": "SPDX-…"`` in JSON, ``spdxVersion: SPDX-…`` in YAML, an
        ``SPDXVersion:`` line in tag-value, the SPDX RDF namespace in XML."""
        return bool(_JSON_MARKER.search(head) or _TAG_MARKER.search(head)
                    or _YAML_MARKER.search(head)
                    or (head.lstrip().startswith(b"<") and _RDF_MARKER.search(head)))

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
        if start == b"<":
            return parse_spdx_rdf(data, location, distro)
        text = data.decode("utf-8", errors="replace")
        if _YAML_MARKER.search(data[:8192]) and not _TAG_MARKER.search(data[:8192]):
            return parse_spdx_yaml(text, location, distro)
        return parse_spdx_tag_value(text, location, distro)


SOURCE = SpdxSource()
