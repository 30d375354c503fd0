"""CycloneDX SBOMs, JSON and XML, spec versions 1.0 (XML) / 1.2 (JSON) to 1.6.

Specs: https://cyclonedx.org/docs/1.6/json/ and https://cyclonedx.org/docs/1.6/xml/.
A BOM lists ``components``, each with a ``purl``; a component may hold ``components`` of
its own (a jar inside a war, a package inside an image), and so may ``metadata.component``
(the thing the BOM describes).  A component of type ``operating-system`` names the OS
(syft writes its os-release fields as ``syft:distro:*`` properties).

Choices:

* **Not** ``Bom.from_json`` / ``Bom.from_xml`` of cyclonedx-python-lib (11.x), which DESIGN
  names: on the 10 MB BOMs of ``bench/bench_sbom.py`` it takes 5.7 s (JSON) and 7.0 s (XML)
  against a target of 2 s, where this module takes 0.2 s; it rejects real files
  (osv-scalibr's 1.6 BOMs write ``"type": ""`` on the metadata component: "'' is not a
  valid ComponentType"), and it builds a full object model (licences, hashes, services)
  of which only the purls are needed.  JSON is read with orjson and XML with lxml's
  streaming ``iterparse``; the library is used where it fits -- ``SchemaVersion``, the
  list of spec versions.
* **XML safety**: a CycloneDX document never needs a DTD, so any ``<!DOCTYPE`` is refused
  before the parser sees it (the billion-laughs and external-entity attacks both need
  one); the parser is also told not to substitute entities, not to load DTDs, not to
  touch the network and to keep libxml2's size limits (``huge_tree`` off).
* ``metadata.component`` is the subject of the BOM (the application or image scanned),
  not one of its dependencies: it is not a package, but its nested components are.
  Components under ``metadata.tools`` (1.5+) are the tools that wrote the BOM: skipped.
* Components are deduplicated by purl.  One without a purl (a binary syft recognised only
  by CPE) is not matched and is named in a warning, as is one whose purl type no feed
  covers (``generic``) or an OS purl without a release; ``file`` and ``data``
  components are not packages and are skipped silently.
* A BOM without components is an empty inventory with a warning, not an error: the format
  says so explicitly (a library with no dependencies).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from cyclonedx.schema import SchemaVersion
from lxml import etree

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.inventory.sources.purl_map import SbomPackages
from patchpilot.knowledge.ecosystems import ecosystem_for_os
from patchpilot.models import Ecosystem, OsRelease

XML_NAMESPACE = "http://cyclonedx.org/schema/bom/"
"""Every CycloneDX XML namespace is this followed by the spec version ("1.4")."""

_JSON_MARKER = re.compile(rb'"bomFormat"\s*:\s*"CycloneDX"')
_XML_MARKER = re.compile(re.escape(XML_NAMESPACE.encode()) + rb"1\.\d")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")

# Component types that are not software packages (https://cyclonedx.org/docs/1.6/json/
# #components_items_type): never matched, never warned about.
_NOT_PACKAGES = frozenset({"file", "data", "operating-system"})


@dataclass(slots=True)
class _Component:
    """What a component says, whichever the encoding."""

    type: str
    name: str
    version: str
    group: str
    purl: str | None
    description: str = ""
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``group/name@version`` for warnings."""
        name = f"{self.group}/{self.name}" if self.group else self.name
        return f"{name}@{self.version}" if self.version else name or "(unnamed)"


def _spec_version(value: object, location: str) -> SchemaVersion:
    """The spec version, validated against the versions cyclonedx-python-lib knows."""
    if not isinstance(value, str) or not value:
        raise InventoryFormatError(location, "CycloneDX: missing specVersion")
    try:
        return SchemaVersion.from_version(value)
    except ValueError:
        raise InventoryFormatError(
            location, f"CycloneDX: unknown specVersion {value!r} (known: "
                      f"{', '.join(v.to_version() for v in reversed(SchemaVersion))})") from None


def _os_release(component: _Component) -> OsRelease:
    """The OS a component of type operating-system names.

    syft writes the os-release fields as properties (``syft:distro:id``,
    ``syft:distro:versionID``, ``syft:distro:idLike:0``, …); trivy only name and version.
    """
    props = component.properties
    id_like = tuple(v for k, v in sorted(props.items()) if k.startswith("syft:distro:idLike"))
    return OsRelease(
        id=(props.get("syft:distro:id") or component.name).strip().lower(),
        version_id=props.get("syft:distro:versionID") or component.version or None,
        codename=props.get("syft:distro:versionCodename") or None,
        pretty_name=props.get("syft:distro:prettyName") or component.description or None,
        id_like=id_like,
    )


