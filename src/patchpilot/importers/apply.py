"""Import one report: parse, find or create its assets, apply its findings under the
scanner's producer, keep its informational items as asset facts, prioritise -- in one
transaction.

* Producer: ``importer:<scanner>`` (``importer:tenable`` for ``.nessus`` and Tenable CSV
  alike), ``importer:<scanner>:<scope>`` with ``--scope``: a re-import closes only that
  producer's findings, and only on the assets the report covers (an asset the report
  names, findings or not).  What comes back reopens; triage decisions stand.
* The same file twice changes nothing: its SHA-256 digest is kept per producer, and a
  file already imported is answered "duplicate" without being read again.
* ``dry_run``: everything is done in the transaction and rolled back -- the summary says
  what the import would change.
* A malformed file is refused with its line, before anything is written: the report is
  parsed whole before the transaction opens.
"""

from __future__ import annotations

import hashlib
import operator
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.engine import Connection

from patchpilot.audit import audit
from patchpilot.clock import now_utc
from patchpilot.db.dialect import insert_rows
from patchpilot.db.engine import low_memory
from patchpilot.db.tables import asset_facts, assets, imports
from patchpilot.findings.events import IMPORT_FINISHED, record_event
from patchpilot.findings.ingest import find_assets
from patchpilot.findings.lifecycle import apply_findings_many_in
from patchpilot.findings.model import Finding
from patchpilot.findings.summary import refresh as refresh_summary
from patchpilot.importers import registry
from patchpilot.importers.convert import findings_for
from patchpilot.importers.model import Format, ReportItem, Skipped, Target, read_report
from patchpilot.inventory.model import AssetIdentity
from patchpilot.scoring.apply import reprioritise_assets

QUEUED, RUNNING, DONE, FAILED, DUPLICATE = "queued", "running", "done", "failed", "duplicate"

Progress = Callable[[int, int], None]  # (bytes read, file size)


class _Rollback(Exception):
    """Raised inside a dry run's transaction to undo it."""


@dataclass
class ImportSummary:
    """What one import did (or, in a dry run, would do)."""

    file: str
    format: str
    producer: str
    digest: str
    assets: int = 0  # assets the report covers
    assets_created: list[str] = field(default_factory=list)
    findings: int = 0  # findings the report gives (one per vulnerability, asset, package)
    new: int = 0
    reopened: int = 0
    fixed: int = 0  # closed: no longer reported on an asset the report covers
    unchanged: int = 0
    triaged: int = 0  # new or reopened findings a triage decision covered
    informational: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    duplicate: bool = False  # this file was imported before: nothing changed
    dry_run: bool = False
    seconds: float = 0.0
    import_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass
