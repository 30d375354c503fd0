"""Maven project files: ``pom.xml``.

Format: https://maven.apache.org/pom.html -- XML in the POM 4.0.0 namespace (or none);
``<dependencies>`` lists ``<dependency>`` coordinates, ``<dependencyManagement>`` supplies
versions for dependencies that omit theirs, ``<properties>`` defines ``${name}``.

Choices:

* The XML is read with defusedxml, which refuses DTDs and entity declarations: a
  ``pom.xml`` comes from the scanned project, and expanding its entities would let it
  read local files or exhaust memory (billion laughs).  Such a file is an error.
* A pom is not a lock file: only the dependencies it pins itself are reported, named
  ``groupId:artifactId`` as OSV's Maven ecosystem does.  A version taken from this pom's
  ``<dependencyManagement>`` counts; one that would come from a parent pom or an imported
  BOM cannot be known without Maven and goes to Parsed.warnings, as do unresolved
  ``${properties}`` and version ranges (``[1.0,2.0)``).
* ``${…}`` is resolved from ``<properties>`` (recursively) and the project's own
  coordinates (``${project.version}``, ``${project.parent.version}``, …).
* Every scope is kept (``test`` and ``provided`` too): they are on some machine's class
  path.  ``<build><plugins>`` are not read.  The dependencies of a ``<profile>`` active by
  default (``<activeByDefault>true``) are read as the project's own; those of another
  profile are named in a warning (whether it is active depends on the build).
* A pom without ``<dependencies>`` (a parent or aggregator pom) is genuinely empty; XML
  whose root is not ``<project>`` is not a pom.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources._lockfiles import decode, package, unique
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.models import Ecosystem, Package

KIND = "Maven pom.xml file"
_PROPERTY = re.compile(r"\$\{([^}]+)\}")
_MAX_DEPTH = 10  # properties referring to properties; more is a loop


def _local(tag: str) -> str:
    """``dependency`` from ``{http://maven.apache.org/POM/4.0.0}dependency``."""
    return tag.rpartition("}")[2]


def _child(element: Element | None, *path: str) -> Element | None:
    for name in path:
        if element is None:
            return None
        element = next((c for c in element if _local(c.tag) == name), None)
    return element


def _text(element: Element | None, *path: str) -> str:
    found = _child(element, *path)
    return (found.text or "").strip() if found is not None else ""


def _properties(project: Element) -> dict[str, str]:
    """``<properties>`` and the project's own coordinates, by ``${…}`` name."""
    declared = _child(project, "properties")
    properties = {_local(p.tag): (p.text or "").strip()
                  for p in (declared if declared is not None else ())}
    for key in ("groupId", "artifactId", "version"):
        value = _text(project, key) or _text(project, "parent", key)
        if value:
            properties[f"project.{key}"] = properties[f"pom.{key}"] = value
        parent = _text(project, "parent", key)
        if parent:
            properties[f"project.parent.{key}"] = parent
    return properties


def _resolve(value: str, properties: dict[str, str]) -> str | None:
    """``value`` with every ``${name}`` replaced, or None when one is not defined here."""
    for _ in range(_MAX_DEPTH):
        if "${" not in value:
            return value
        missing = [n for n in _PROPERTY.findall(value) if n not in properties]
        if missing:
            return None
        value = _PROPERTY.sub(lambda m: properties[m.group(1)], value)
    return None


def _children(parent: Element | None, name: str) -> list[Element]:
    return [c for c in (parent if parent is not None else ()) if _local(c.tag) == name]


def _dependencies(parent: Element | None) -> list[Element]:
    container = _child(parent, "dependencies")
    if container is None:
        return []
    return [d for d in container if _local(d.tag) == "dependency"]


def parse_pom(data: bytes, location: str) -> Parsed:
    """The dependencies a pom.xml pins, and warnings for those it does not."""
    if b"\x00" in data or not data.strip():
        decode(data, location, KIND)  # raises the "binary data" / "empty" error
    try:
        # Bytes, not text: the XML declaration may name another encoding (ISO-8859-1).
        project = DefusedET.fromstring(data)
    except DefusedXmlException as exc:
        raise InventoryFormatError(
            location, f"DTDs and entities are refused in a pom.xml ({type(exc).__name__})"
        ) from None
    except ParseError as exc:
        line = exc.position[0] if exc.position else None
        # str(exc) ends with ": line N, column M"; the line goes in its own field.
        detail = str(exc).rsplit(": line ", 1)[0]
        raise InventoryFormatError(location, f"invalid XML: {detail}", line=line) from None
    if _local(project.tag) != "project":
        raise InventoryFormatError(location, f"root element <{_local(project.tag)}>, not "
                                             f"<project>: not a {KIND}")
    properties = _properties(project)
    managed: dict[str, str] = {}
    for dependency in _dependencies(_child(project, "dependencyManagement")):
        version = _resolve(_text(dependency, "version"), properties)
        coordinates = _coordinates(dependency, properties)
        if coordinates and version:
            managed[coordinates] = version
    packages: list[Package] = []
    warnings: list[str] = []
    dependencies = _dependencies(project)
    for profile in _children(_child(project, "profiles"), "profile"):
        listed = _dependencies(profile)
        if _text(profile, "activation", "activeByDefault").lower() == "true":
            dependencies += listed
        elif listed:
            plural = "y" if len(listed) == 1 else "ies"
            warnings.append(f"{location}: profile {_text(profile, 'id') or '(no id)'} is not "
                            f"active by default: its {len(listed)} dependenc{plural} not "
                            "checked")
    for index, dependency in enumerate(dependencies, start=1):
        coordinates = _coordinates(dependency, properties)
        if coordinates is None:
            warnings.append(
                f"{location}: dependency number {index} without a groupId and artifactId "
                "(or with an undefined ${property} in them); skipped")
            continue
        written = _text(dependency, "version")
        if not written:
            version = managed.get(coordinates)
            if version is None:
                warnings.append(f"{location}: {coordinates} takes its version from a parent "
                                "pom or BOM; not checked (scan the effective pom)")
                continue
        else:
            resolved = _resolve(written, properties)
            if resolved is None:
                warnings.append(f"{location}: {coordinates} version {written} uses a "
                                "property not defined in this pom; not checked")
                continue
            version = resolved
        if version.startswith(("[", "(")):
            warnings.append(f"{location}: {coordinates} has the version range {version}, "
                            "not one version; not checked")
            continue
        packages.append(package("Maven", coordinates, version, location))
    return Parsed(unique(packages), warnings=tuple(warnings))


def _coordinates(dependency: Element, properties: dict[str, str]) -> str | None:
    group = _resolve(_text(dependency, "groupId"), properties)
    artifact = _resolve(_text(dependency, "artifactId"), properties)
    return f"{group}:{artifact}" if group and artifact else None


# A renamed pom (``*.xml``): the root element is <project> (after the XML declaration and
# comments) and Maven's namespace or a Maven element follows; an Ant build.xml, whose root
# is <project> too, has none of these.
_ROOT_PROJECT = re.compile(rb"^(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*"
                           rb"<project[\s>]", re.DOTALL)
_POM_MARKER = re.compile(rb"maven\.apache\.org/POM/|<modelVersion>|<artifactId>|<dependencies>")


class MavenPomSource:
    """A Maven project file (``pom.xml``)."""

    name = "maven"
    file_names: tuple[str, ...] = ("pom.xml",)

    def detect(self, name: str, head: bytes) -> bool:
        """By its fixed file name, a ``.pom`` file (a published pom) with ``<project``, or
        a renamed pom: a root <project> with Maven's namespace or elements."""
        return name == "pom.xml" or (name.endswith(".pom") and b"<project" in head) or (
            _ROOT_PROJECT.match(head) is not None and _POM_MARKER.search(head) is not None)

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Pinned dependencies as Maven packages; ``distro`` is ignored."""
        return parse_pom(data, location)


SOURCE = MavenPomSource()