def _build(components: list[_Component], subject: _Component | None, location: str,
           distro: Ecosystem | None) -> Parsed:
    """Packages, OS and warnings from the components of one BOM."""
    os_release = None
    for component in (subject, *components):
        if component is not None and component.type == "operating-system":
            os_release = _os_release(component)
            break
    # OS purls without a distro qualifier belong to the OS the BOM names, unless the
    # caller said otherwise.
    fallback = distro or (ecosystem_for_os(os_release) if os_release else None)
    found = SbomPackages(location, fallback, "component")
    for component in components:
        if component.purl:
            found.add(component.purl, component.label)
        elif component.type not in _NOT_PACKAGES:
            found.skip("no purl", component.label)
    warnings = found.warnings()
    if not components:
        warnings = (*warnings, f"{location}: CycloneDX BOM lists no components")
    return Parsed(found.packages, os_release, warnings)


# --- JSON ---------------------------------------------------------------------------------

def _json_component(raw: dict[str, Any], path: str, location: str) -> _Component:
    raw_properties = raw.get("properties") or []
    if not isinstance(raw_properties, list):
        # A truthy non-list (true, a number) is not iterable: say so, not a TypeError.
        raise InventoryFormatError(location, f"CycloneDX: {path}.properties is not a list")
    properties = {}
    for prop in raw_properties:
        if isinstance(prop, dict) and isinstance(prop.get("name"), str):
            properties[prop["name"]] = str(prop.get("value", ""))
    purl = raw.get("purl")
    return _Component(
        type=str(raw.get("type") or ""),
        name=str(raw.get("name") or ""),
        version=str(raw.get("version") or ""),
        group=str(raw.get("group") or ""),
        purl=purl if isinstance(purl, str) and purl else None,
        description=str(raw.get("description") or ""),
        properties=properties,
    )


def _json_walk(items: object, where: str, location: str, out: list[_Component]) -> None:
    """Append every component of ``items`` and, depth first, of their ``components``."""
    if items is None:
        return
    if not isinstance(items, list):
        raise InventoryFormatError(location, f"CycloneDX: {where} is not a list")
    # An explicit stack: nesting depth comes from the file, not from our recursion limit.
    stack = [(f"{where}[{i}]", item) for i, item in reversed(list(enumerate(items)))]
    while stack:
        path, raw = stack.pop()
        if not isinstance(raw, dict):
            raise InventoryFormatError(location, f"CycloneDX: {path} is not an object")
        out.append(_json_component(raw, path, location))
        nested = raw.get("components")
        if nested is None:
            continue
        if not isinstance(nested, list):
            raise InventoryFormatError(location, f"CycloneDX: {path}.components is not a list")
        stack.extend((f"{path}.components[{i}]", item)
                     for i, item in reversed(list(enumerate(nested))))


