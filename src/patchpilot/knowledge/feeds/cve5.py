"""CVE Program records in the CVE JSON 5 format (the official CVE List, cvelistV5).

Schema: https://github.com/CVEProject/cve-schema (CVE_Record_Format.json, 5.0 – 5.2).  A
record has one CNA container (the assigner's own data: title, descriptions, metrics,
references, problemTypes, workarounds) and optional ADP containers added by other
programmes — notably ``CISA-ADP`` (Vulnrichment), which adds CVSS vectors and CWEs where
the CNA gave none, and the ``CVE`` programme container with extra references.

Files read:

* one record per file (``cves/2024/3xxx/CVE-2024-3094.json`` in the repository);
* a wrapper ``{title, score, cvssVersion, vector, id, raw}`` whose ``raw`` is the record
  (as a JSON object or a JSON string); its own score and vector are derived from ``raw``
  and ignored;
* a release zip of records (``…_delta_CVEs_at_HHMMZ.zip``), including the baseline
  ``…_all_CVEs_at_midnight.zip.zip`` whose single member is itself a zip.

Workarounds reach the product from here: NVD's API does not carry them.  The containers'
``affected`` entries become the record's ``affected`` packages of ecosystem ``CPE``
(knowledge.feeds._cpe), stored as one advisory per CVE at
:attr:`Cve5Feed.affected_priority`.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.feeds._common import first_zip_member
from patchpilot.knowledge.feeds._cpe import cve5_affected
from patchpilot.knowledge.feeds.interface import RecordKind
from patchpilot.knowledge.feeds.nvd import (
    JsonObject,
    add_metric,
    add_reference,
    english,
    load_json,
)
from patchpilot.models import CveRecord, CvssMetric, Reference, VulnId

RELEASE_URL = "https://api.github.com/repos/CVEProject/cvelistV5/releases/latest"
# Release asset names, per the cvelistV5 README ("How to Download the CVE List"): a
# baseline of every record at midnight UTC, and an hourly delta of everything changed
# since that baseline.
_BASELINE = re.compile(r"(\d{4}-\d{2}-\d{2})_all_CVEs_at_midnight\.zip(\.zip)?$")
_DELTA = re.compile(r"(\d{4}-\d{2}-\d{2})_delta_CVEs_at_\w+\.zip$")
# Only record files count inside a zip: the repository also holds delta.json/deltaLog.json.
_RECORD_NAME = re.compile(r"(^|/)CVE-\d{4}-\d+\.json$")
# Metric keys of the schema, newest CVSS version first; "other" (ssvc, kev, vendor
# ratings) carries no CVSS vector.
_CVSS_KEYS = ("cvssV4_0", "cvssV3_1", "cvssV3_0", "cvssV2_0")
_CWE = re.compile(r"CWE-\d+")
_CVE_MEMBER = re.compile(r"(^|/)cve-\d{4}-\d+\.json$")
_ZIP_MAGIC = b"PK\x03\x04"
# Records written with sorted keys start with a long "containers" object, pushing
# "cveMetadata" and "dataType" past the 4 KiB a claim sees.
_CONTAINERS_FIRST = re.compile(rb'\s*\{\s*"containers"\s*:\s*\{\s*"(adp|cna)"\s*:')
_CHUNK = 1 << 20


def _reference_type(tags: list[str]) -> str:
    """Reference kind from CVE 5 tags (lower case already): "exploit" first, else the first
    schema tag (``x_``-prefixed tags are legacy MITRE labels), else "web"."""
    if "exploit" in tags:
        return "exploit"
    return next((t.lower() for t in tags if not t.startswith("x_")), "web")


def parse_record(data: Any, label: str) -> CveRecord:
    """One decoded CVE JSON 5 record (or its ``{…, raw}`` wrapper) → CveRecord."""
    doc = JsonObject(data, label, "")
    raw = doc.get("raw")
    if raw is not None and "cveMetadata" not in doc.obj:
        # The wrapper holds the record either as an object or as a JSON-encoded string.
        if isinstance(raw, str):
            raw = load_json(label, raw.encode())
        doc = JsonObject(raw, label, "raw")
    if doc.get("dataType") not in (None, "CVE_RECORD"):
        raise doc.fail(f"dataType is {doc.get('dataType')!r}, not 'CVE_RECORD'")
    meta = doc.child("cveMetadata", required=True)
    cve_id = meta.text("cveId", required=True) or ""
    containers = doc.child("containers", required=True)
    cna = containers.child("cna")
    adps = containers.children("adp")

    metrics: dict[tuple[str, str], CvssMetric] = {}
    references: dict[str, str] = {}
    cwes: dict[str, None] = {}
    workarounds: list[str] = []
    for container in (cna, *adps):
        # The provider's short name ("redhat", "CISA-ADP") says who scored the vector.
        source = container.child("providerMetadata").text("shortName") or ""
        for metric in container.children("metrics"):
            for key in _CVSS_KEYS:
                if key in metric.obj:
                    add_metric(metrics, metric.child(key).text("vectorString"), source)
        for ref in container.children("references"):
            add_reference(references, ref.text("url"), _reference_type(ref.texts("tags")))
        for problem in container.children("problemTypes"):
            for desc in problem.children("descriptions"):
                cwe = desc.text("cweId")
                if cwe is None and desc.text("type") == "CWE":
                    # Older records put the id only in the text: "CWE-79 Cross-site …".
                    found = _CWE.match(desc.text("description") or "")
                    cwe = found.group(0) if found else None
                if cwe and _CWE.fullmatch(cwe):
                    cwes[cwe] = None
        workarounds.extend(
            w.text("value") or "" for w in container.children("workarounds")
            if (w.text("lang") or "").lower().startswith("en"))

    description = english(cna.children("descriptions"))
    if description is None:
        # Rejected records replace descriptions with the reason for rejection.
        description = english(cna.children("rejectedReasons"))
    return CveRecord(
        id=VulnId(cve_id),
        source="cve5",
        modified=meta.text("dateUpdated"),
        published=meta.text("datePublished"),
        title=cna.text("title"),
        description=description,
        cvss=tuple(metrics.values()),
        references=tuple(Reference(url, kind) for url, kind in references.items()),
        cwes=tuple(cwes),
        workaround="\n\n".join(w.strip() for w in workarounds if w.strip()) or None,
        status=meta.text("state"),
        affected=cve5_affected(cna.get("affected") or (),
                               [a.get("affected") or () for a in adps]),
    )


def _read_zip(archive: zipfile.ZipFile, label: str) -> Iterator[CveRecord]:
    """Every record in a release zip, descending into the nested zip of a baseline."""
    for info in archive.infolist():
        name = info.filename
        where = f"{label}!{name}"
        try:
            if name.endswith(".zip"):
                # The baseline is a zip holding cves.zip; zipfile needs a seekable file,
                # and seeking inside a compressed member re-inflates it, so spool it.
                with archive.open(info) as member, tempfile.TemporaryFile() as spool:
                    shutil.copyfileobj(member, spool, _CHUNK)
                    spool.seek(0)
                    with zipfile.ZipFile(spool) as inner:
                        yield from _read_zip(inner, where)
            elif _RECORD_NAME.search(name):
                yield parse_record(load_json(where, archive.read(info)), where)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error) as exc:
            raise FeedError(where, f"corrupt or truncated zip member: {exc}") from exc


class Cve5Feed:
    """CVE JSON 5 records from the CVE Program's cvelistV5 as CveRecords."""

    name = "cve5"
    kind = RecordKind.CVE
    priority = 40
    # Its CPE advisories: the vendor's (CNA's) own statement outranks NVD's analysis of it
    # (4) but no package source (OSV is 10) -- they name different ecosystems anyway.
    affected_priority = 5

    def claims(self, path: Path, head: bytes) -> bool:
        """A CVE JSON 5 record or wrapper, or a cvelistV5 release zip."""
        if head.startswith(_ZIP_MAGIC):
            # Local file header of the first member: cves.zip, or cves/…/CVE-….json.
            member = first_zip_member(head)
            return path.name.endswith(".zip") and (
                member.startswith("cves") or _CVE_MEMBER.search(member) is not None)
        if not path.name.endswith(".json"):
            return False
        return (b'"cveMetadata"' in head or b'"CVE_RECORD"' in head
                or _CONTAINERS_FIRST.match(head) is not None
                or (b'"raw"' in head and b'"cvssVersion"' in head))

    def read(self, path: Path) -> Iterator[CveRecord]:
        """Every record in one JSON file or release zip."""
        try:
            with path.open("rb") as fh:
                magic = fh.read(4)
        except OSError as exc:
            raise FeedError(path, f"cannot be read: {exc.strerror or exc}") from exc
        if magic == _ZIP_MAGIC:
            try:
                with zipfile.ZipFile(path) as archive:
                    yield from _read_zip(archive, str(path))
            except zipfile.BadZipFile as exc:
                raise FeedError(path, f"corrupt or truncated zip: {exc}") from exc
        else:
            yield parse_record(load_json(path), str(path))

    def fetch(self, client: httpx.Client, dest: Path, since: str | None) -> list[Path]:
        """Download the latest cvelistV5 release assets into ``dest``.

        The latest release holds the midnight baseline and the delta since then.  When the
        cursor ``since`` is already past that midnight, the delta alone brings the store up
        to date; otherwise the baseline is fetched too (returned first, so the delta's newer
        records are read last).
        """
        dest.mkdir(parents=True, exist_ok=True)
        try:
            response = client.get(RELEASE_URL, timeout=60.0, follow_redirects=True,
                                  headers={"Accept": "application/vnd.github+json"})
        except httpx.HTTPError as exc:
            raise FeedDownloadError(f"{RELEASE_URL}: {exc}") from exc
        if response.status_code != 200:
            raise FeedDownloadError(f"{RELEASE_URL}: HTTP {response.status_code}")
        try:
            assets = orjson.loads(response.content)["assets"]
            named = {a["name"]: a["browser_download_url"] for a in assets}
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise FeedDownloadError(f"{RELEASE_URL}: unexpected answer ({exc})") from exc
        baseline = next((n for n in named if _BASELINE.search(n)), None)
        delta = next((n for n in named if _DELTA.search(n)), None)
        wanted: list[str] = []
        if baseline and not (delta and since and _after_midnight_of(since, delta)):
            wanted.append(baseline)
        if delta:
            wanted.append(delta)
        if not wanted:
            raise FeedDownloadError(f"{RELEASE_URL}: no baseline or delta zip among the assets")
        return [_download(client, named[name], dest / name) for name in wanted]


def _after_midnight_of(since: str, delta_name: str) -> bool:
    """Whether the cursor is at or after the midnight the delta asset counts from."""
    found = _DELTA.search(delta_name)
    if found is None:
        return False
    try:
        cursor = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        return False  # an unreadable cursor means: start from the baseline
    if cursor.tzinfo is None:
        cursor = cursor.replace(tzinfo=UTC)
    midnight = datetime.fromisoformat(found.group(1)).replace(tzinfo=UTC)
    return cursor >= midnight


def _download(client: httpx.Client, url: str, target: Path) -> Path:
    """Stream one asset to ``target`` (via a partial file, so a failure leaves none)."""
    partial = target.with_name(target.name + ".part")
    try:
        with client.stream("GET", url, follow_redirects=True, timeout=300.0) as response:
            if response.status_code != 200:
                raise FeedDownloadError(f"{url}: HTTP {response.status_code}")
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise FeedDownloadError(f"{url}: {exc}") from exc
    partial.replace(target)
    return target


FEED = Cve5Feed()
