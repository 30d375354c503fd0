"""The agent's spool: inventories waiting to be uploaded survive restarts and outages.

Each entry is a gzip file named by its idempotency key; it is written atomically (temp
file, fsync, rename) before any upload is tried and removed only after the server
acknowledged it, so nothing is lost and a retried upload is counted once.

A full disk never costs what is already spooled: the new entry's partial file is removed
and :class:`SpoolFullError` says that the newest inventory was not kept, while the older
entries stay whole and are uploaded, oldest first, once the server answers again.
"""

from __future__ import annotations

import errno
import gzip
import os
import time
import uuid
from pathlib import Path

from patchpilot.errors import PatchPilotError

# The file system cannot take more: no space left, or the user's quota reached.
_FULL = (errno.ENOSPC, errno.EDQUOT)


class SpoolFullError(PatchPilotError):
    """The spool's file system has no room for a new inventory; the older ones are kept."""


class Spool:
    """A folder of pending uploads, oldest first."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        # A process killed while writing leaves its temp file: it was never renamed into
        # the spool (so never uploaded), but it holds disk space the next put needs.
        for stale in folder.glob(".*.part"):
            stale.unlink(missing_ok=True)

    def put(self, document: bytes, key: str | None = None) -> str:
        """Store a document; its idempotency key.

        Raises SpoolFullError when the file system is full (or the quota reached): the
        partial file is removed and every entry already spooled is left as it was.
        """
        # Keys sort in the order they were made (hex nanoseconds first), so entries written
        # within one tick of the file system's clock still upload in order.
        key = key or f"{time.time_ns():016x}-{uuid.uuid4().hex[:16]}"
        target = self.folder / f"{key}.json.gz"
        partial = self.folder / f".{key}.part"
        blob = gzip.compress(document, compresslevel=6)
        try:
            with partial.open("wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(partial, target)
        except OSError as exc:
            # Never leave a partial file behind: it would hold space and, renamed by hand
            # or by a later version, fail to upload as a truncated gzip.
            partial.unlink(missing_ok=True)
            if exc.errno in _FULL:
                raise SpoolFullError(
                    f"spool {self.folder} is full ({os.strerror(exc.errno)}): the newest "
                    f"inventory ({len(blob)} bytes compressed) was not spooled; the "
                    f"{len(self.pending())} older one(s) are kept for upload") from exc
            raise
        return key

    def pending(self) -> list[tuple[str, Path]]:
        """(key, file) of every waiting upload, oldest first."""
        files = sorted(self.folder.glob("*.json.gz"),
                       key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [(p.name.removesuffix(".json.gz"), p) for p in files]

    def done(self, key: str) -> None:
        """Forget an acknowledged upload."""
        (self.folder / f"{key}.json.gz").unlink(missing_ok=True)

    def prune(self, keep: int = 50) -> int:
        """Drop the oldest entries beyond ``keep`` (a long outage must not fill the disk;
        newer inventories supersede older ones); how many were dropped."""
        entries = self.pending()
        excess = entries[:-keep] if len(entries) > keep else []
        for key, _ in excess:
            self.done(key)
        return len(excess)
