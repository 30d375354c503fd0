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
  requirement, a path/URL nor an option (``==2.3.4`` alone, a stray word, a broken
  specifier) is never fatal: it is skipped with a warning naming ``file:line``, and so is
  an option pip does not know.  Only a file of which no line is readable is refused.
* Recognised by name (``requirements*.txt``, ``*-requirements.txt``, …) or by content,
  for ``base.txt``, ``prod-reqs.txt`` or a renamed copy: every line of the first 8 KiB is
  a requirement, a path/URL or a pip option, and at least one is a requirement with a
  version specifier or a pip option (a list of bare words is not claimed).
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
_OPTION_NAME = re.compile(r"(?:^|\s)(--?[A-Za-z][\w-]*)")
_COMMENT = re.compile(r"(^|\s+)#.*$")
_INCLUDES = ("-r", "--requirement", "-c", "--constraint")
_EDITABLE = ("-e", "--editable")
# The options pip accepts in a requirements file
# (https://pip.pypa.io/en/stable/reference/requirements-file-format/#supported-options).
_KNOWN_OPTIONS = frozenset({
    *_INCLUDES, *_EDITABLE, "-i", "--index-url", "--extra-index-url", "--no-index",
    "-f", "--find-links", "--pre", "--trusted-host", "--use-feature", "--prefer-binary",
    "--require-hashes", "--only-binary", "--no-binary", "--config-settings",
    "--global-option", "--hash", "--install-option"})
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


def _requirement(line: str) -> tuple[str, str] | None:
    """``(name, rest)`` of a requirement line (``rest``: its specifiers or ``@ url``), or
    None when the line is not a PEP 508 requirement."""
    requirement = _TRAILING_OPTION.split(line, maxsplit=1)[0]
    requirement = requirement.split(";", 1)[0].strip()  # environment marker
    found = _REQUIREMENT.match(requirement)
    if found is None:
        return None
    rest = found.group("rest").strip()
    if rest and not rest.startswith("@") and not _SPECIFIERS.match(rest):
        return None
    return found.group("name"), rest


def parse_requirements(text: str, location: str) -> Parsed:
    """The pinned requirements of a requirements file, and warnings for the rest."""
    packages: list[Package] = []
    warnings: list[str] = []
    unreadable: list[tuple[int, str]] = []
    lines = _logical_lines(text)
    for number, line in lines:
        where = f"{location}:{number}"
        if line.startswith("-"):
            option, value = _option(line)
            if option in _INCLUDES:
                warnings.append(f"{where}: included file {value!r} not read; scan it too")
            elif option in _EDITABLE:
                warnings.append(f"{where}: editable requirement {value!r} has no pinned "
                                "version; not checked")
            elif option not in _KNOWN_OPTIONS:
                warnings.append(f"{where}: unknown pip option {option!r}; ignored")
            continue  # --index-url, --hash, --no-binary, …: options, not packages
        found = _requirement(line)
        if found is None:
            requirement = _TRAILING_OPTION.split(line, maxsplit=1)[0].split(";", 1)[0].strip()
            if _is_path_or_url(requirement):
                warnings.append(f"{where}: {requirement!r} is a path or URL, no pinned "
                                "version; not checked")
                continue
            unreadable.append((number, line))
            warnings.append(f"{where}: not a requirement, path or option: {line[:60]!r}; "
                            "skipped")
            continue
        name, rest = found
        trailing = _TRAILING_OPTION.search(line)
        if trailing is not None:
            unknown = sorted({o for o in _OPTION_NAME.findall(line[trailing.start():])
                              if o.split("=", 1)[0] not in _KNOWN_OPTIONS})
            if unknown:
                warnings.append(f"{where}: unknown pip option {', '.join(unknown)} after "
                                f"{name}; ignored")
        pinned = _PINNED.match(rest)
        if pinned is None:
            how = "a direct URL reference" if rest.startswith("@") else (
                f"not pinned ({rest})" if rest else "not pinned")
            warnings.append(f"{where}: {name} is {how}; not checked")
            continue
        packages.append(package("PyPI", name, pinned.group("version"), location))
    if unreadable and len(unreadable) == len(lines):
        number, line = unreadable[0]
        raise InventoryFormatError(
            location, f"not a requirement, path or option: {line[:60]!r}", line=number)
    return Parsed(unique(packages), warnings=tuple(warnings))


def looks_like_requirements(head: bytes) -> bool:
    """Whether the first bytes of a file read as a pip requirements file (see above)."""
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    lines = _logical_lines(text)
    if len(head) >= 8192 and lines:
        lines = lines[:-1]  # the last line may be cut in the middle
    telling = False
    for _, line in lines:
        if line.startswith("-"):
            option, _ = _option(line)
            if option not in _KNOWN_OPTIONS:
                return False
            telling = True
            continue
        found = _requirement(line)
        if found is None:
            requirement = _TRAILING_OPTION.split(line, maxsplit=1)[0].split(";", 1)[0]
            if not _is_path_or_url(requirement.strip()):
                return False
            continue
        telling = telling or bool(found[1])
    return telling


class PipRequirementsSource:
    """A pip requirements file (``requirements*.txt``)."""

    name = "pip"
    file_names: tuple[str, ...] = ("requirements*.txt", "*-requirements.txt", "*_requirements.txt")

    def detect(self, name: str, head: bytes) -> bool:
        """By file name, or by content (``looks_like_requirements``)."""
        return (any(fnmatch.fnmatchcase(name, pattern) for pattern in self.file_names)
                or looks_like_requirements(head))

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Pinned requirements as PyPI packages; ``distro`` is ignored."""
        return parse_requirements(decode(data, location, KIND), location)


SOURCE = PipRequirementsSource()
