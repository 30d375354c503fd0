"""Yarn lock files: ``yarn.lock``, classic (Yarn 1) and Berry (Yarn 2+).

Formats:

* Classic: https://classic.yarnpkg.com/lang/en/docs/yarn-lock/ -- a YAML-like text of its
  own.  An unindented line lists the descriptors a block resolves
  (``debug@^4.1.0, debug@^4.3.1:``), the indented ``version "4.3.4"`` line under it the
  version installed.  Not YAML (no ``:`` after keys), so it is read line by line.
* Berry: real YAML with a ``__metadata`` entry; each block has ``version`` and a
  ``resolution`` descriptor (``debug@npm:4.3.1``) saying where it came from
  (https://yarnpkg.com/protocols).

Choices:

* The package name is the descriptor's: the part before the ``@`` that is not the
  leading one of a scope.  An alias (``string-width-cjs@npm:string-width@4.2.3``) names
  the real package after ``npm:``.
* Registry packages (Berry ``npm:``, classic ranges and ``patch:`` of an npm package)
  are kept; the project and its workspaces (``workspace:``, ``link:``, ``portal:``)
  are its own code and skipped; git, URL, ``file:`` and ``exec:`` packages are not
  registry releases and go to Parsed.warnings.
* A classic file with only its header comment (no dependencies) is genuinely empty; an
  unindented line that is not a ``descriptor:`` block head, a block without a version
  and a file not ending in a newline (Yarn always writes one: the file was cut short)
  are errors naming the line.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources._lockfiles import decode, load_yaml, package, unique
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.models import Ecosystem, Package

KIND = "yarn.lock file"
_BERRY = re.compile(rb"^__metadata:", re.MULTILINE)
_CLASSIC_HEADER = b"# yarn lockfile v1"
_OWN_CODE = ("workspace:", "link:", "portal:")
_NOT_REGISTRY = ("file:", "exec:", "git:", "git+", "github:", "gitlab:", "bitbucket:",
                 "http:", "https:", "ssh:")


def split_descriptor(descriptor: str) -> tuple[str, str]:
    """``("@types/node", "^20.0.0")`` from ``@types/node@^20.0.0``."""
    descriptor = descriptor.strip().strip('"')
    at = descriptor.find("@", 1)  # a scope's own "@" is the first character
    if at < 0:
        return descriptor, ""
    return descriptor[:at], descriptor[at + 1:]


def _registry_name(name: str, spec: str) -> str | None:
    """The registry package a descriptor resolves to, or None when it is not one.

    Raises nothing: the caller decides what a non-registry package means.
    """
    if spec.startswith("npm:"):
        target = spec[4:]
        # "npm:1.2.3" is the plain package; "npm:other@1.2.3" an alias of "other".
        if "@" in target.lstrip("@"):
            return split_descriptor(target)[0]
        return name
    if spec.startswith("patch:"):
        # patch:resolve@npm%3A1.22.8#~builtin<compat/resolve>: the patched npm package.
        inner_name, inner_spec = split_descriptor(unquote(spec[6:].split("#", 1)[0]))
        return _registry_name(inner_name, inner_spec)
    if spec.startswith(_OWN_CODE) or spec.startswith(_NOT_REGISTRY) or "://" in spec:
        return None
    if "/" in spec and not spec.startswith(("<", ">", "=", "^", "~")):
        return None  # "user/repo" is a GitHub shorthand
    return name  # a classic semver range or tag: the registry


def _classic(text: str, location: str) -> Parsed:
    """A Yarn 1 lock file, read block by block."""
    packages: list[Package] = []
    warnings: list[str] = []
    head: tuple[int, str] | None = None
    version: str | None = None

    def finish() -> None:
        if head is None:
            return
        number, key = head
        if version is None:
            raise InventoryFormatError(location, f"block {key!r} without a version",
                                       line=number)
        name, spec = split_descriptor(key.split(",", 1)[0])
        if spec.startswith(_OWN_CODE):
            return
        real = _registry_name(name, spec)
        if real is None:
            warnings.append(f"{location}:{number}: {name}@{spec} is not from the npm "
                            "registry; not checked")
            return
        packages.append(package("npm", real, version, location))

    lines = text.splitlines()
    if not text.endswith("\n"):
        # Yarn always ends the file with a newline; without one the file was cut short,
        # and the last block may have lost its version or dependencies.
        raise InventoryFormatError(location, "truncated: no newline at the end of the file",
                                   line=len(lines))
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            if not line.rstrip().endswith(":"):
                raise InventoryFormatError(
                    location, f"not a 'descriptor:' block head: {line[:60]!r}", line=number)
            finish()
            head, version = (number, line.rstrip()[:-1]), None
        elif head is None:
            raise InventoryFormatError(location, "indented line outside a block", line=number)
        elif line.startswith("  ") and not line.startswith("   "):
            key, _, value = line.strip().partition(" ")
            if key == "version":
                value = value.strip()
                if value.startswith('"') and (len(value) < 2 or not value.endswith('"')):
                    raise InventoryFormatError(location, "unterminated string", line=number)
                version = value.strip('"') or None
    finish()
    return Parsed(unique(packages), warnings=tuple(warnings))


def _berry(data: bytes, location: str) -> Parsed:
    """A Yarn 2+ lock file: YAML, one block per resolution."""
    document: Any = load_yaml(data, location, KIND)
    if not isinstance(document, dict):
        raise InventoryFormatError(location, f"not a mapping, not a {KIND}")
    packages: list[Package] = []
    warnings: list[str] = []
    for key, entry in document.items():
        if key == "__metadata":
            continue
        if not isinstance(entry, dict):
            raise InventoryFormatError(location, f"entry {key!r} is not a mapping")
        resolution = entry.get("resolution")
        version = entry.get("version")
        if not isinstance(resolution, str) or version is None:
            raise InventoryFormatError(
                location, f"entry {key!r} without a 'resolution' and 'version'")
        name, spec = split_descriptor(resolution)
        if spec.startswith(_OWN_CODE):
            continue
        real = _registry_name(name, spec)
        if real is None:
            warnings.append(f"{location}: {resolution} is not from the npm registry; "
                            "not checked")
            continue
        packages.append(package("npm", real, str(version), location))
    return Parsed(unique(packages), warnings=tuple(warnings))


def parse_yarn_lock(data: bytes, location: str) -> Parsed:
    """The installed packages of a yarn.lock of either generation."""
    if _BERRY.search(data):
        return _berry(data, location)
    text = decode(data, location, KIND)
    return _classic(text, location)


class YarnLockSource:
    """A Yarn lock file, classic or Berry."""

    name = "yarn"
    file_names: tuple[str, ...] = ("yarn.lock",)

    def detect(self, name: str, head: bytes) -> bool:
        """By its fixed file name, or a classic file's ``# yarn lockfile v1`` header."""
        return name == "yarn.lock" or _CLASSIC_HEADER in head[:200]

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Installed packages as npm packages; ``distro`` is ignored."""
        return parse_yarn_lock(data, location)


SOURCE = YarnLockSource()
