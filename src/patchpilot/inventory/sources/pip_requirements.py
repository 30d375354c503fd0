"""pip requirements files: ``requirements.txt``, ``requirements-dev.txt``, …

Format: https://pip.pypa.io/en/stable/reference/requirements-file-format/ -- one PEP 508
requirement (https://peps.python.org/pep-0508/) or pip option per line; ``\\`` at the end
of a line continues it; ``#`` after whitespace starts a comment.

Choices:

* Only a pinned requirement (``name==1.2``, ``name===1.2``, with extras and environment
  markers) says what is installed, so only those become packages.  Everything else that
  names code is kept in Parsed.warnings, never dropped silently: unpinned ranges
  (``>=``, ``~=``, ``==1.*``), bare names, editable installs (``-e``), direct URL
  references (``name @ https://…``), and local paths or URLs to archives.
* ``-r``/``-c`` includes are not followed (a source is pure and never reads files): they
  are reported as warnings so the user can scan those files too.
* Environment markers are kept, not evaluated: the requirement may be installed on the
  asset even when it would not be on the machine reading the file.
* Other pip options (``--index-url``, ``--hash``, ``--no-binary``, …) are not packages.
* A file with only comments and options is genuinely empty (no packages, no warning);
  an empty file is an error (see _lockfiles.decode).  A line that is neither a
  requirement, a path/URL nor an option is an error naming its line.
"""

from __future__ import annotations

import fnmatch
import re

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources._lockfiles import decode, package, unique
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.models import Ecosystem, Package

KIND = "pip requirements file"

# PEP 508 name, then optional [extras], then the rest (specifiers or "@ url").
_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*"
    r"(?:\[(?P<extras>[^\]]*)\])?\s*(?P<rest>.*)$")
_PINNED = re.compile(r"^\(?\s*===?\s*(?P<version>[^\s,;()*]+)\s*\)?$")
_SPECIFIERS = re.compile(
    r"^\(?\s*(?:(?:~=|===|==|!=|<=|>=|<|>)\s*[^\s,;()]+\s*)(?:,\s*(?:~=|===|==|!=|<=|>=|<|>)"
    r"\s*[^\s,;()]+\s*)*\)?$")
# An option that follows a requirement on its line (``--hash=…``) is cut off there.
_TRAILING_OPTION = re.compile(r"\s+--?[A-Za-z]")
_COMMENT = re.compile(r"(^|\s+)#.*$")
_INCLUDES = ("-r", "--requirement", "-c", "--constraint")
_EDITABLE = ("-e", "--editable")
_ARCHIVES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first physical line number, line) with continuations joined and comments cut."""
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        # pip removes comments before joining, so "a \\ # c" is not a continuation.
        line = _COMMENT.sub("", raw)
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        lines.append((start, " ".join(pending).strip()))
        pending = []
    if pending:
        lines.append((start, " ".join(pending).strip()))
    return [(n, line) for n, line in lines if line]


def _option(line: str) -> tuple[str, str]:
    """``("-r", "other.txt")`` from ``-r other.txt``, ``-rother.txt`` or ``--requirement=…``."""
    if line.startswith("--"):
        name, _, value = line.replace("=", " ", 1).partition(" ")
    else:
        name, value = line[:2], line[2:]
    return name, value.strip().lstrip("=").strip()


def _is_path_or_url(line: str) -> bool:
    return ("://" in line or line.startswith((".", "/", "~"))
            or line.lower().endswith(_ARCHIVES))


def parse_requirements(text: str, location: str) -> Parsed:
    """The pinned requirements of a requirements file, and warnings for the rest."""
    packages: list[Package] = []
    warnings: list[str] = []
    for number, line in _logical_lines(text):
        where = f"{location}:{number}"
        if line.startswith("-"):
            option, value = _option(line)
            if option in _INCLUDES:
                warnings.append(f"{where}: included file {value!r} not read; scan it too")
            elif option in _EDITABLE:
                warnings.append(f"{where}: editable requirement {value!r} has no pinned "
                                "version; not checked")
            continue  # --index-url, --hash, --no-binary, …: options, not packages
        requirement = _TRAILING_OPTION.split(line, maxsplit=1)[0]
        requirement = requirement.split(";", 1)[0].strip()  # environment marker
        found = _REQUIREMENT.match(requirement)
        rest = found.group("rest").strip() if found else ""
        if found is None or (rest and not rest.startswith("@")
                             and not _SPECIFIERS.match(rest)):
            if _is_path_or_url(requirement):
                warnings.append(f"{where}: {requirement!r} is a path or URL, no pinned "
                                "version; not checked")
                continue
            raise InventoryFormatError(
                location, f"not a requirement, path or option: {line[:60]!r}", line=number)
        name = found.group("name")
        pinned = _PINNED.match(rest)
        if pinned is None:
            how = "a direct URL reference" if rest.startswith("@") else (
                f"not pinned ({rest})" if rest else "not pinned")
            warnings.append(f"{where}: {name} is {how}; not checked")
            continue
        packages.append(package("PyPI", name, pinned.group("version"), location))
    return Parsed(unique(packages), warnings=tuple(warnings))


class PipRequirementsSource:
    """A pip requirements file (``requirements*.txt``)."""

    name = "pip"
    file_names: tuple[str, ...] = ("requirements*.txt", "*-requirements.txt", "*_requirements.txt")

    def detect(self, name: str, head: bytes) -> bool:
        """By file name only: a ``.txt`` file's content says too little to tell."""
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.file_names)

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Pinned requirements as PyPI packages; ``distro`` is ignored."""
        return parse_requirements(decode(data, location, KIND), location)


SOURCE = PipRequirementsSource()
