"""Many files or folder listings in one command's output (pure).

A host without a cheaper way (SSH) reads a batch of files, or lists a batch of folders,
with one command that prints ``MARK PATH`` before each one (``commands.read_files``,
``commands.list_dirs``); ``MARK`` is a random token per call, so no file's text can
forge it.  Absent or unreadable entries are simply not printed.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence


def new_mark() -> str:
    """A fresh token to separate the entries of one batch."""
    return f"@@patchpilot-{secrets.token_hex(8)}@@"


def parse_marked(data: bytes, mark: str, paths: Sequence[str], *,
                 added_newline: bool) -> list[bytes | None]:
    """Each of ``paths``' entries in a marked output (None: not printed), in order.

    ``added_newline``: the command printed one newline after each entry (whole files, so
    that the next mark starts a line whatever the file ends with); it is taken off.
    """
    found: dict[str, bytes] = {}
    for chunk in data.split(mark.encode() + b" ")[1:]:
        path, _, content = chunk.partition(b"\n")
        found[path.decode("utf-8", errors="surrogateescape")] = (
            content[:-1] if added_newline and content.endswith(b"\n") else content)
    return [found.get(p) for p in paths]
