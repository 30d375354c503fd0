"""Helpers shared by the language lock-file sources (not a source itself).

Every lock-file source decodes bytes, loads JSON / TOML / YAML and turns a parser's error
into an InventoryFormatError naming the file and line, then builds Package values with a
purl.  Keeping that here means each source module is only its format's rules.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from typing import Any

import yaml
from packageurl import PackageURL

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.purls import purl_for
from patchpilot.models import Ecosystem, Package

# OSV ecosystem -> purl type (https://github.com/package-url/purl-spec, PURL-TYPES.rst).
# purls.purl_for covers PyPI and the distributions; the other language types are built
# here until it knows them (it is asked first, so its answer wins once it does).
_PURL_TYPES = {"npm": "npm", "Go": "golang", "Maven": "maven", "crates.io": "cargo"}


def language_purl(ecosystem: str, name: str, version: str) -> str | None:
    """The purl of a language package: ``pkg:npm/%40types/node@20.11.0``, ``pkg:maven/g/a@v``.

    npm scopes, Go module paths and Maven groupIds go in the purl namespace, as the purl
    spec says for those types.
    """
    known = purl_for(ecosystem, name, version)
    if known is not None:
        return known
    purl_type = _PURL_TYPES.get(ecosystem)
    if purl_type is None:
        return None
    namespace: str | None = None
    if purl_type == "maven":
        namespace, _, name = name.partition(":")
    elif "/" in name:
        # npm "@scope/name" and Go "github.com/org/repo": everything before the last "/".
        namespace, _, name = name.rpartition("/")
    return PackageURL(type=purl_type, namespace=namespace, name=name,
                      version=version).to_string()


def package(ecosystem: str, name: str, version: str, location: str,
            *, purl_version: str | None = None) -> Package:
    """A language package read from lock file ``location``.

    ``purl_version`` is for Go, whose purl keeps the ``v`` the Package version drops.
    """
    return Package(
        ecosystem=Ecosystem(ecosystem), name=name, version=version,
        purl=language_purl(ecosystem, name, purl_version or version), location=location)


def unique(packages: Iterable[Package]) -> list[Package]:
    """``packages`` without repeats, first seen first.

    A lock file lists the same name and version more than once (nested node_modules copies,
    pnpm peer variants, Pipfile default and develop); a finding is about the pair.
    """
    return list(dict.fromkeys(packages))


def decode(data: bytes, location: str, kind: str) -> str:
    """The text of a lock file; empty, binary or non-UTF-8 input is an InventoryFormatError.

    An empty file is an error rather than "no packages": every tool here writes at least
    a header or a metadata table, so an empty file is truncated or the wrong file, and an
    empty inventory would close every open finding of the asset as fixed.
    """
    if b"\x00" in data:
        raise InventoryFormatError(location, f"binary data, not a {kind}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InventoryFormatError(
            location, f"not UTF-8 text (byte {exc.start}), not a {kind}") from None
    if not text.strip():
        raise InventoryFormatError(location, f"empty {kind}")
    return text


def load_json(data: bytes, location: str, kind: str) -> dict[str, Any]:
    """The JSON object of a lock file, or InventoryFormatError with the line of the error."""
    text = decode(data, location, kind)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InventoryFormatError(location, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(document, dict):
        raise InventoryFormatError(location, f"{kind}: the JSON document is not an object")
    return document


def load_toml(data: bytes, location: str, kind: str) -> dict[str, Any]:
    """The TOML document of a lock file, or InventoryFormatError with the line of the error."""
    text = decode(data, location, kind)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line 3, column 7)" or "(at end of document)" but keeps no
        # attribute for it.
        message = str(exc)
        line = None
        if message.endswith(" (at end of document)"):
            message = message.removesuffix(" (at end of document)")
            line = len(text.splitlines()) or None
        elif "(at line " in message:
            message, _, where = message.rpartition(" (at line ")
            number = where.split(",", 1)[0]
            line = int(number) if number.isdigit() else None
        raise InventoryFormatError(location, f"invalid TOML: {message}", line=line) from None


def load_yaml(data: bytes, location: str, kind: str) -> Any:
    """The YAML document of a lock file (safe loader: no tags, no objects)."""
    text = decode(data, location, kind)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InventoryFormatError(
            location, f"invalid YAML: {problem}",
            line=mark.line + 1 if mark is not None else None) from None


def table_list(document: dict[str, Any], key: str, location: str, kind: str
               ) -> list[dict[str, Any]]:
    """``document[key]`` as a list of tables (TOML ``[[package]]``), empty when absent."""
    value = document.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InventoryFormatError(location, f"{kind}: '{key}' is not an array of tables")
    return value


def required_str(entry: dict[str, Any], key: str, location: str, what: str) -> str:
    """``entry[key]`` as a non-empty string, else InventoryFormatError naming ``what``."""
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InventoryFormatError(location, f"{what} without a '{key}'")
    return value.strip()
