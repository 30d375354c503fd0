"""The agent's spool: inventories waiting to be uploaded survive restarts and outages.

Each entry is a gzip file named by its idempotency key; it is written atomically (temp
file, fsync, rename) before any upload is tried and removed only after the server
acknowledged it, so nothing is lost and a retried upload is counted once.
"""

from __future__ import annotations

import gzip
import os
import uuid
from pathlib import Path


class Spool:
    """A folder of pending uploads, oldest first."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def put(self, document: bytes, key: str | None = None) -> str:
        """Store a document; its idempotency key."""
        key = key or uuid.uuid4().hex
        target = self.folder / f"{key}.json.gz"
        partial = self.folder / f".{key}.part"
        with partial.open("wb") as fh:
            fh.write(gzip.compress(document, compresslevel=6))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, target)
        return key

    def pending(self) -> list[tuple[str, Path]]:
        """(key, file) of every waiting upload, oldest first."""
        files = sorted(self.folder.glob("*.json.gz"), key=lambda p: p.stat().st_mtime_ns)
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
