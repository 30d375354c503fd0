"""CISA's Known Exploited Vulnerabilities catalogue, as KevEntry rows.

Both official encodings are read (https://www.cisa.gov/known-exploited-vulnerabilities-catalog):

* JSON ``{title, catalogVersion, dateReleased, count, vulnerabilities: [...]}``, schema
  https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities_schema.json;
* CSV with the same field names as its header row.

``knownRansomwareCampaignUse`` is ``"Known"`` or ``"Unknown"``; only ``"Known"`` sets
:attr:`KevEntry.ransomware`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.feeds._common import JsonObject, load_json
from patchpilot.knowledge.feeds.interface import RecordKind
from patchpilot.models import KevEntry, VulnId

JSON_URL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
CSV_HEADER = ("cveID", "vendorProject", "product", "vulnerabilityName", "dateAdded",
              "shortDescription", "requiredAction", "dueDate", "knownRansomwareCampaignUse",
              "notes", "cwes")
_CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}")
_CATALOG_VERSION = re.compile(rb'"catalogVersion"\s*:\s*"')
_SINGLE_ENTRY = re.compile(rb'\s*\{\s*"cveID"\s*:')


def _entry(row: Mapping[str, Any], where: str, path: Path | str,
           line: int | None = None) -> KevEntry:
    """One catalogue row (JSON object or CSV row) → KevEntry, checking the required fields."""

    def text(key: str, *, required: bool = False) -> str | None:
        value = row.get(key)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            if required:
                raise FeedError(path, f"{where}: {key} is missing", line=line)
            return None
        if not isinstance(value, str):
            raise FeedError(path, f"{where}: {key} is not a string", line=line)
        return value

    # The schema requires eight fields, but only cveID and dateAdded are needed to act on
    # an entry: a blank descriptive field must not drop a known-exploited CVE.
    cve = text("cveID", required=True) or ""
    if not _CVE_ID.fullmatch(cve):
        raise FeedError(path, f"{where}: cveID {cve!r} is not a CVE id", line=line)
    added = text("dateAdded", required=True) or ""
    due = text("dueDate")
    for key, value in (("dateAdded", added), ("dueDate", due)):
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise FeedError(path, f"{where} ({cve}): {key} {value!r} is not a date",
                                line=line) from None
    return KevEntry(
        cve=VulnId(cve),
        date_added=added,
        due_date=due,
        # "Unknown" means CISA has no evidence either way, not "no".
        ransomware=text("knownRansomwareCampaignUse") == "Known",
        vendor=text("vendorProject"),
        product=text("product"),
        name=text("vulnerabilityName"),
        required_action=text("requiredAction"),
    )


def _read_json(path: Path) -> Iterator[KevEntry]:
    """Entries of the JSON catalogue (or of one entry saved on its own)."""
    doc = JsonObject(load_json(path), path, "")
    if "cveID" in doc.obj:
        # A single catalogue entry on its own (as some mirrors split the catalogue).
        yield _entry(doc.obj, "entry", path)
        return
    for i, item in enumerate(doc.children("vulnerabilities", required=True)):
        yield _entry(item.obj, f"vulnerabilities[{i}]", path)


def _read_csv(path: Path) -> Iterator[KevEntry]:
    """Rows of the CSV catalogue; columns are found by header name, not position."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise FeedError(path, f"cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise FeedError(path, f"not UTF-8 text: {exc}") from exc
    # strict: an unterminated quote (a truncated download) is an error, not a long field.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or tuple(header[:2]) != CSV_HEADER[:2]:
            raise FeedError(path, "header does not start with cveID,vendorProject", line=1)
        missing = [name for name in ("cveID", "dateAdded") if name not in header]
        if missing:
            raise FeedError(path, f"header lacks {', '.join(missing)}", line=1)
        for number, fields in enumerate(reader, start=1):
            if not fields:
                continue
            line = reader.line_num
            if len(fields) != len(header):
                raise FeedError(path, f"row {number} has {len(fields)} fields, expected "
                                      f"{len(header)} (truncated?)", line=line)
            yield _entry(dict(zip(header, fields, strict=True)), f"row {number}", path, line)
    except csv.Error as exc:
        raise FeedError(path, f"malformed CSV: {exc}", line=reader.line_num) from exc


class KevFeed:
    """CISA KEV catalogue (JSON or CSV) as KevEntry rows."""

    name = "kev"
    kind = RecordKind.KEV
    priority = 0

    def claims(self, path: Path, head: bytes) -> bool:
        """The KEV JSON catalogue, or its CSV (header ``cveID,vendorProject,…``)."""
        if path.name.endswith(".json"):
            # A string value, so the catalogue's JSON schema (which names the field) is not.
            return (_CATALOG_VERSION.search(head) is not None
                    or _SINGLE_ENTRY.match(head) is not None)
        if path.name.endswith(".csv"):
            return head.removeprefix(b"\xef\xbb\xbf").startswith(b"cveID,vendorProject")
        return False

    def read(self, path: Path) -> Iterator[KevEntry]:
        """Every catalogue entry in one KEV JSON or CSV file."""
        if path.name.endswith(".csv"):
            return _read_csv(path)
        return _read_json(path)

    def fetch(self, client: httpx.Client, dest: Path, since: str | None) -> list[Path]:
        """Download the whole JSON catalogue (it is small; there is no incremental form)."""
        dest.mkdir(parents=True, exist_ok=True)
        try:
            response = client.get(JSON_URL, timeout=60.0, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise FeedDownloadError(f"{JSON_URL}: {exc}") from exc
        if response.status_code != 200:
            raise FeedDownloadError(f"{JSON_URL}: HTTP {response.status_code}")
        target = dest / "known_exploited_vulnerabilities.json"
        # Check before replacing the previous copy, so a bad answer leaves it in place.
        try:
            load_json(JSON_URL, response.content)
        except FeedError as exc:
            raise FeedDownloadError(f"{JSON_URL}: {exc.detail}") from exc
        target.write_bytes(response.content)
        return [target]


FEED = KevFeed()
