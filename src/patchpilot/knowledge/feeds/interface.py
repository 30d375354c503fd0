"""The contract every feed module implements, and the records feeds produce.

A feed is one module with a module-level object satisfying :class:`Feed`; it is listed in
``knowledge.feeds.registry.FEEDS``.  Reading is separate from downloading: ``read`` is a
pure transformation of a local file (the same code serves ``--from DIR`` and the files
``fetch`` downloaded), so every transformer is tested on real files offline.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import httpx

from patchpilot.knowledge.feeds._cvrf import MsrcDocument
from patchpilot.knowledge.feeds._jvn import JvnAlert, JvnVuln
from patchpilot.models import Advisory, CveRecord, EpssScore, KevEntry

Record = Advisory | CveRecord | KevEntry | EpssScore | MsrcDocument | JvnVuln | JvnAlert


class RecordKind(StrEnum):
    """Which table a feed's records go to."""

    ADVISORY = "advisory"
    CVE = "cve"
    KEV = "kev"
    EPSS = "epss"
    MSRC = "msrc"  # whole monthly documents (products, vulnerabilities, fixes)
    JVN = "jvn"  # JVN entries (advisories, Japanese text per CVE) and MyJVN alerts


class Feed(Protocol):
    """A vulnerability data source: claims its files, reads them, downloads them."""

    name: str  # short, stable: "osv", "debian-tracker", "alpine-secdb", "nvd", "cve5", …
    kind: RecordKind
    priority: int  # higher wins when two sources judge the same package (distro > derived)

    def claims(self, path: Path, head: bytes) -> bool:
        """Whether ``path`` (whose first 4 KiB are ``head``) is in this feed's format."""
        ...

    def read(self, path: Path) -> Iterator[Record]:
        """Every record in one file (JSON, YAML, CSV, gzip or zip); raises FeedError."""
        ...

    def fetch(self, client: httpx.Client, dest: Path, since: str | None) -> list[Path]:
        """Download the official source into ``dest``; return the files to ``read``.

        ``since`` is the cursor the previous update stored (ISO time of the last
        modification seen), for sources that can be fetched incrementally.
        """
        ...
