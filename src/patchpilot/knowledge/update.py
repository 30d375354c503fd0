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
import operator
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, select

from patchpilot import __version__
from patchpilot.db.dialect import upsert
from patchpilot.db.tables import feed_state
from patchpilot.errors import FeedDownloadError, FeedError, PatchPilotError
from patchpilot.knowledge import store
from patchpilot.knowledge.feeds.interface import Feed, Record, RecordKind
from patchpilot.knowledge.feeds.registry import FEEDS, feed_named

HEAD_BYTES = 4096
_SKIP_DIRS = {".git", "__pycache__", "node_modules"}
_SUFFIXES = (".json", ".yaml", ".yml", ".csv", ".gz", ".zip", ".md", ".xml")


_PARTS = operator.attrgetter("parts")


@dataclass(slots=True)
class Source:
    """One feed's input files from one place."""

    key: str  # "<feed>:<path relative to the root>"
    feed: Feed
    files: list[Path] = field(default_factory=list)

    def fingerprint(self) -> str:
        """Changes when a file is added, removed, rewritten, or PatchPilot is upgraded."""
        h = hashlib.sha256(f"{__version__}|{self.key}".encode())
        # Path order (by parts), without Path.__lt__ per comparison.
        for path in sorted(self.files, key=_PARTS):
            st = os.stat(path)
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


def _walk(root: Path) -> Iterator[tuple[str, str, list[str]]]:
    """(folder, folder relative to ``root`` or ".", feed-like file names) per folder.

    Plain strings, not ``Path`` objects: a full OSV mirror is tens of thousands of files,
    and ``pathlib`` parsing cost more than reading their heads.
    """
    top = os.fspath(root)
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        names = [n for n in sorted(filenames) if n.endswith(_SUFFIXES) or n in ("DSA", "DLA")]
        if names:
            yield dirpath, os.path.relpath(dirpath, top), names


