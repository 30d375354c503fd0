"""FIRST EPSS: the daily probability that a CVE is exploited in the next 30 days.

The official daily file (https://www.first.org/epss/data_stats, served by Empirical
Security for FIRST) is a gzipped CSV::

    #model_version:v2025.03.14,score_date:2025-03-15T00:00:00Z
    cve,epss,percentile
    CVE-1999-0001,0.01141,0.77653

Also read: the same CSV uncompressed, and per-year extracts ``CVE_<year>_EPSS.csv`` with
``cve;epss;percentile`` rows and neither comment nor header.

About 300,000 rows a day, so the parser is a plain split per line (no csv module, no
pandas): every field is a CVE id or a decimal, never quoted.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx

from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.feeds._common import GZIP_MAGIC, peek
from patchpilot.knowledge.feeds.interface import RecordKind
from patchpilot.models import EpssScore, VulnId

CURRENT_URL = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"
HEADER = "cve,epss,percentile"
_NAME = re.compile(r"epss.*\.csv(\.gz)?$", re.IGNORECASE)
_SEMICOLON_ROW = re.compile(rb"CVE-\d+-\d+;")
_SCORE_DATE = re.compile(r"score_date:(\d{4}-\d{2}-\d{2})")


def _text(path: Path) -> str:
    """The whole file as text, decompressed when it is gzip (judged by content, not name)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FeedError(path, f"cannot be read: {exc.strerror or exc}") from exc
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise FeedError(path, f"corrupt or truncated gzip data: {exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedError(path, f"not UTF-8 text: {exc}") from exc


def parse_epss(text: str, path: Path | str) -> Iterator[EpssScore]:
    """Every score in the text of one EPSS file; ``path`` names it in errors."""
    day: str | None = None
    sep: str | None = None  # decided by the header or the first row
    rows = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line:
            continue
        if line[0] == "#":
            # "#model_version:v2025.03.14,score_date:2025-03-15T12:55:00Z": the scores'
            # date is the day they were computed for.
            found = _SCORE_DATE.search(line)
            if found:
                day = found.group(1)
            continue
        if sep is None:
            if not line.startswith("CVE-"):
                if line.strip().lower() != HEADER:
                    raise FeedError(path, f"unexpected header {line!r}, expected {HEADER!r}",
                                    line=number)
                sep = ","
                continue
            sep = ";" if ";" in line else ","
        fields = line.split(sep)
        if len(fields) != 3:
            raise FeedError(path, f"expected 3 fields cve{sep}epss{sep}percentile, found "
                                  f"{len(fields)} (truncated?)", line=number)
        cve, raw_score, raw_percentile = fields
        try:
            score = float(raw_score)
            percentile = float(raw_percentile)
        except ValueError:
            raise FeedError(path, f"epss {raw_score!r} or percentile {raw_percentile!r} "
                                  "is not a number", line=number) from None
        # Both are probabilities; the comparisons also reject NaN.
        if not (0.0 <= score <= 1.0 and 0.0 <= percentile <= 1.0):
            raise FeedError(path, f"epss {raw_score} or percentile {raw_percentile} is "
                                  "outside 0..1", line=number)
        if not cve.startswith("CVE-"):
            raise FeedError(path, f"cve {cve!r} is not a CVE id", line=number)
        rows += 1
        yield EpssScore(VulnId(cve), score, percentile, day)
    if rows == 0:
        # Every published score file has rows; none means a failed or cut download.
        raise FeedError(path, "no scores: the file is empty or was cut before its first row")


class EpssFeed:
    """FIRST EPSS daily scores (official gzipped CSV, or per-year extracts)."""

    name = "epss"
    kind = RecordKind.EPSS
    priority = 0

    def claims(self, path: Path, head: bytes) -> bool:
        """An EPSS CSV by name (``*epss*.csv[.gz]``) or by its first line."""
        if _NAME.search(path.name):
            return True
        text = peek(head)
        return (text.startswith((b"#model_version", b"cve,epss"))
                or _SEMICOLON_ROW.match(text) is not None)

    def read(self, path: Path) -> Iterator[EpssScore]:
        """Every score in one EPSS file (gzipped or not)."""
        return parse_epss(_text(path), path)

    def fetch(self, client: httpx.Client, dest: Path, since: str | None) -> list[Path]:
        """Download today's full score file (EPSS publishes no incremental form)."""
        dest.mkdir(parents=True, exist_ok=True)
        try:
            # The "current" URL redirects to the dated file epss_scores-YYYY-MM-DD.csv.gz.
            response = client.get(CURRENT_URL, timeout=120.0, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise FeedDownloadError(f"{CURRENT_URL}: {exc}") from exc
        if response.status_code != 200:
            raise FeedDownloadError(f"{CURRENT_URL}: HTTP {response.status_code}")
        body = response.content
        if not peek(body[:4096]).startswith((b"#model_version", b"cve,epss")):
            raise FeedDownloadError(f"{CURRENT_URL}: the answer is not an EPSS score file")
        target = dest / "epss_scores-current.csv.gz"
        target.write_bytes(body)
        return [target]


FEED = EpssFeed()
