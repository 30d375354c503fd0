"""Go module files: ``go.mod``.

Format: https://go.dev/ref/mod#go-mod-file -- one directive per line or a parenthesised
block of them; ``//`` starts a comment.  ``require`` lists module paths and versions,
``replace`` swaps a module (or one version of it) for another module or a local folder.

Choices:

* go.mod, not go.sum, is read: since Go 1.17 go.mod lists every module the build needs
  (``// indirect`` ones too, https://go.dev/ref/mod#graph-pruning), while go.sum also
  holds hashes of modules only consulted during resolution, which would be false
  positives.  ``// indirect`` requirements are kept.
* ``replace`` is applied: a module replaced by another module is reported as that one,
  at the replacement's version; one replaced by a local folder (``=> ../fork``) is the
  user's own code and goes to Parsed.warnings.  ``exclude`` and ``retract`` do not change
  what is required and are ignored.
* The ``go`` and ``toolchain`` lines are skipped: the standard library is judged from the
  Go toolchain that built the binary, not from the minimum the module declares.
* Versions are reported without the leading ``v`` (``1.2.3``), as OSV's Go advisories
  write their ranges; the purl keeps the module's own ``v1.2.3``.
* A go.mod without ``require`` is genuinely empty; one without a ``module`` line is not a
  go.mod (the go command refuses it too).  An unknown directive, a ``require`` without a
  version or a malformed ``replace`` is never fatal: a warning names its line, and the
  rest of the file is read.
* Recognised by name (``go.mod``) or by content for a renamed copy: every top-level line
  of the first 8 KiB is a go.mod directive, and there is a ``module`` line (a ``.mod``
  file only needs a ``module`` or ``require`` line).
"""

from __future__ import annotations

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources._lockfiles import decode, package, unique
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.models import Ecosystem, Package

KIND = "go.mod file"
DIRECTIVES = frozenset({"module", "go", "toolchain", "godebug", "require", "replace",
                        "exclude", "retract", "tool", "ignore"})


def _lines(text: str, location: str, warnings: list[str] | None = None
           ) -> list[tuple[int, str, list[str]]]:
    """(line number, directive, arguments) of every directive, blocks flattened.

    An unknown directive is an error, or -- when ``warnings`` is given -- a warning."""
    found: list[tuple[int, str, list[str]]] = []
    block: str | None = None
    opened = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("//", 1)[0].split()
        if not words:
            continue
        if block is not None:
            if words == [")"]:
                block = None
            else:
                found.append((number, block, [w.strip('"`') for w in words]))
            continue
        directive = words[0]
        if directive not in DIRECTIVES:
            if warnings is None:
                raise InventoryFormatError(
                    location, f"unknown go.mod directive {directive!r}", line=number)
            warnings.append(f"{location}:{number}: unknown go.mod directive "
                            f"{directive[:40]!r}; skipped")
            continue
        if words[1:] == ["("]:
            block, opened = directive, number
        else:
            found.append((number, directive, [w.strip('"`') for w in words[1:]]))
    if block is not None:
        raise InventoryFormatError(
            location, f"{block} block not closed (truncated file?)", line=opened)
    return found


def parse_go_mod(text: str, location: str) -> Parsed:
    """The required modules of a go.mod, with its replace directives applied."""
    warnings: list[str] = []
    directives = _lines(text, location, warnings)
    if not any(d == "module" for _, d, _ in directives):
        raise InventoryFormatError(location, f"no module directive, not a {KIND}")
    required: list[tuple[int, str, str]] = []
    # (old path, old version or "") -> (new path, new version or "" for a local folder)
    replaces: dict[tuple[str, str], tuple[str, str]] = {}
    for number, directive, args in directives:
        if directive == "require":
            if len(args) != 2:
                warnings.append(f"{location}:{number}: require needs a module path and a "
                                "version; skipped")
                continue
            required.append((number, args[0], args[1]))
        elif directive == "replace":
            arrow = args.index("=>") if "=>" in args else -1
            old, new = args[:arrow], args[arrow + 1:]
            if arrow < 0 or len(old) not in (1, 2) or len(new) not in (1, 2):
                why = "without '=>'" if arrow < 0 else "needs 'path [version] => path [version]'"
                warnings.append(f"{location}:{number}: replace {why}; not applied")
                continue
            replaces[(old[0], old[1] if len(old) == 2 else "")] = (
                new[0], new[1] if len(new) == 2 else "")
    packages: list[Package] = []
    for number, path, version in required:
        # A replacement of this very version wins over one of every version.
        target = replaces.get((path, version)) or replaces.get((path, ""))
        if target is not None:
            new_path, new_version = target
            if not new_version:
                warnings.append(f"{location}:{number}: {path} is replaced by the local "
                                f"folder {new_path}; not checked")
                continue
            path, version = new_path, new_version
        packages.append(package("Go", path, version.removeprefix("v"), location,
                                purl_version=version))
    return Parsed(unique(packages), warnings=tuple(warnings))


def looks_like_go_mod(head: bytes, *, lenient: bool = False) -> bool:
    """Whether the first bytes of a file read as a go.mod: only directives at top level,
    and a ``module`` line (``lenient``: a ``module`` or ``require`` line)."""
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    lines = text.splitlines()
    if len(head) >= 8192 and lines:
        lines = lines[:-1]  # the last line may be cut in the middle
    seen: set[str] = set()
    in_block = False
    for raw in lines:
        words = raw.split("//", 1)[0].split()
        if not words:
            continue
        if in_block:
            in_block = words != [")"]
            continue
        if words[0] not in DIRECTIVES or len(words) < 2:
            return False
        seen.add(words[0])
        in_block = words[1:] == ["("]
    return "module" in seen or (lenient and "require" in seen)


class GoModSource:
    """A Go module file (``go.mod``)."""

    name = "gomod"
    file_names: tuple[str, ...] = ("go.mod",)

    def detect(self, name: str, head: bytes) -> bool:
        """By its file name, or by content (see the module's choices)."""
        return name == "go.mod" or looks_like_go_mod(head, lenient=name.endswith(".mod"))

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Required modules as Go packages; ``distro`` is ignored."""
        return parse_go_mod(decode(data, location, KIND), location)


SOURCE = GoModSource()