class Parsed:
    """A report read whole: its items by target, informational items, skipped notes.

    Items are kept without their target (the key says it), and equal items -- one plugin
    with the same text on a thousand hosts -- are one object: the report is held once
    per distinct item, and each distinct item becomes its Findings once.
    """

    targets: dict[tuple[Any, ...], Target] = field(default_factory=dict)
    items: dict[tuple[Any, ...], list[ReportItem]] = field(default_factory=dict)
    facts: dict[tuple[Any, ...], list[ReportItem]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    distinct: dict[tuple[Any, ...], ReportItem] = field(default_factory=dict)

    def share(self, item: ReportItem) -> ReportItem:
        """``item`` without its target and line, as the one object of its content."""
        content = _CONTENT(item)
        bare = self.distinct.get(content)
        if bare is None:
            bare = replace(item, target=_NO_TARGET, line=None)
            if any(isinstance(v, str) and "\x00" in v for v in content):
                bare = _without_nul(bare)
            self.distinct[content] = bare
        return bare


_NO_TARGET = Target()


def _without_nul(value: Any) -> Any:
    """A report's value with NUL characters removed (a binary's version string read by a
    scanner: PostgreSQL text cannot hold them, and no reader wants them)."""
    changes = {f.name: getattr(value, f.name).replace("\x00", "") for f in fields(value)
               if isinstance(getattr(value, f.name), str) and "\x00" in getattr(value, f.name)}
    return replace(value, **changes) if changes else value
# SQLite's page cache during an import (KiB).
_CACHE_KIB = 16384
# An item's content: every field but its target and line, read in one call.
_CONTENT = operator.attrgetter(*(f.name for f in fields(ReportItem)
                                 if f.name not in ("target", "line")))
# How many assets' findings one step of an import builds and applies (the transaction
# is still one): memory stays bounded by a step, not the report.
_ASSETS_PER_STEP = 1000


def producer_of(fmt: Format, scope: str | None) -> str:
    """The producer an import's findings belong to."""
    return f"importer:{fmt.producer}" + (f":{scope}" if scope else "")


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of ``path``."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class _Counting:
    """A binary stream that reports how far it has been read."""

    def __init__(self, stream: IO[bytes], size: int, progress: Progress | None) -> None:
        self._stream = stream
        self._size = size
        self._progress = progress
        self._read = 0
        self._next = 0

    def _advance(self, n: int) -> None:
        self._read += n
        if self._progress is not None and self._read >= self._next:
            self._progress(self._read, self._size)
            self._next = self._read + max(self._size // 50, 1 << 16)

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._advance(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        n = self._stream.readinto(buffer)  # type: ignore[attr-defined]
        self._advance(n or 0)
        return n or 0

    def readable(self) -> bool:
        return True

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self._advance(len(line))
            yield line

    def readline(self, limit: int = -1) -> bytes:
        line = self._stream.readline(limit)
        self._advance(len(line))
        return line

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    @property
    def closed(self) -> bool:
        return self._stream.closed

    def close(self) -> None:  # the caller's stream is closed by its owner
        pass

    def flush(self) -> None:
        pass

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False


def parse_report(fmt: Format, stream: IO[bytes], name: str, default: Target,
                 progress: Progress | None = None, size: int = 0) -> Parsed:
    """Read the whole report into items by target (the ``default`` target for items
    whose report names none)."""
    parsed = Parsed()
    reader = _Counting(stream, size, progress)
    for row in read_report(fmt, reader, name):  # type: ignore[arg-type]
        if isinstance(row, Skipped):
            parsed.skipped[row.reason] = parsed.skipped.get(row.reason, 0) + 1
            continue
        target = row if isinstance(row, Target) else row.target
        if target.empty:
            target = default
        key = target.key
        known = parsed.targets.get(key)
        if known is None or (target.os and not known.os):
            parsed.targets[key] = _without_nul(target)
        if isinstance(row, ReportItem):
            bucket = parsed.facts if row.informational else parsed.items
            bucket.setdefault(key, []).append(parsed.share(row))
    if progress is not None:
        progress(size, size)
    return parsed


def _identity(target: Target) -> AssetIdentity:
    return AssetIdentity(hostname=target.hostname, fqdn=target.fqdn,
                         ip_addresses=[target.ip] if target.ip else [],
                         artifact=target.artifact)


def _assets_for(conn: Connection, targets: list[Target], producer: str, now: datetime,
                created: list[str]) -> list[int]:
    """The asset of each target: found by the one asset-identity lookup, else created
    (once, when several targets of the report name the same new asset), marked as
    discovered by ``producer``."""
    found = find_assets(conn, [_identity(t) for t in targets])
    new: dict[str, int] = {}  # identity value -> index in rows
    rows: list[dict[str, Any]] = []
    slot: list[int | None] = []
    for target, asset_id in zip(targets, found, strict=True):
        if asset_id is not None:
            slot.append(None)
            continue
        values = [v for v in (target.artifact, target.fqdn, target.hostname, target.ip) if v]
        index = next((new[v] for v in values if v in new), None)
        if index is None:
            index = len(rows)
            name = (target.hostname or target.fqdn or target.artifact or target.ip
                    or "unnamed")
            created.append(name)
            rows.append({"name": name[:300], "fqdn": target.fqdn, "artifact": target.artifact,
                         "ip_addresses": orjson.dumps([target.ip] if target.ip else []).decode(),
                         "os": (target.os or None) and target.os[:200], "first_seen": now,
                         "last_seen": now, "tags": "[]", "attributes": "{}",
                         "discovered_by": producer})
        for v in values:
            new.setdefault(v, index)
        slot.append(index)
    ids: list[int] = []
    if rows:
        result = conn.execute(insert(assets).returning(assets.c.id,
                                                       sort_by_parameter_order=True), rows)
        ids = [int(i) for i in result.scalars()]
    return [asset_id if asset_id is not None else ids[index]  # type: ignore[index]
            for asset_id, index in zip(found, slot, strict=True)]


def _fact_rows(asset_id: int, producer: str, items: list[ReportItem],
               now: datetime) -> list[dict[str, Any]]:
    return [{"asset_id": asset_id, "producer": producer, "fact_id": i.scanner_id[:200],
             "title": (i.title or "")[:500] or None, "port": i.port,
             "protocol": (i.protocol or None) and i.protocol[:20],
             "service": (i.service or None) and i.service[:100],
             "detail": i.output or i.description, "seen_at": now} for i in items]


def apply_parsed(conn: Connection, parsed: Parsed, summary: ImportSummary, *,
                 producer: str, source: str, now: datetime) -> None:
    """Write what ``parsed`` says, in the caller's transaction; fill ``summary``."""
    asset_ids = dict(zip(parsed.targets, _assets_for(
        conn, list(parsed.targets.values()), producer, now, summary.assets_created),
        strict=True))
    ids = sorted(set(asset_ids.values()))
    summary.assets = len(ids)
    # Findings: every covered asset's complete report of this producer (empty for an asset
    # the report covers without findings: its old findings of this producer are fixed).
    # A step of assets at a time; a distinct item's findings are built once for all.
    built: dict[int, list[Finding]] = {}
    values_cache: dict[Any, dict[str, Any]] = {}
    # Targets by asset: two targets of the report naming one asset are one report of it.
    keys_of: dict[int, list[tuple[Any, ...]]] = {}
    for key, asset_id in asset_ids.items():
        keys_of.setdefault(asset_id, []).append(key)
    covered = list(keys_of)
    seen: set[tuple[int, str, str, str]] = set()
    for start in range(0, len(covered), _ASSETS_PER_STEP):
        step = [key for a in covered[start:start + _ASSETS_PER_STEP] for key in keys_of[a]]
        fresh = list({id(i): i for key in step for i in parsed.items.get(key, ())
                      if id(i) not in built}.values())
        for item, found in zip(fresh, findings_for(
                conn, fresh, feed=f"importer:{summary.format}", source=source), strict=True):
            built[id(item)] = found
        per_asset: dict[int, list[Finding]] = {}
        for key in step:
            found_here = per_asset.setdefault(asset_ids[key], [])
            for item in parsed.items.get(key, ()):
                found_here.extend(built[id(item)])
        for asset_id, found_here in per_asset.items():
            seen.update((asset_id, f.vuln_id, f.ecosystem, f.package) for f in found_here)
        counts = apply_findings_many_in(
            conn, [(a, found, True) for a, found in per_asset.items()], producer=producer,
            now=now, values_cache=values_cache)
        for c in counts:
            summary.new += c.new
            summary.reopened += c.reopened
            summary.fixed += c.fixed
            summary.unchanged += c.still_open
            summary.triaged += c.triaged
    summary.findings = len(seen)
    # Informational items: this producer's facts on each covered asset, replaced.
    for start in range(0, len(ids), _ASSETS_PER_STEP):
        chunk = ids[start:start + _ASSETS_PER_STEP]
        conn.execute(delete(asset_facts).where(asset_facts.c.asset_id.in_(chunk),
                                               asset_facts.c.producer == producer))
        conn.execute(update(assets).where(assets.c.id.in_(chunk)).values(last_seen=now))
    rows = [row for key, items in parsed.facts.items()
            for row in _fact_rows(asset_ids[key], producer, items, now)]
    summary.informational = len(rows)
    insert_rows(conn, asset_facts, rows)
    reprioritise_assets(conn, ids, now=now)
    refresh_summary(conn, ids, now=now)


def previous_import(conn: Connection, digest: str, producer: str) -> int | None:
    """The id of a finished import of the same file by the same producer, if any."""
    return conn.execute(select(imports.c.id).where(
        imports.c.digest == digest, imports.c.producer == producer,
        imports.c.status == DONE).order_by(imports.c.id.desc()).limit(1)).scalar()


def import_file(engine: Engine, path: Path, *, name: str | None = None,
                format: str | None = None, scope: str | None = None,
                asset: str | None = None, dry_run: bool = False, actor: str = "cli",
                import_id: int | None = None, progress: Progress | None = None
                ) -> ImportSummary:
    """Import the report at ``path`` (``name``: its file name for messages and history).

    ``format``: the format's name, else detected by content.  ``asset``: the asset for
    items whose report names none (default: the file's name).  ``import_id``: the
    ``imports`` row of a queued job, updated instead of a new one.
    """
    started = time.monotonic()
    name = name or path.name
    with path.open("rb") as stream:
        fmt = registry.by_name(format) if format else registry.detect(
            registry.sniff(stream, name))
    producer = producer_of(fmt, scope)
    digest, size = file_digest(path)
    summary = ImportSummary(file=name, format=fmt.name, producer=producer, digest=digest,
                            dry_run=dry_run, import_id=import_id)
    if not dry_run:
        with engine.connect() as conn:
            earlier = previous_import(conn, digest, producer)
        if earlier is not None:
            summary.duplicate = True
            summary.seconds = round(time.monotonic() - started, 3)
            with engine.begin() as conn:
                summary.import_id = _record(conn, summary, import_id, actor=actor,
                                            status=DUPLICATE, scope=scope, asset=asset,
                                            size=size)
            return summary
    default = Target(artifact=asset or Path(name).stem or name)
    with path.open("rb") as stream:
        parsed = parse_report(fmt, stream, name, default, progress, size)
    summary.skipped = dict(sorted(parsed.skipped.items()))
    now = now_utc()
    try:
        # A small page cache (SQLite): a report's hundred MB of findings pass through it
        # instead of staying in it.
        with engine.begin() as conn, low_memory(conn, cache_kib=_CACHE_KIB,
                                                spill_sorts=False):
            apply_parsed(conn, parsed, summary, producer=producer, source=name, now=now)
            summary.seconds = round(time.monotonic() - started, 3)
            if dry_run:
                raise _Rollback
            summary.import_id = _record(conn, summary, import_id, actor=actor, status=DONE,
                                        scope=scope, asset=asset, size=size)
            record_event(conn, IMPORT_FINISHED, producer=producer, actor=actor, detail={
                "import_id": summary.import_id, "file": name, "format": fmt.name,
                "assets": summary.assets, "findings": summary.findings, "new": summary.new,
                "reopened": summary.reopened, "fixed": summary.fixed})
            audit(conn, actor, "import", name, {
                "import_id": summary.import_id, "format": fmt.name, "producer": producer,
                "digest": digest, "assets": summary.assets, "new": summary.new,
                "fixed": summary.fixed})
    except _Rollback:
        pass
    return summary


def _record(conn: Connection, summary: ImportSummary, import_id: int | None, *,
            actor: str, status: str, scope: str | None, asset: str | None,
            size: int) -> int:
    now = now_utc()
    values = {"file_name": summary.file[:500], "format": summary.format,
              "producer": summary.producer, "scope": scope, "asset": asset,
              "digest": summary.digest, "size": size, "status": status,
              "finished_at": now, "summary": orjson.dumps(summary.to_dict()).decode(),
              "error": None, "spool": None}
    if import_id is not None:
        conn.execute(update(imports).where(imports.c.id == import_id).values(**values))
        return import_id
    return int(conn.execute(insert(imports).values(
        created_by=actor, created_at=now, started_at=now, progress=size, total=size,
        **values).returning(imports.c.id)).scalar_one())


def spool_dir(home: Path) -> Path:
    """Where uploaded reports wait for their import job (removed once imported)."""
    folder = home / "imports"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def remove_quietly(path: str | os.PathLike[str] | None) -> None:
    """Delete a spooled file, ignoring one already gone."""
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
