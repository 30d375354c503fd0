"""NVD: CVE records from the NVD CVE API 2.0, and the legacy NVD 1.1 JSON feeds.

Formats read (https://nvd.nist.gov/developers/vulnerabilities):

* an API 2.0 answer page ``{"format": "NVD_CVE", "version": "2.0", "vulnerabilities":
  [{"cve": {...}}, ...]}`` (what :meth:`NvdFeed.fetch` writes), a single ``{"cve": {...}}``
  item, or a bare cve object (as vuln-list-nvd and Dependency-Track store them);
* the retired 1.1 data feeds ``{"CVE_Items": [...]}`` (``nvdcve-1.1-<year>.json[.gz]``),
  still found in mirrors and test data.

Each CVE becomes one :class:`~patchpilot.models.CveRecord`.  Scores are recomputed from the
published vectors (``knowledge.cvss.metric_from_vector``); NVD's ``baseScore`` is ignored.
The record's ``configurations`` (CPE match criteria) become its ``affected`` packages of
ecosystem ``CPE`` (knowledge.feeds._cpe says how, AND configurations included), stored as
one advisory per CVE at :attr:`NvdFeed.affected_priority`.

The small JSON helpers here (:func:`load_json`, :class:`JsonObject`) are shared by the
``cve5`` and ``kev`` transformers, which read JSON of the same kind.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from patchpilot.config import load_settings
from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.feeds._common import (
    JsonObject,
    add_metric,
    add_reference,
    english,
    load_json,
    peek,
)
from patchpilot.knowledge.feeds._cpe import nvd_affected
from patchpilot.knowledge.feeds.interface import RecordKind
from patchpilot.models import CveRecord, CvssMetric, Reference, VulnId

API_URL = "https://services.nvd.nist.gov/rest/json/cves/2.0"
PAGE_SIZE = 2000  # the API's maximum resultsPerPage for /cves/2.0
# "The maximum allowable range when using any date range parameters is 120 consecutive
# days" (https://nvd.nist.gov/developers/vulnerabilities, lastModStartDate).
MAX_WINDOW = timedelta(days=120)
# NVD's best practices: sleep 6 s between requests without a key; a key allows 50
# requests per 30 s (https://nvd.nist.gov/developers/start-here#divRateLimits).
PAUSE_WITHOUT_KEY = 6.0
PAUSE_WITH_KEY = 0.6
RETRIES = 3
# NVD answers 403 (not 429) when a client exceeds the rate limit, and 503 under load.
_RETRY_STATUS = frozenset({403, 429, 500, 502, 503, 504})

# Source of the scores in the 1.1 feeds, which carried only NVD's own analysis.
NVD_SOURCE = "nvd@nist.gov"
# API 2.0 metric lists, newest CVSS version first.
_METRIC_KEYS = ("cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2")
_CWE = re.compile(r"CWE-\d+")
# An item's "cve" is an object; CSAF, GitLab reports and Node.js advisories use "cve" for
# a string or list of ids, and must not be taken for NVD pages.
_CVE_ITEM = re.compile(rb'"cve"\s*:\s*\{')
_CVE_ITEM_FIRST = re.compile(rb'\s*\{\s*"cve"\s*:\s*\{')
_GZIP_MAGIC = b"\x1f\x8b"


def _nvd_reference_type(tags: list[str]) -> str:
    """Reference kind from NVD tags: "exploit" first, else the first tag, else "web"."""
    # NVD tag vocabulary: https://nvd.nist.gov/general/nvd-reference-tags
    if "Exploit" in tags:
        return "exploit"
    return tags[0].lower() if tags else "web"


def _from_api2(cve: JsonObject) -> CveRecord:
    """One API 2.0 ``cve`` object → CveRecord."""
    cve_id = cve.text("id", required=True)
    metrics: dict[tuple[str, str], CvssMetric] = {}
    metric_lists = cve.child("metrics")
    for key in _METRIC_KEYS:
        for metric in metric_lists.children(key):
            add_metric(metrics, metric.child("cvssData", required=True).text("vectorString"),
                       metric.text("source") or "")
    references: dict[str, str] = {}
    for ref in cve.children("references"):
        add_reference(references, ref.text("url"), _nvd_reference_type(ref.texts("tags")))
    cwes: dict[str, None] = {}
    for weakness in cve.children("weaknesses"):
        for desc in weakness.children("description"):
            # "NVD-CWE-Other" / "NVD-CWE-noinfo" are NVD placeholders, not weaknesses.
            value = desc.text("value") or ""
            if _CWE.fullmatch(value):
                cwes[value] = None
    return CveRecord(
        id=VulnId(cve_id or ""),
        source="nvd",
        modified=cve.text("lastModified"),
        published=cve.text("published"),
        description=english(cve.children("descriptions")),
        cvss=tuple(metrics.values()),
        references=tuple(Reference(url, kind) for url, kind in references.items()),
        cwes=tuple(cwes),
        status=cve.text("vulnStatus"),
        affected=nvd_affected(cve.get("configurations")),
    )


def _from_legacy(item: JsonObject) -> CveRecord:
    """One NVD 1.1 feed ``CVE_Items`` element → CveRecord.

    Schema: https://csrc.nist.gov/schema/nvd/feed/1.1/nvd_cve_feed_json_1.1.schema
    """
    cve = item.child("cve", required=True)
    cve_id = cve.child("CVE_data_meta", required=True).text("ID", required=True)
    impact = item.child("impact")
    metrics: dict[tuple[str, str], CvssMetric] = {}
    add_metric(metrics, impact.child("baseMetricV3").child("cvssV3").text("vectorString"),
               NVD_SOURCE)
    add_metric(metrics, impact.child("baseMetricV2").child("cvssV2").text("vectorString"),
               NVD_SOURCE)
    references: dict[str, str] = {}
    for ref in cve.child("references").children("reference_data"):
        add_reference(references, ref.text("url"), _nvd_reference_type(ref.texts("tags")))
    cwes: dict[str, None] = {}
    for problem in cve.child("problemtype").children("problemtype_data"):
        for desc in problem.children("description"):
            value = desc.text("value") or ""
            if _CWE.fullmatch(value):
                cwes[value] = None
    description = english(cve.child("description").children("description_data"))
    # 1.1 had no status field; rejected entries were marked in the description text.
    status = "Rejected" if description and description.startswith("** REJECT **") else None
    return CveRecord(
        id=VulnId(cve_id or ""),
        source="nvd",
        modified=item.text("lastModifiedDate"),
        published=item.text("publishedDate"),
        description=description,
        cvss=tuple(metrics.values()),
        references=tuple(Reference(url, kind) for url, kind in references.items()),
        cwes=tuple(cwes),
        status=status,
        affected=nvd_affected(item.get("configurations")),
    )


def parse_nvd(data: Any, path: Path | str) -> Iterator[CveRecord]:
    """Every CVE in one decoded NVD document (API 2.0 page, item or cve; or 1.1 feed)."""
    doc = JsonObject(data, path, "")
    if "vulnerabilities" in doc.obj:
        for item in doc.children("vulnerabilities", required=True):
            yield _from_api2(item.child("cve", required=True))
    elif "CVE_Items" in doc.obj:
        for item in doc.children("CVE_Items", required=True):
            yield _from_legacy(item)
    elif isinstance(doc.get("cve"), dict):
        cve = doc.child("cve")
        yield _from_legacy(doc) if "CVE_data_meta" in cve.obj else _from_api2(cve)
    elif "id" in doc.obj and ("sourceIdentifier" in doc.obj or "descriptions" in doc.obj):
        yield _from_api2(doc)
    else:
        raise FeedError(path, "not an NVD CVE document: no 'vulnerabilities', 'CVE_Items' "
                              "or 'cve' field")


# --------------------------------------------------------------------------- the feed


def _utc(moment: str) -> datetime:
    """An ISO 8601 time as aware UTC; NVD's own timestamps carry no offset and are UTC."""
    parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def windows(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Consecutive ``[start, end]`` windows no longer than the API's 120-day limit."""
    while start < end:
        stop = min(start + MAX_WINDOW, end)
        yield start, stop
        start = stop


class NvdFeed:
    """The NVD CVE API 2.0 (and legacy 1.1 feed files) as CveRecords."""

    name = "nvd"
    kind = RecordKind.CVE
    priority = 50
    # Its CPE advisories rank below every package source (OSV is 10) and below the
    # vendors' own CVE 5 statements: NVD's analysis is derived from them.
    affected_priority = 4

    def __init__(self, *, api_url: str = API_URL,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        # Injectable so tests run against a mock transport without waiting or a clock.
        self.api_url = api_url
        self._sleep = sleep
        self._now = now

    def claims(self, path: Path, head: bytes) -> bool:
        """NVD JSON: an API 2.0 page, item or bare cve, or a 1.1 feed (maybe gzipped)."""
        if not path.name.endswith((".json", ".json.gz")):
            return False
        text = peek(head)
        if b'"NVD_CVE"' in text or b'"CVE_Items"' in text or b'"sourceIdentifier"' in text:
            return True
        if b'"vulnerabilities"' in text and _CVE_ITEM.search(text):
            return True
        return _CVE_ITEM_FIRST.match(text) is not None

    def read(self, path: Path) -> Iterator[CveRecord]:
        """Every CVE record in one NVD JSON file."""
        return parse_nvd(load_json(path), path)

    def fetch(self, client: httpx.Client, dest: Path, since: str | None) -> list[Path]:
        """Download NVD API 2.0 pages into ``dest/nvd-<n>.json``.

        With ``since``, only CVEs modified from then until now, in windows of at most 120
        days; without, the whole catalogue.  An API key in ``NVD_API_KEY`` raises the rate
        limit; requests are spaced as NVD asks either way.
        """
        dest.mkdir(parents=True, exist_ok=True)
        key = load_settings().nvd_api_key
        headers = {"apiKey": key} if key else {}
        pause = PAUSE_WITH_KEY if key else PAUSE_WITHOUT_KEY
        if since:
            try:
                start = _utc(since)
            except ValueError as exc:
                raise FeedDownloadError(f"nvd: cursor {since!r} is not an ISO time") from exc
            ranges: list[tuple[datetime, datetime] | None] = list(windows(start, self._now()))
        else:
            ranges = [None]
        paths: list[Path] = []
        for window in ranges:
            index = 0
            while True:
                params: dict[str, str | int] = {"resultsPerPage": PAGE_SIZE, "startIndex": index}
                if window is not None:
                    params["lastModStartDate"] = window[0].isoformat(timespec="milliseconds")
                    params["lastModEndDate"] = window[1].isoformat(timespec="milliseconds")
                if paths:
                    self._sleep(pause)
                body = self._get(client, params, headers, pause)
                try:
                    page = JsonObject(load_json(self.api_url, body), self.api_url, "")
                    got = len(page.children("vulnerabilities", required=True))
                except FeedError as exc:
                    # A 200 answer that is not a page (an HTML error page, a cut body).
                    raise FeedDownloadError(f"{self.api_url}: {exc.detail}") from exc
                total = page.get("totalResults")
                path = dest / f"nvd-{len(paths) + 1}.json"
                path.write_bytes(body)
                paths.append(path)
                index += got
                if got == 0 or not isinstance(total, int) or index >= total:
                    break
        return paths

    def _get(self, client: httpx.Client, params: dict[str, str | int],
             headers: dict[str, str], pause: float) -> bytes:
        """One API request, retried a few times on rate limiting and server errors."""
        for attempt in range(1, RETRIES + 1):
            try:
                response = client.get(self.api_url, params=params, headers=headers,
                                      timeout=120.0)
            except httpx.HTTPError as exc:
                if attempt == RETRIES:
                    raise FeedDownloadError(f"{self.api_url}: {exc}") from exc
            else:
                if response.status_code == 200:
                    return response.content
                if response.status_code not in _RETRY_STATUS or attempt == RETRIES:
                    raise FeedDownloadError(
                        f"{response.request.url}: HTTP {response.status_code}")
            # Back off well beyond the normal spacing: NVD's limit is a rolling window.
            self._sleep(max(pause, PAUSE_WITHOUT_KEY) * attempt)
        raise AssertionError("unreachable")  # the loop returns or raises


FEED = NvdFeed()