def parse_cyclonedx_json(data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
    """The packages of a CycloneDX JSON BOM (https://cyclonedx.org/docs/1.6/json/)."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InventoryFormatError(location, f"CycloneDX: not valid JSON ({exc.msg})",
                                   line=exc.lineno) from None
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        raise InventoryFormatError(location, 'not a CycloneDX BOM (no "bomFormat": "CycloneDX")')
    _spec_version(document.get("specVersion"), location)
    components: list[_Component] = []
    subject = None
    metadata = document.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("component"), dict):
        subject = _json_component(metadata["component"], "metadata.component", location)
        _json_walk(metadata["component"].get("components"), "metadata.component.components",
                   location, components)
    _json_walk(document.get("components"), "components", location, components)
    return _build(components, subject, location, distro)


# --- XML ----------------------------------------------------------------------------------

def _local(tag: object) -> str:
    """``component`` of ``{http://cyclonedx.org/schema/bom/1.4}component``."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _xml_component(element: etree._Element, ns: str) -> _Component:
    def text(name: str) -> str:
        child = element.find(f"{{{ns}}}{name}")
        return (child.text or "").strip() if child is not None else ""

    properties = {}
    props = element.find(f"{{{ns}}}properties")
    if props is not None:
        for prop in props.iterfind(f"{{{ns}}}property"):
            properties[prop.get("name", "")] = (prop.text or "").strip()
    return _Component(
        type=element.get("type", ""),
        name=text("name"),
        version=text("version"),
        group=text("group"),
        purl=text("purl") or None,
        description=text("description"),
        properties=properties,
    )


def _in_inventory(path: list[str]) -> bool:
    """Whether a component under these ancestors (root first) is part of the inventory.

    Yes for ``bom/components(/component/components)*`` and the same under
    ``bom/metadata/component``; no for ``metadata/tools/components`` and the rest.
    """
    rest = path[1:]
    if rest[:2] == ["metadata", "component"]:
        rest = rest[2:]
    return len(rest) % 2 == 1 and all(
        part == ("components" if i % 2 == 0 else "component") for i, part in enumerate(rest))


def parse_cyclonedx_xml(data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
    """The packages of a CycloneDX XML BOM (https://cyclonedx.org/docs/1.6/xml/).

    Refuses a document with a DTD (InventoryFormatError) before parsing it.
    """
    probe = _as_utf8(data)
    first = _FIRST_ELEMENT.search(probe)
    prolog = probe[: first.start()] if first else probe
    if _DOCTYPE.search(prolog) or b"<!ENTITY" in prolog:
        raise InventoryFormatError(
            location, "CycloneDX XML with a DOCTYPE (DTD or entity declarations) refused: "
                      "CycloneDX never uses one, and entities can expand without bound")
    events = etree.iterparse(
        io.BytesIO(data), events=("start", "end"), tag=("{*}bom", "{*}component"),
        resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False,
        remove_comments=True, remove_pis=True)
    ns = ""
    components: list[_Component] = []
    subject = None
    try:
        for event, element in events:
            local = _local(element.tag)
            if event == "start":
                if not ns:
                    ns = _root_namespace(element.getroottree().getroot(), location)
                continue
            if local != "component":
                continue
            path = [_local(a.tag) for a in reversed(list(element.iterancestors()))]
            if path == ["bom", "metadata"]:
                subject = _xml_component(element, ns)
            elif _in_inventory(path):
                components.append(_xml_component(element, ns))
            # Its fields are read (nested components were read at their own end): free it.
            element.clear(keep_tail=False)
    except etree.XMLSyntaxError as exc:
        raise InventoryFormatError(location, f"CycloneDX: not well-formed XML ({exc.msg})",
                                   line=exc.lineno or None) from None
    if not ns:
        # No <bom> and no <component> element was seen: name the root that was.
        if events.root is None:
            raise InventoryFormatError(location, "not a CycloneDX BOM (no root element)")
        ns = _root_namespace(events.root, location)
    return _build(components, subject, location, distro)


def _as_utf8(data: bytes) -> bytes:
    """``data`` re-encoded as UTF-8 when it is UTF-16 or UTF-32 text, for the byte checks.

    A DOCTYPE in UTF-16 hides from a byte search; newer libxml2 versions then stop on
    the entity amplification limit before the parse reaches the DOCTYPE check, so the
    refusal would name the wrong reason.  Undecodable bytes are left to the parser.
    """
    for bom, codec in ((b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe\x00\x00", "utf-32"),
                       (b"\xfe\xff", "utf-16"), (b"\xff\xfe", "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec).encode()
            except UnicodeDecodeError:
                return data
    return data


def _root_namespace(root: etree._Element, location: str) -> str:
    """The CycloneDX namespace of the root element; checks it is a ``<bom>`` with no DTD."""
    if root.getroottree().docinfo.doctype:
        # The byte check above misses a DOCTYPE in UTF-16 text; libxml2 does not.
        raise InventoryFormatError(location, "CycloneDX XML with a DOCTYPE refused")
    ns, _, local = str(root.tag)[1:].partition("}")
    if local != "bom" or not ns.startswith(XML_NAMESPACE):
        raise InventoryFormatError(
            location, f"not a CycloneDX BOM (root element {root.tag!r}, expected <bom> in "
                      f"the {XML_NAMESPACE}<version> namespace)")
    _spec_version(ns[len(XML_NAMESPACE):], location)
    return ns


class CycloneDxSource:
    """A CycloneDX SBOM, JSON or XML."""

    name = "cyclonedx"
    file_names: tuple[str, ...] = (
        "*.cdx.json", "*.cdx.xml", "bom.json", "bom.xml", "*.bom.json", "*.bom.xml")

    def detect(self, name: str, head: bytes) -> bool:
        """``"bomFormat": "CycloneDX"`` in JSON, the CycloneDX namespace in XML."""
        return bool(_JSON_MARKER.search(head) or _XML_MARKER.search(head))

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Packages (by purl), the OS and warnings for components not matched."""
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]  # a UTF-8 byte order mark, which orjson refuses
        text_start = data.lstrip()[:1]
        if not text_start:
            raise InventoryFormatError(location, "empty CycloneDX file")
        if text_start == b"{":
            return parse_cyclonedx_json(data, location, distro)
        if text_start == b"<" or data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16
            return parse_cyclonedx_xml(data, location, distro)
        raise InventoryFormatError(location, "not a CycloneDX BOM (neither JSON nor XML)")


SOURCE = CycloneDxSource()
