"""``patchpilot db update``: find feed files, read them, write each source in one transaction.

A *source* is one feed's files from one place: a downloaded ``all.zip``, or a folder of a
``--from`` directory (its first two levels, e.g. ``osv/pypi``).  Each source is read
completely before anything is written, then written in one transaction, so a corrupt or
truncated file fails its source with an error naming the file and leaves what the
knowledge base held before untouched; the other sources still load.  A source whose
files have not changed since the last update (same names, sizes and times) is skipped.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import Engine, select

from patchpilot import __version__
from patchpilot.db.dialect import upsert
from patchpilot.db.tables import feed_state
from patchpilot.errors import FeedDownloadError, FeedError, PatchPilotError
from patchpilot.knowledge import store
from patchpilot.knowledge.feeds.interface import Feed, Record, RecordKind
from patchpilot.knowledge.feeds.registry import FEEDS

HEAD_BYTES = 4096
_SKIP_DIRS = {".git", "__pycache__", "node_modules"}
_SUFFIXES = (".json", ".yaml", ".yml", ".csv", ".gz", ".zip", ".md")


@dataclass(slots=True)
class Source:
    """One feed's input files from one place."""

    key: str  # "<feed>:<path relative to the root>"
    feed: Feed
    files: list[Path] = field(default_factory=list)

    def fingerprint(self) -> str:
        """Changes when a file is added, removed, rewritten, or PatchPilot is upgraded."""
        h = hashlib.sha256(f"{__version__}|{self.key}".encode())
        for path in sorted(self.files):
            st = path.stat()
            h.update(f"|{path}|{st.st_size}|{st.st_mtime_ns}".encode())
        return h.hexdigest()


@dataclass(slots=True)
class SourceResult:
    """What happened to one source."""

    source: str
    feed: str
    status: str  # "loaded", "unchanged", "failed"
    records: int = 0
    written: int = 0
    removed: int = 0
    seconds: float = 0.0
    error: str | None = None


ProgressFn = Callable[[str, int, int], None]  # (source key, files done, files total)


def _walk(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(_SUFFIXES) or name in ("DSA", "DLA"):
                yield Path(dirpath) / name


def _group(root: Path, path: Path) -> str:
    if root.is_file() or path.suffix == ".zip":
        return path.name if root.is_file() else str(path.relative_to(root))
    parts = path.relative_to(root).parent.parts
    return "/".join(parts[:2]) or "."


def discover(roots: Iterable[Path], feeds: Iterable[Feed] = FEEDS) -> list[Source]:
    """Every source under ``roots``: each file goes to the first feed that claims it."""
    feeds = tuple(feeds)
    sources: dict[str, Source] = {}
    for root in roots:
        root = root.expanduser()
        if not root.exists():
            raise FeedError(root, "no such file or directory")
        label = root.name if root.is_dir() else root.parent.name
        for path in _walk(root):
            with path.open("rb") as fh:
                head = fh.read(HEAD_BYTES)
            for feed in feeds:
                if feed.claims(path, head):
                    key = f"{feed.name}:{label}/{_group(root, path)}".rstrip("/.")
                    sources.setdefault(key, Source(key, feed)).files.append(path)
                    break
    return sorted(sources.values(), key=lambda s: s.key)


def _read_all(source: Source, progress: ProgressFn | None) -> list[Record]:
    records: list[Record] = []
    for done, path in enumerate(source.files, 1):
        try:
            records.extend(source.feed.read(path))
        except FeedError:
            raise
        except PatchPilotError as exc:
            raise FeedError(path, str(exc)) from exc
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise FeedError(path, f"{exc.__class__.__name__}: {exc}") from exc
        if progress and (done % 200 == 0 or done == len(source.files)):
            progress(source.key, done, len(source.files))
    return records


def _write(conn, source: Source, records: list[Record]) -> store.WriteStats:  # type: ignore[no-untyped-def]
    feed = source.feed
    if feed.kind is RecordKind.ADVISORY:
        return store.write_advisories(conn, feed.name, source.key, feed.priority,
                                      records)  # type: ignore[arg-type]
    if feed.kind is RecordKind.CVE:
        return store.write_cve_records(conn, feed.name, source.key, records)  # type: ignore[arg-type]
    if feed.kind is RecordKind.KEV:
        if not records:
            # An empty catalogue is a broken download, never CISA's real answer.
            raise FeedError(source.files[0], "the KEV catalogue has no entries")
        return store.write_kev(conn, records)  # type: ignore[arg-type]
    return store.write_epss(conn, records)  # type: ignore[arg-type]


def load_source(engine: Engine, source: Source, *, force: bool = False,
                progress: ProgressFn | None = None, cursor: str | None = None) -> SourceResult:
    """Read one source completely, then write it in one transaction."""
    started = time.perf_counter()
    fingerprint = source.fingerprint()
    with engine.connect() as conn:
        known = conn.execute(select(feed_state.c.fingerprint)
                             .where(feed_state.c.source == source.key)).scalar()
    if known == fingerprint and not force:
        return SourceResult(source.key, source.feed.name, "unchanged")
    try:
        records = _read_all(source, progress)
    except FeedError as exc:
        return SourceResult(source.key, source.feed.name, "failed", error=str(exc),
                            seconds=time.perf_counter() - started)
    try:
        with engine.begin() as conn:
            stats = _write(conn, source, records)
            upsert(conn, feed_state, [{
                "source": source.key, "feed": source.feed.name, "kind": str(source.feed.kind),
                "fingerprint": fingerprint, "cursor": cursor, "records": stats.records,
                "updated_at": datetime.now(UTC)}], ("source",))
    except FeedError as exc:
        return SourceResult(source.key, source.feed.name, "failed", error=str(exc),
                            seconds=time.perf_counter() - started)
    return SourceResult(source.key, source.feed.name, "loaded", stats.records, stats.written,
                        stats.removed, time.perf_counter() - started)


def update_from(engine: Engine, roots: Iterable[Path], *, feeds: Iterable[Feed] = FEEDS,
                force: bool = False, progress: ProgressFn | None = None) -> list[SourceResult]:
    """Load every source found under ``roots`` (``--from DIR``)."""
    return [load_source(engine, s, force=force, progress=progress)
            for s in discover(roots, feeds)]


def update_online(engine: Engine, cache_dir: Path, *, feeds: Iterable[Feed] = FEEDS,
                  force: bool = False, progress: ProgressFn | None = None,
                  client: httpx.Client | None = None) -> list[SourceResult]:
    """Download each feed from its official source into ``cache_dir``, then load it."""
    results: list[SourceResult] = []
    own = client is None
    client = client or httpx.Client(timeout=60, follow_redirects=True,
                                    headers={"User-Agent": f"patchpilot/{__version__}"})
    try:
        for feed in feeds:
            dest = cache_dir / feed.name
            dest.mkdir(parents=True, exist_ok=True)
            with engine.connect() as conn:
                since = conn.execute(select(feed_state.c.cursor)
                                     .where(feed_state.c.feed == feed.name)
                                     .order_by(feed_state.c.cursor.desc())).scalar()
            started = datetime.now(UTC).isoformat(timespec="seconds")
            try:
                feed.fetch(client, dest, since)
            except (FeedDownloadError, httpx.HTTPError, OSError) as exc:
                results.append(SourceResult(feed.name, feed.name, "failed",
                                            error=f"download failed: {exc}"))
                continue
            results.extend(load_source(engine, source, force=force, progress=progress,
                                       cursor=started) for source in discover([dest], [feed]))
    finally:
        if own:
            client.close()
    return results
