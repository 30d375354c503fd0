"""JVN iPedia / MyJVN: Japan's vulnerability database, in Japanese, with CPE-named affected
products (NEC, Yamaha, Buffalo, Planex, Fujitsu… equipment whose advisories appear nowhere
else) -- as :class:`~._jvn.JvnVuln` and :class:`~._jvn.JvnAlert` records (parsing in
:mod:`._jvn`).

Offline, ``--from DIR`` loads the XML the MyJVN API and data feeds publish (file names are
free; the root element decides): the yearly ``jvndb_detail_YYYY.xml`` data feed and
``getVulnDetailInfo`` answers (VULDEF 3.2), ``jvndb_YYYY.rdf`` and ``getVulnOverviewList``
answers (JVNDB RSS: overviews without version phrases; a detail document of the same
JVNDB id wins over them), and ``getAlertList`` answers (注意警戒情報).  All the JVN files of a
folder are one source, written in one transaction (``store.write_jvn``).

Online, :meth:`JvnFeed.fetch` is incremental by date: ``getVulnOverviewList`` lists the
entries whose last update (``datePublished*``, "最終更新日") is on or after the cursor's day
(the last 365 days on a first run: older years come from the yearly data-feed files), then
``getVulnDetailInfo`` fetches their VULDEF documents ten ids at a time; ``getAlertList`` is
fetched whole each time.  Files accumulate in the cache folder, named by fetch time so the
newest copy of an entry is read last.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.feeds._jvn import JvnRecord, parse_jvn
from patchpilot.knowledge.feeds.interface import RecordKind

API_URL = "https://jvndb.jvn.jp/myjvn"
PAGE_SIZE = 50  # getVulnOverviewList's maxCountItem limit
DETAIL_BATCH = 10  # ids per getVulnDetailInfo request (vulnId=a+b+…)
FIRST_WINDOW = timedelta(days=365)
PAUSE = 1.0  # seconds between requests: MyJVN is a public service run by IPA
_JVNDB_ID = re.compile(rb"<sec:identifier>\s*(JVNDB-\d{4}-\d{6})\s*</sec:identifier>")
_TOTAL = re.compile(rb'totalRes="(\d+)"')

# What a file's first 4 KiB must hold to be JVN's: the VULDEF namespace with its root, the
# JVNDB RSS schema, or the MyJVN alert feed's id.
_CLAIMS = ((b"http://jvn.jp/vuldef/", b"VULDEF-Document"),
           (b"http://jvn.jp/rss/mod_sec/3.0/", b"jvnrss_3."),
           (b"http://www.w3.org/2005/Atom", b"myjvn_alert"))


class JvnFeed:
    """JVN iPedia (VULDEF detail, JVNDB RSS) and MyJVN alerts."""

    name = "jvn"
    kind = RecordKind.JVN
    # Below the distributions' trackers and OSV (JVN restates vendors' advisories), but its
    # rows speak for the CPE products nothing else names.
    priority = 20

    def __init__(self, *, api_url: str = API_URL,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        # Injectable so tests run against a mock transport without waiting or a clock.
        self.api_url = api_url
        self._sleep = sleep
        self._now = now

    def claims(self, path: Path, head: bytes) -> bool:
        """A JVN XML file: VULDEF detail, JVNDB RSS or the MyJVN alert list."""
        if not path.name.endswith((".xml", ".rdf")):
            return False
        return any(a in head and b in head for a, b in _CLAIMS)

    def read(self, path: Path) -> Iterator[JvnRecord]:
        """Every entry and alert in one JVN XML file."""
        return parse_jvn(path)

    # ----------------------------------------------------------------------- online

    def _get(self, client: httpx.Client, params: dict[str, str | int]) -> bytes:
        try:
            response = client.get(self.api_url, params=params, timeout=120.0)
        except httpx.HTTPError as exc:
            raise FeedDownloadError(f"{self.api_url}: {exc}") from exc
        if response.status_code != 200:
            raise FeedDownloadError(f"{response.request.url}: HTTP {response.status_code}")
        return response.content

    def _save(self, body: bytes, target: Path) -> Path:
        """Write an answer, checked by parsing first so a bad answer never reaches ``read``."""
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(body)
        try:
            for _ in parse_jvn(partial):
                pass
        except FeedError as exc:
            partial.unlink(missing_ok=True)
            raise FeedDownloadError(f"{self.api_url}: {exc.detail}") from exc
        partial.replace(target)
        return target

    def updated_ids(self, client: httpx.Client, start: datetime) -> list[str]:
        """The JVNDB ids whose last update (最終更新日) is on or after ``start``'s day."""
        base: dict[str, str | int] = {
            "method": "getVulnOverviewList", "feed": "hnd", "lang": "ja",
            "rangeDatePublic": "n", "rangeDatePublished": "n", "rangeDateFirstPublished": "n",
            "datePublishedStartY": start.year, "datePublishedStartM": f"{start.month:02d}",
            "datePublishedStartD": f"{start.day:02d}", "maxCountItem": PAGE_SIZE}
        ids: dict[str, None] = {}
        first = 1
        while True:
            if first > 1:
                self._sleep(PAUSE)
            body = self._get(client, {**base, "startItem": first})
            found = [m.decode() for m in _JVNDB_ID.findall(body) if m.decode() not in ids]
            ids.update(dict.fromkeys(found))
            total = _TOTAL.search(body)
            first += PAGE_SIZE
            # A page bringing no new id ends the listing too: a server that ignores
            # startItem must not make this loop over totalRes/50 identical pages.
            if not found or total is None or first > int(total.group(1)):
                return list(ids)

    def fetch(self, client: httpx.Client, dest: Path, since: str | None) -> list[Path]:
        """Download the entries updated since ``since`` (VULDEF detail documents, ten per
        file) and the alert list into ``dest``; return the files written."""
        dest.mkdir(parents=True, exist_ok=True)
        now = self._now()
        if since:
            try:
                start = datetime.fromisoformat(since.replace("Z", "+00:00"))
            except ValueError as exc:
                raise FeedDownloadError(f"jvn: cursor {since!r} is not an ISO time") from exc
        else:
            start = now - FIRST_WINDOW
        stamp = now.strftime("%Y%m%dT%H%M%S")
        written: list[Path] = []
        ids = self.updated_ids(client, start)
        for n, i in enumerate(range(0, len(ids), DETAIL_BATCH), 1):
            self._sleep(PAUSE)
            body = self._get(client, {"method": "getVulnDetailInfo", "feed": "hnd",
                                      "lang": "ja",
                                      "vulnId": "+".join(ids[i:i + DETAIL_BATCH])})
            written.append(self._save(body, dest / f"jvn-detail-{stamp}-{n:05d}.xml"))
        self._sleep(PAUSE)
        body = self._get(client, {"method": "getAlertList", "feed": "hnd", "lang": "ja",
                                  "maxCountItem": PAGE_SIZE})
        written.append(self._save(body, dest / "jvn-alerts.xml"))
        return written


FEED = JvnFeed()
