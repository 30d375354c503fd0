"""/etc/os-release: which distribution and release a host runs.

Format: https://www.freedesktop.org/software/systemd/man/latest/os-release.html --
shell-compatible ``KEY=value`` lines, values optionally in single or double quotes with
backslash escapes, ``#`` comments.
"""

from __future__ import annotations

import shlex

from patchpilot.errors import InventoryFormatError
from patchpilot.models import OsRelease


def parse_os_release_fields(text: str, location: str = "os-release") -> dict[str, str]:
    """Every ``KEY=value`` of an os-release file, values unquoted.

    A line that is neither blank, a comment nor ``KEY=value`` is an InventoryFormatError
    naming the line: os-release is machine-written and a stray line means a wrong file.
    """
    fields: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.replace("_", "").isalnum():
            raise InventoryFormatError(location, f"not a KEY=value line: {raw[:60]!r}",
                                       line=number)
        try:
            # shlex undoes the shell quoting the spec allows ("...", '...', \" escapes).
            words = shlex.split(value, comments=False, posix=True)
        except ValueError:
            # An unbalanced quote: keep the value without its outer quotes.
            words = [value.strip("\"'")]
        fields[key] = " ".join(words)
    if not fields:
        raise InventoryFormatError(location, "empty os-release file")
    return fields


def parse_os_release(text: str, location: str = "os-release") -> OsRelease:
    """The ``OsRelease`` an os-release file describes.

    ``ID`` defaults to ``linux`` as the spec says.  Debian testing and unstable carry no
    ``VERSION_ID``; their ``VERSION_CODENAME`` (``trixie``) is what names the release.
    Ubuntu's own ``UBUNTU_CODENAME`` stands in when ``VERSION_CODENAME`` is missing.
    """
    fields = parse_os_release_fields(text, location)
    return OsRelease(
        id=fields.get("ID", "linux").lower() or "linux",
        version_id=fields.get("VERSION_ID") or None,
        codename=fields.get("VERSION_CODENAME") or fields.get("UBUNTU_CODENAME") or None,
        pretty_name=fields.get("PRETTY_NAME") or None,
        id_like=tuple(fields.get("ID_LIKE", "").lower().split()),
    )
