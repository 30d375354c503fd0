"""OSV records (JSON, YAML, or a per-ecosystem ``all.zip``) into the internal advisory schema.

Schema: https://ossf.github.io/osv-schema/ .  The bulk export is one ``all.zip`` per
ecosystem at https://osv-vulnerabilities.storage.googleapis.com/<Ecosystem>/all.zip, one
JSON record per member (https://google.github.io/osv.dev/data/#data-dumps).

``read`` is a pure transformation of one local file.  It is on the hot path of every full
load (hundreds of thousands of records), so the transformer works on the decoded dicts
directly, checks types with cheap ``type() is`` tests, and keeps each record's original
bytes as ``Advisory.raw`` instead of re-serialising it.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import yaml

from patchpilot.errors import FeedError
from patchpilot.knowledge.cvss import metric_from_vector
from patchpilot.knowledge.ecosystems import normalize_ecosystem
from patchpilot.knowledge.feeds._common import (
    download_if_changed,
    first_zip_member,
    read_file,
    yaml_loader,
)
from patchpilot.knowledge.feeds.interface import RecordKind
from patchpilot.knowledge.names import normalize_name
from patchpilot.models import (
    Advisory,
    AdvisoryId,
    AffectedPackage,
    AffectedRange,
    CvssMetric,
    Ecosystem,
    Reference,
)

OSV_BUCKET = "https://osv-vulnerabilities.storage.googleapis.com"

DEFAULT_ECOSYSTEMS: tuple[str, ...] = (
    "Debian", "Ubuntu", "Alpine", "AlmaLinux", "Rocky Linux", "Red Hat", "PyPI", "npm", "Go",
    "Maven", "crates.io", "NuGet", "RubyGems", "Packagist",
)

# Bug-fix and enhancement errata are published in the same OSV feeds as security ones but
# fix no vulnerability (https://errata.almalinux.org/, https://errata.rockylinux.org/).
_NON_SECURITY_PREFIXES = ("ALBA-", "ALEA-", "RLBA-", "RLEA-")

# Distributions whose OSV records are "this update fixes these CVEs": AlmaLinux lists the
# CVEs only in ``related``, Ubuntu and Debian in ``upstream`` (osv-schema#312).  For them
# those ids are what the advisory is about, so they become aliases.
_FIXES_UPSTREAM = frozenset({"AlmaLinux", "Rocky Linux", "Red Hat", "Debian", "Ubuntu"})

# Only these range types carry versions of the package; GIT ranges are commit hashes.
_VERSION_RANGE_TYPES = frozenset({"ECOSYSTEM", "SEMVER"})

_RH_RATING = re.compile(r"^(Critical|Important|Moderate|Low):\s")

_CVSS_TYPES = frozenset({"CVSS_V2", "CVSS_V3", "CVSS_V4"})


# OSV values are strings; YAML 1.1 would turn an unquoted ``1.10`` into the float 1.1 and
# ``modified: 2023-…Z`` into a datetime, so ints, floats and timestamps stay text.
_load_yaml_data = yaml_loader(lambda tag: tag not in {
    "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})

# Keys that mark other formats that also have an "id"-like shape: CVE JSON 5, the NVD
# API and feeds, and wrappers that embed an OSV record under "raw".
_FOREIGN_JSON = re.compile(rb'"(?:dataType|cveMetadata|vulnerabilities|CVE_Items|raw)"\s*:')
_OSV_JSON_KEY = re.compile(rb'"(?:affected|modified|schema_version)"\s*:')
_OSV_YAML_ID = re.compile(rb"(?m)^id:")
_OSV_YAML_KEY = re.compile(rb"(?m)^(?:affected|modified|schema_version):")


class OsvFeed:
    """OSV advisories: GHSA, PYSEC, GO, RUSTSEC, ALSA, RLSA, DSA, USN, … in OSV form."""

    name = "osv"
    kind = RecordKind.ADVISORY
    priority = 10  # derived data: a distribution's own tracker outranks it

    def __init__(self, ecosystems: Sequence[str] = DEFAULT_ECOSYSTEMS) -> None:
        self.ecosystems = tuple(ecosystems)

    def claims(self, path: Path, head: bytes) -> bool:
        """An OSV ``all.zip`` of JSON members, or one OSV record in JSON or YAML."""
        name = path.name.lower()
        if name.endswith(".zip"):
            return first_zip_member(head).endswith(".json")
        if name.endswith(".json"):
            return (b'"id"' in head and _OSV_JSON_KEY.search(head) is not None
                    and _FOREIGN_JSON.search(head) is None)
        if name.endswith((".yaml", ".yml")):
            return (_OSV_YAML_ID.search(head) is not None
                    and _OSV_YAML_KEY.search(head) is not None)
        return False

    def read(self, path: Path) -> Iterator[Advisory]:
        """Every security advisory in one OSV file (``.json``, ``.yaml``/``.yml``, ``.zip``)."""
        name = path.name.lower()
        if name.endswith(".zip"):
            yield from _read_zip(path)
            return
        try:
            data = read_file(path)
        except OSError as exc:
            raise FeedError(path, f"cannot read file: {exc.strerror or exc}") from exc
        if name.endswith((".yaml", ".yml")):
            record = _load_yaml(path, data)
            advisory = transform(record, orjson.dumps(record), path)
        else:
            advisory = transform(_load_json(path, data), data, path)
        if advisory is not None:
            yield advisory

    def read_part(self, path: Path, part: int, parts: int) -> Iterator[Advisory]:
        """The advisories of every ``parts``-th member of an ``all.zip``, from ``part``.

        An ecosystem's ``all.zip`` holds up to hundreds of thousands of records; reading it
        in parts lets the loader parse one zip on every core.
        """
        yield from _read_zip(path, part, parts)

    def fetch(self, client: httpx.Client, dest: Path, since: str | None) -> list[Path]:
        """Download each ecosystem's ``all.zip`` into ``dest/<Ecosystem>/all.zip``.

        A conditional GET (ETag / If-Modified-Since) skips unchanged archives.  With
        ``since`` set only the archives that changed are returned; without it (a full
        load) every archive is.
        """
        files = []
        for ecosystem in self.ecosystems:
            url = f"{OSV_BUCKET}/{quote(ecosystem)}/all.zip"
            target = dest / ecosystem.replace(" ", "_").replace("/", "_") / "all.zip"
            changed = download_if_changed(client, url, target)
            if changed or since is None:
                files.append(target)
        return files


FEED = OsvFeed()


# --- reading -------------------------------------------------------------------------


# The JSON members of the zips this process reads, by (path, size, mtime): a worker reads
# several parts of one all.zip, and parses its central directory (one entry per record,
# hundreds of thousands in Debian's) once, not once per part.
_MEMBERS: dict[tuple[str, int, int], list[zipfile.ZipInfo]] = {}


def _zip_members(path: Path) -> list[zipfile.ZipInfo]:
    try:
        st = os.stat(path)
        key = (os.fspath(path), st.st_size, st.st_mtime_ns)
        members = _MEMBERS.get(key)
        if members is None:
            with zipfile.ZipFile(path) as archive:
                members = [info for info in archive.infolist()
                           if not info.is_dir() and info.filename.lower().endswith(".json")]
            if len(_MEMBERS) >= 4:
                _MEMBERS.clear()
            _MEMBERS[key] = members
    except (OSError, zipfile.BadZipFile) as exc:
        raise FeedError(path, f"not a readable zip archive: {exc}") from exc
    return members


def _read_zip(path: Path, part: int = 0, parts: int = 1) -> Iterator[Advisory]:
    members = _zip_members(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise FeedError(path, f"not a readable zip archive: {exc}") from exc
    try:
        for info in members[part::parts]:
            where = f"{path}!{info.filename}"  # names the member in every error
            try:
                data = _member(fd, info)
                if data is None:  # encrypted, or compressed other than by deflate
                    with zipfile.ZipFile(path) as archive:
                        data = archive.read(info)
            except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
                # zlib.error: a damaged deflate stream (the CRC check comes only after it).
                raise FeedError(where, f"corrupt zip member: {exc}") from exc
            advisory = transform(_load_json(where, data), data, where)
            if advisory is not None:
                yield advisory
    finally:
        os.close(fd)


def _member(fd: int, info: zipfile.ZipInfo) -> bytes | None:
    """One member's bytes, checked as ``ZipFile.read`` checks them, read straight from
    its offset (a third of ``ZipFile.read``'s cost per record); None for a member that
    only ``zipfile`` can read."""
    if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_DEFLATED,
                                                          zipfile.ZIP_STORED):
        return None
    name = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
    header = os.pread(fd, 30 + len(name), info.header_offset)
    # Local file header (APPNOTE 4.3.7): signature, …, name length at 26, extra at 28.
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile("Bad magic number for file header")
    if header[30:] != name or int.from_bytes(header[26:28], "little") != len(name):
        raise zipfile.BadZipFile(f"File name in directory {info.orig_filename!r} and "
                                 f"header {header[30:]!r} differ.")
    start = info.header_offset + 30 + len(name) + int.from_bytes(header[28:30], "little")
    raw = os.pread(fd, info.compress_size, start)
    if len(raw) != info.compress_size:
        raise EOFError("the member is cut short")
    data = zlib.decompress(raw, -15) if info.compress_type == zipfile.ZIP_DEFLATED else raw
    if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
    return data


def _load_json(where: Path | str, data: bytes) -> dict[str, Any]:
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FeedError(where, f"invalid JSON: {exc}") from exc
    if type(record) is not dict:
        raise FeedError(where, f"an OSV record is a JSON object, not {type(record).__name__}")
    return record


def _load_yaml(where: Path | str, data: bytes) -> dict[str, Any]:
    try:
        record = _load_yaml_data(data)  # safe: no tags run code
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise FeedError(where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
                        line=mark.line + 1 if mark is not None else None) from exc
    if type(record) is not dict:
        raise FeedError(where, f"an OSV record is a YAML mapping, not {type(record).__name__}")
    return record


_ECOSYSTEMS: dict[str, Ecosystem] = {}  # memo: a zip repeats a handful of ecosystems
_NAMES: dict[tuple[str, str], str] = {}  # memo: distro errata repeat the same packages


def _ecosystem(raw: str) -> Ecosystem:
    eco = _ECOSYSTEMS.get(raw)
    if eco is None:
        eco = _ECOSYSTEMS[raw] = normalize_ecosystem(raw)
    return eco


def transform(record: dict[str, Any], raw: bytes, where: Path | str) -> Advisory | None:
    """One decoded OSV record as an Advisory; None for a non-security errata.

    ``where`` names the file (or ``archive!member``) in errors; ``raw`` is kept as
    ``Advisory.raw``.  Every malformed field raises FeedError naming it.
    """
    vuln_id = record.get("id")
    if type(vuln_id) is not str or not vuln_id:
        raise FeedError(where, "record has no string 'id'")
    if vuln_id.startswith(_NON_SECURITY_PREFIXES):
        return None
    try:
        return _transform(vuln_id, record, raw, where)
    except FeedError:
        raise
    except (TypeError, AttributeError, ValueError, KeyError) as exc:
        # A shape the explicit checks below did not foresee: still a FeedError, never a
        # traceback, and it names the record.
        raise FeedError(where, f"{vuln_id}: malformed record ({exc})") from exc


def _transform(vuln_id: str, record: dict[str, Any], raw: bytes,
               where: Path | str) -> Advisory:
    get = record.get
    affected_raw = get("affected") or ()
    if type(affected_raw) is not list and affected_raw != ():
        raise FeedError(where, f"{vuln_id}: 'affected' must be a list")

    # Ubuntu states its priority as a record-level severity of type "Ubuntu"
    # (https://github.com/canonical/ubuntu-security-notices/tree/main/osv).
    distro_rating: str | None = None
    cvss: list[CvssMetric] = []
    severities = get("severity") or ()
    if type(severities) is not list and severities != ():
        raise FeedError(where, f"{vuln_id}: 'severity' must be a list")
    for sev in severities:
        if type(sev) is not dict:
            raise FeedError(where, f"{vuln_id}: 'severity' entries must be objects")
        kind, score = sev.get("type"), sev.get("score")
        if type(score) is not str:
            continue  # an entry without a vector carries nothing to compute
        if kind in _CVSS_TYPES:
            # Invalid vectors are dropped: scores are computed, never taken on trust.
            metric = metric_from_vector(score, source=vuln_id)
            # Ubuntu repeats a vector once per scoring source; one metric per vector.
            if metric is not None and all(m.vector != metric.vector for m in cvss):
                cvss.append(metric)
        elif kind == "Ubuntu":
            distro_rating = score

    # Red Hat-family errata state their rating as the summary's prefix ("Important: …"),
    # https://access.redhat.com/security/updates/classification; it is the distribution's
    # own severity, used when no CVSS vector is known for a CVE.
    summary = get("summary")
    if distro_rating is None and type(summary) is str:
        prefix = _RH_RATING.match(summary)
        if prefix is not None:
            distro_rating = prefix.group(1).lower()

    families: set[str] = set()
    affected = []
    # Distribution errata repeat one ranges list for every binary package of an update
    # (an AlmaLinux record: 14 on average): equal to the last one, it is the same answer.
    last_raw: Any = None
    last_ranges: tuple[AffectedRange, ...] = ()
    workaround = _workaround(get("database_specific"))
    for entry in affected_raw:
        if type(entry) is not dict:
            raise FeedError(where, f"{vuln_id}: 'affected' entries must be objects")
        package = entry.get("package")
        if type(package) is not dict:
            raise FeedError(where, f"{vuln_id}: 'affected[].package' must be an object")
        raw_eco, raw_name = package.get("ecosystem"), package.get("name")
        if type(raw_eco) is not str or type(raw_name) is not str:
            raise FeedError(where, f"{vuln_id}: 'affected[].package' needs string "
                                   "'ecosystem' and 'name'")
        eco = _ecosystem(raw_eco)
        family = eco.partition(":")[0]
        families.add(family)

        versions = entry.get("versions") or ()
        if type(versions) is not list and versions != ():
            raise FeedError(where, f"{vuln_id}: 'affected[].versions' must be a list")

        rating = distro_rating
        es, ds = entry.get("ecosystem_specific"), entry.get("database_specific")
        if es or ds:  # most records have neither: skip the lookups
            es = es if type(es) is dict else {}
            ds = ds if type(ds) is dict else {}
            # Debian's OSV records carry the tracker urgency per package.
            rating = es.get("urgency") or ds.get("urgency") or rating
            if workaround is None:
                workaround = _workaround(es) or _workaround(ds)

        key = (eco, raw_name)
        name = _NAMES.get(key)
        if name is None:
            if len(_NAMES) > 262144:
                _NAMES.clear()
            name = _NAMES[key] = normalize_name(eco, raw_name)
        ranges = entry.get("ranges")
        if ranges and ranges != last_raw:
            last_raw, last_ranges = ranges, _ranges(ranges, vuln_id, where)
        affected.append(AffectedPackage(
            ecosystem=eco,
            name=name,
            ranges=last_ranges if ranges else (),
            versions=tuple(map(str, versions)) if versions else (),
            severity=rating if type(rating) is str else None,
        ))

    return Advisory(
        id=AdvisoryId(vuln_id),
        source="osv",
        modified=_text(get("modified")),
        published=_text(get("published")),
        aliases=_aliases(record, vuln_id, families, where),
        summary=_text(get("summary")),
        details=_text(get("details")),
        cvss=tuple(cvss),
        affected=tuple(affected),
        references=_references(get("references"), vuln_id, where),
        workaround=workaround,
        withdrawn=bool(get("withdrawn")),
        raw=raw,
    )


def _text(value: Any) -> str | None:
    return value if type(value) is str else None


def _str_list(value: Any, field: str, vuln_id: str, where: Path | str) -> list[str]:
    if not value:
        return []
    if type(value) is not list or not all(type(v) is str for v in value):
        raise FeedError(where, f"{vuln_id}: '{field}' must be a list of strings")
    return value


def _aliases(record: dict[str, Any], vuln_id: str, families: set[str],
             where: Path | str) -> tuple[str, ...]:
    # ``related`` is not an alias (osv-schema: "closely related, not the same"), except
    # for the distributions' errata, which is what they use to say which CVEs they fix.
    aliases = list(_str_list(record.get("aliases"), "aliases", vuln_id, where))
    if families & _FIXES_UPSTREAM:
        for other in _str_list(record.get("upstream"), "upstream", vuln_id, where):
            aliases.append(other)
            # A USN's upstream is UBUNTU-CVE-…; the CVE behind it is what it fixes.
            if other.startswith(("UBUNTU-CVE-", "DEBIAN-CVE-")):
                aliases.append(other.partition("-")[2])
        aliases.extend(r for r in _str_list(record.get("related"), "related", vuln_id, where)
                       if r.startswith("CVE-"))
    if not aliases:
        return ()
    return tuple(a for a in dict.fromkeys(aliases) if a != vuln_id)


# (introduced, fixed) -> that one range, as a 1-tuple: ranges are immutable, share them.
_PAIRS: dict[tuple[str, str], tuple[AffectedRange]] = {}


def _ranges(ranges: Any, vuln_id: str, where: Path | str) -> tuple[AffectedRange, ...]:
    """Intervals from ECOSYSTEM and SEMVER ranges.

    Events are paired in order (https://ossf.github.io/osv-schema/#evaluation): an
    ``introduced`` opens an interval that the next ``fixed`` or ``last_affected`` closes;
    an interval still open at the end is unfixed.  A second ``introduced`` inside an open
    interval does not narrow it, and a ``fixed`` with nothing open closes nothing.
    """
    if not ranges:
        return ()
    if type(ranges) is not list:
        raise FeedError(where, f"{vuln_id}: 'affected[].ranges' must be a list")
    out: list[AffectedRange] = []
    for rng in ranges:
        if type(rng) is not dict:
            raise FeedError(where, f"{vuln_id}: 'affected[].ranges' entries must be objects")
        if rng.get("type") not in _VERSION_RANGE_TYPES:
            continue
        events = rng.get("events")
        if type(events) is not list:
            raise FeedError(where, f"{vuln_id}: 'affected[].ranges[].events' must be a list")
        if len(events) == 2:
            # Fast path for the common "introduced X, fixed Y" pair: distribution feeds
            # repeat the same pair for every binary package of an update.
            first, second = events
            if (type(first) is dict and type(second) is dict and len(first) == 1
                    and len(second) == 1 and "introduced" in first and "fixed" in second):
                key = (str(first["introduced"]), str(second["fixed"]))
                pair = _PAIRS.get(key)
                if pair is None:
                    if len(_PAIRS) > 65536:
                        _PAIRS.clear()
                    pair = _PAIRS[key] = (AffectedRange(introduced=key[0], fixed=key[1]),)
                if len(ranges) == 1:
                    # The whole answer, shared: the store serialises a shared tuple once.
                    return pair
                out.append(pair[0])
                continue
        opened: str | None = None
        is_open = False
        for event in events:
            if type(event) is not dict:
                raise FeedError(where, f"{vuln_id}: range events must be objects")
            if "introduced" in event:
                if not is_open:
                    opened, is_open = str(event["introduced"]), True
            elif "fixed" in event:
                if is_open:
                    out.append(AffectedRange(introduced=opened, fixed=str(event["fixed"])))
                    is_open = False
            elif "last_affected" in event and is_open:
                out.append(AffectedRange(introduced=opened,
                                         last_affected=str(event["last_affected"])))
                is_open = False
            # "limit" only bounds GIT range walks; it never ends an interval.
        if is_open:
            out.append(AffectedRange(introduced=opened))
    return tuple(out)


def _references(refs: Any, vuln_id: str, where: Path | str) -> tuple[Reference, ...]:
    if not refs:
        return ()
    if type(refs) is not list:
        raise FeedError(where, f"{vuln_id}: 'references' must be a list")
    out = []
    for ref in refs:
        if type(ref) is not dict or type(ref.get("url")) is not str:
            raise FeedError(where, f"{vuln_id}: 'references' entries need a string 'url'")
        kind = ref.get("type")
        out.append(Reference(url=ref["url"], type=kind.lower() if type(kind) is str else "web"))
    return tuple(out)


def _workaround(section: Any) -> str | None:
    """OSV has no workaround field; some databases put one in their *_specific object."""
    if type(section) is not dict:
        return None
    value = section.get("workaround") or section.get("workarounds")
    if type(value) is str:
        return value.strip() or None
    if type(value) is list:
        text = "\n".join(v.strip() for v in value if type(v) is str and v.strip())
        return text or None
    return None


# --- downloading ---------------------------------------------------------------------