def _head(path: str) -> bytes:
    """The first :data:`HEAD_BYTES` of a file (unbuffered: one read, no file object)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, HEAD_BYTES)
    finally:
        os.close(fd)


# A root with more first-level folders than this is one dataset partitioned by name
# (OSV's per-package folders), not a mirror of several feeds: it is one source.
_MAX_GROUPS_PER_ROOT = 32


def discover(roots: Iterable[Path], feeds: Iterable[Feed] = FEEDS) -> list[Source]:
    """Every source under ``roots``: each file goes to the first feed that claims it.

    A source is one feed's files under one first-level folder of a root (``osv/pypi``
    and ``osv/go`` of ``--from osv`` are two sources), or one zip file.
    """
    feeds = tuple(feeds)
    sources: dict[str, Source] = {}
    labels: dict[str, Path] = {}
    for root in roots:
        root = root.expanduser()
        if not root.exists():
            raise FeedError(root, "no such file or directory")
        home = root if root.is_dir() else root.parent
        label = home.name
        # Two folders of one name in one update (…/ubuntu/osv and …/data/osv) stay apart.
        while labels.setdefault(label, home.resolve()) != home.resolve():
            label = f"{home.parent.name}-{label}"
        found: dict[tuple[str, str], list[Path]] = {}
        last: Feed | None = None
        folders: Iterable[tuple[str, str | None, list[str]]] = (
            [(os.fspath(root), None, [root.name])] if root.is_file() else _walk(root))
        for dirpath, rel_dir, names in folders:
            # The source a file belongs to by default: a root that is a file is its own;
            # otherwise the first-level folder under the root ("." for the root's files).
            top = "." if rel_dir is None or rel_dir == "." else rel_dir.split(os.sep, 1)[0]
            # A child path without parsing it again (``folder / name`` costs five times
            # as much, per file of a mirror): pathlib's own helper where there is one.
            folder = Path(dirpath)
            child = getattr(folder, "_make_child_relpath", folder.joinpath)
            for name in names:
                full = dirpath if rel_dir is None else f"{dirpath}{os.sep}{name}"
                path = root if rel_dir is None else child(name)
                head = _head(full)
                # Files of a folder are nearly always of one format: ask the feed that
                # claimed the previous file first (no file is claimed by two feeds; tests
                # check it).
                for feed in (last, *feeds) if last is not None else feeds:
                    if feed.claims(path, head):
                        last = feed
                        if rel_dir is None:
                            group = name
                        elif (getattr(feed, "source_per_file", False)
                              or (name.endswith(".zip") and len(name) > 4)):  # suffix .zip
                            group = name if rel_dir == "." else os.path.join(rel_dir, name)
                        else:
                            group = top
                        found.setdefault((feed.name, group), []).append(path)
                        break
        per_feed: dict[str, int] = {}
        for feed_name, _ in found:
            per_feed[feed_name] = per_feed.get(feed_name, 0) + 1
        by_name = {f.name: f for f in feeds}
        for (feed_name, group), paths in found.items():
            if (per_feed[feed_name] > _MAX_GROUPS_PER_ROOT and not group.endswith(".zip")
                    and not getattr(by_name[feed_name], "source_per_file", False)):
                group = "."
            key = f"{feed_name}:{label}/{group}".removesuffix("/.")
            sources.setdefault(key, Source(key, by_name[feed_name])).files.extend(paths)
    return sorted(sources.values(), key=lambda s: s.key)


def _read_files(feed: Feed, paths: list[Path]) -> list[Record]:
    records: list[Record] = []
    for path in paths:
        try:
            records.extend(feed.read(path))
        except FeedError:
            raise
        except PatchPilotError as exc:
            raise FeedError(path, str(exc)) from exc
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise FeedError(path, f"{exc.__class__.__name__}: {exc}") from exc
    return records


# A unit of reading work: some whole files, or one part of a large file (a zip).
Unit = tuple[list[Path], int, int]  # (files, part, parts); whole files: part 0 of 1


def _read_batch(feed_name: str, source_key: str, unit: Unit) -> list[Any]:
    """Read one unit of a feed's files: advisories come back as rows ready to write.

    Runs in worker processes, so it takes the feed by name and returns picklable values:
    a unit's advisories as one :class:`~patchpilot.knowledge.store.AdvisoryRows` of the
    source (the writing process only inserts them, on a first load), other records as
    they are.
    """
    feed = feed_named(feed_name)
    paths, part, parts = unit
    if parts > 1:
        try:
            records: list[Any] = list(feed.read_part(paths[0], part, parts))  # type: ignore[attr-defined]
        except PatchPilotError as exc:
            raise exc if isinstance(exc, FeedError) else FeedError(paths[0], str(exc)) from exc
        except (OSError, ValueError) as exc:
            raise FeedError(paths[0], f"{exc.__class__.__name__}: {exc}") from exc
    else:
        records = _read_files(feed, paths)
    if feed.kind is RecordKind.ADVISORY:
        return [store.advisory_rows(store.prepare_advisories(records)[0], feed.name,
                                    source_key, feed.priority)]
    return records


# Below this many files in all, a process pool costs more than it saves.
PARALLEL_MIN_FILES = 400
_BATCH = 200
_READER_NICENESS = 5  # added to the reading workers' niceness
_PART_BYTES = 512 << 10  # a zip is read in parts of about this many compressed bytes


def _units(source: Source) -> list[Unit]:
    """The source's files as units of work: batches of small files, parts of big zips."""
    units: list[Unit] = []
    small: list[Path] = []
    splits = hasattr(source.feed, "read_part")
    for path in source.files:
        if splits and path.suffix == ".zip" and (size := os.stat(path).st_size) > _PART_BYTES:
            parts = min(64, size // _PART_BYTES + 1)
            units.extend(([path], k, parts) for k in range(parts))
        else:
            small.append(path)
    units.extend((small[i:i + _BATCH], 0, 1) for i in range(0, len(small), _BATCH))
    return units


def _work(units: list[Unit]) -> int:
    """Roughly how many files' worth of work the units are (to decide on a pool)."""
    return sum(len(files) if parts == 1 else _BATCH // 2 for files, _, parts in units)


def _fork_context():  # type: ignore[no-untyped-def]
    import multiprocessing

    # fork: workers inherit the imported modules, so a pool starts in milliseconds.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def _write(conn, source: Source, records: list[Any]) -> store.WriteStats:  # type: ignore[no-untyped-def]
    feed = source.feed
    if feed.kind is RecordKind.ADVISORY:
        return store.write_advisory_rows(conn, feed.name, source.key, feed.priority, records)
    if feed.kind is RecordKind.CVE:
        stats = store.write_cve_records(conn, feed.name, source.key, records)  # type: ignore[arg-type]
        # What the records say about CPE-named products (devices' firmware): advisories of
        # the same source, so a record that stops naming a product removes its rows.
        store.write_advisories(conn, feed.name, source.key,
                               getattr(feed, "affected_priority", 0),
                               store.cpe_advisories(records))  # type: ignore[arg-type]
        return stats
    if feed.kind is RecordKind.KEV:
        if not records:
            # An empty catalogue is a broken download, never CISA's real answer.
            raise FeedError(source.files[0], "the KEV catalogue has no entries")
        return store.write_kev(conn, records)  # type: ignore[arg-type]
    if feed.kind is RecordKind.MSRC:
        return store.write_msrc(conn, records)
    if feed.kind is RecordKind.JVN:
        return store.write_jvn(conn, feed.name, source.key, feed.priority, records)
    return store.write_epss(conn, records)  # type: ignore[arg-type]


_COPY_AFTER = 2000  # advisories (some MB of log) between two copies of the log


class _Writer:
    """The connection a load writes its sources with, each in its own transaction.

    On SQLite it also copies the write-ahead log into the database itself.  SQLite does
    that in the commit that leaves more than 1,000 pages in the log: a full load writes
    some 60 MB, so a dozen times, each time copying again the index pages every source
    touches and waiting for two syncs, while the reading workers wait for their results
    to be taken.  Here automatic checkpoints are off while the load writes; once a few
    thousand advisories are committed, a passive checkpoint runs in a thread on a
    connection of its own (SQLite copies and syncs without the GIL) while this one goes
    on writing, and one more at the end copies what the last sources wrote.  No commit
    is less durable for it: with ``synchronous=NORMAL`` a commit in WAL mode is never
    synced, a power loss can only take back the last transactions whole (a source's
    advisories with its ``feed_state`` row, so the next update loads them again), and
    the database stays consistent either way.
    """

    def __init__(self, engine: Engine, conn: Connection) -> None:
        self.engine = engine
        self.conn = conn
        # A database in WAL mode (a file; an in-memory one has no log to copy).
        self.sqlite = (conn.dialect.name == "sqlite"
                       and conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal")
        self.copier = ThreadPoolExecutor(max_workers=1) if self.sqlite else None
        self.copying: Future[None] | None = None
        self.uncopied = 0  # advisories committed since the last copy began

    def committed(self, written: int) -> None:
        """After a commit of ``written`` records: start copying the log into the database
        when enough is new there, unless a copy is under way."""
        self.uncopied += written
        if (self.copier is None or self.uncopied < _COPY_AFTER
                or (self.copying is not None and not self.copying.done())):
            return
        if self.copying is not None:
            self.copying.result()  # its error, if it had one
        self.uncopied = 0
        self.copying = self.copier.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def finish(self) -> None:
        """Wait for the copy under way (raising its error) and stop the thread."""
        if self.copier is not None:
            self.copier.shutdown(wait=True)
            if self.copying is not None:
                self.copying.result()


@contextmanager
def _writer(engine: Engine) -> Iterator[_Writer]:
    """A :class:`_Writer` for the duration of a load."""
    with engine.connect() as conn:
        writer = _Writer(engine, conn)
        conn.commit()  # each source begins its own transaction
        if not writer.sqlite:
            yield writer
            return
        before = int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() or 0)
        conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        conn.commit()
        try:
            yield writer
        finally:
            conn.rollback()
            conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={before}")
            writer.finish()
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            conn.commit()


def _write_source(writer: _Writer, source: Source, fingerprint: str, records: list[Any],
                  started: float, cursor: str | None) -> SourceResult:
    conn = writer.conn
    try:
        with conn.begin():
            stats = _write(conn, source, records)
            upsert(conn, feed_state, [{
                "source": source.key, "feed": source.feed.name, "kind": str(source.feed.kind),
                "fingerprint": fingerprint, "cursor": cursor, "records": stats.records,
                "updated_at": datetime.now(UTC)}], ("source",))
    except FeedError as exc:
        return SourceResult(source.key, source.feed.name, "failed", error=str(exc),
                            seconds=time.perf_counter() - started)
    writer.committed(stats.written)
    return SourceResult(source.key, source.feed.name, "loaded", stats.records, stats.written,
                        stats.removed, time.perf_counter() - started)


def load_sources(engine: Engine, sources: list[Source], *, force: bool = False,
                 progress: ProgressFn | None = None,
                 cursor: str | None = None) -> list[SourceResult]:
    """Load sources, each read completely and then written in one transaction.

    Reading (parsing JSON, YAML, CSV) is CPU-bound and dominates a load, so with enough
    files it runs in a pool of worker processes, one per core, for every source at once;
    meanwhile this process writes each source as soon as all of its files are read.
    """
    with engine.connect() as conn:
        known = dict(conn.execute(select(feed_state.c.source, feed_state.c.fingerprint)).all())
    results: dict[str, SourceResult] = {}
    todo: list[tuple[Source, str]] = []
    for source in sources:
        fingerprint = source.fingerprint()
        if known.get(source.key) == fingerprint and not force:
            results[source.key] = SourceResult(source.key, source.feed.name, "unchanged")
        else:
            todo.append((source, fingerprint))
    workers = min(os.cpu_count() or 1, 8)
    units = {s.key: _units(s) for s, _ in todo}
    pool = None
    if workers > 1 and sum(_work(u) for u in units.values()) >= PARALLEL_MIN_FILES:
        # The readers yield the processor to this process: every source's write waits
        # for it, and reading has the rest of the machine's time while it waits.
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=_fork_context(),
                                   initializer=os.nice, initargs=(_READER_NICENESS,))
    try:
        jobs: dict[str, list[Future[list[Any]]]] = {}
        if pool is not None:
            jobs = {s.key: [pool.submit(_read_batch, s.feed.name, s.key, u) for u in units[s.key]]
                    for s, _ in todo}
        with _writer(engine) as writer:
            for source, fingerprint in todo:
                started = time.perf_counter()
                records: list[Any] = []
                try:
                    for n, unit in enumerate(units[source.key], 1):
                        records.extend(jobs[source.key][n - 1].result() if pool is not None
                                       else _read_batch(source.feed.name, source.key, unit))
                        if progress:
                            progress(source.key, n, len(units[source.key]))
                except FeedError as exc:
                    for future in jobs.get(source.key, ()):
                        future.cancel()
                    results[source.key] = SourceResult(source.key, source.feed.name, "failed",
                                                       error=str(exc),
                                                       seconds=time.perf_counter() - started)
                    continue
                results[source.key] = _write_source(writer, source, fingerprint, records,
                                                    started, cursor)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return [results[s.key] for s in sources]


def load_source(engine: Engine, source: Source, *, force: bool = False,
                progress: ProgressFn | None = None, cursor: str | None = None) -> SourceResult:
    """Load one source (see :func:`load_sources`)."""
    return load_sources(engine, [source], force=force, progress=progress, cursor=cursor)[0]


def update_from(engine: Engine, roots: Iterable[Path], *, feeds: Iterable[Feed] = FEEDS,
                force: bool = False, progress: ProgressFn | None = None) -> list[SourceResult]:
    """Load every source found under ``roots`` (``--from DIR``)."""
    return load_sources(engine, discover(roots, feeds), force=force, progress=progress)


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
