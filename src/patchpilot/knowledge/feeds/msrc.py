"""Microsoft Security Response Center: the monthly CVRF documents of the Security Update
Guide API, one :class:`MsrcDocument` per file.

Offline, ``--from DIR`` loads files named as the API names them (``cvrfDocument-2026-Mar.xml``
as mirrors save them, or ``2026-Mar.xml``); each file is its own source, so each month is
written in its own transaction and replaces that month's rows.  Online, the month list
comes from ``/cvrf/v3.0/updates`` and each month changed since the last update is
downloaded as XML from ``/cvrf/v3.0/cvrf/{YYYY-Mon}``.  Parsing is in :mod:`._cvrf`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx

from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.feeds._common import JsonObject, load_json
from patchpilot.knowledge.feeds._cvrf import MsrcDocument, parse_cvrf
from patchpilot.knowledge.feeds.interface import RecordKind

API = "https://api.msrc.microsoft.com/cvrf/v3.0"
_FILE_NAME = re.compile(r"(?:cvrfDocument-)?\d{4}-[A-Z][a-z]{2}\.xml", re.IGNORECASE)
_CVRF_ROOT = re.compile(rb"<(?:\w+:)?cvrfdoc\b")
_MONTH_ID = re.compile(r"\d{4}-[A-Z][a-z]{2}")


class MsrcFeed:
    """MSRC CVRF 1.2 XML documents, one month per file."""

    name = "msrc"
    kind = RecordKind.MSRC
    priority = 0
    source_per_file = True  # one month, one transaction

    def __init__(self, api: str = API) -> None:
        self.api = api.rstrip("/")

    def claims(self, path: Path, head: bytes) -> bool:
        """An XML file named like a month whose root element is ``cvrfdoc``."""
        return (_FILE_NAME.fullmatch(path.name) is not None
                and _CVRF_ROOT.search(head) is not None)

    def read(self, path: Path) -> Iterator[MsrcDocument]:
        """The one document in ``path``."""
        yield parse_cvrf(path)

    def months(self, client: httpx.Client, since: str | None) -> list[str]:
        """Month ids (``2026-Mar``) whose document changed after ``since`` (all if None)."""
        url = f"{self.api}/updates"
        try:
            response = client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise FeedDownloadError(f"{url}: {exc}") from exc
        if response.status_code != 200:
            raise FeedDownloadError(f"{url}: HTTP {response.status_code}")
        try:
            doc = JsonObject(load_json(url, response.content), url, "")
            months = []
            for item in doc.children("value", required=True):
                month = item.text("ID", required=True) or ""
                changed = item.text("CurrentReleaseDate") or ""
                if _MONTH_ID.fullmatch(month) and (since is None or changed >= since[:19]):
                    months.append(month)
        except FeedError as exc:
            raise FeedDownloadError(f"{url}: {exc.detail}") from exc
        return months

    def fetch(self, client: httpx.Client, dest: Path, since: str | None) -> list[Path]:
        """Download the months changed since ``since`` as XML; each is checked by parsing
        before it replaces the previous copy, so a bad answer never reaches ``read``."""
        dest.mkdir(parents=True, exist_ok=True)
        written = []
        for month in self.months(client, since):
            url = f"{self.api}/cvrf/{month}"
            try:
                response = client.get(url, headers={"Accept": "application/xml"})
            except httpx.HTTPError as exc:
                raise FeedDownloadError(f"{url}: {exc}") from exc
            if response.status_code != 200:
                raise FeedDownloadError(f"{url}: HTTP {response.status_code}")
            target = dest / f"cvrfDocument-{month}.xml"
            partial = target.with_name(target.name + ".part")
            partial.write_bytes(response.content)
            try:
                parse_cvrf(partial)
            except FeedError as exc:
                partial.unlink(missing_ok=True)
                raise FeedDownloadError(f"{url}: {exc.detail}") from exc
            partial.replace(target)
            written.append(target)
        return written


FEED = MsrcFeed()
