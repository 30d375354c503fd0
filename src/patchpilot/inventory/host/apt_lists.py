"""apt's list files as ``commands.APT_INDEX`` hands them over (pure).

The command decompresses one Packages index on the host and keeps only the lines the
index parser reads (``Package``, ``Version``, ``Architecture``, ``Source`` and the blank
lines between stanzas): a tenth of the text, so a tenth of the bytes over SSH and of the
parsing (bookworm-security: 2.5 MB -> 0.28 MB).  It ends with a marker line, so that a
missing decompressor or filter (no output at all) is told from an empty index.
"""

from __future__ import annotations

INDEX_END = "@@patchpilot index end@@"
INDEX_FAILED = "@@patchpilot index failed@@"


def index_text(output: str) -> str | None:
    """The filtered index text in ``commands.APT_INDEX``'s output; None when the index
    could not be decompressed (the command printed the failure marker, or stopped before
    its end marker)."""
    body, sep, _ = output.rpartition(INDEX_END)
    if not sep or INDEX_FAILED in body:
        return None
    return body
