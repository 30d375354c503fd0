"""Backups of the database and their restore: SQLite's online backup API, PostgreSQL's
``pg_dump -Fc`` / ``pg_restore``.

A backup is one file.  On SQLite it is a copy made page by page through
:meth:`sqlite3.Connection.backup` while the server keeps running (writers wait a moment
between steps, never for the whole copy), then switched from WAL to a rollback journal so
the file stands alone.  On PostgreSQL it is ``pg_dump``'s custom format of the schema the
engine works in (``current_schema()``: ``public``, or the schema a ``search_path`` option
of the URL names), so a database that holds other things beside PatchPilot is not dumped
whole.

A restore refuses a target that holds data (any row outside ``alembic_version``) unless
``force``; it never mixes a backup into live data: the target's tables are dropped first.
A backup of an older schema is migrated to the newest after the restore; one of a newer
schema than this code knows is refused before anything is touched.  Both never load the
schema through :func:`patchpilot.db.connect`, which would migrate the database first (a
backup taken before an upgrade must be of the old schema).

Running processes: a backup is safe while the server and the workers run; a restore is
not -- stop them first (docs/install.md, "Backups").
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection

from patchpilot.clock import now_utc
from patchpilot.db.engine import upgrade_schema
from patchpilot.errors import PatchPilotError

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
# Pages copied per step of SQLite's online backup: 4 MiB at the default page size, so a
# writer waits milliseconds between steps rather than for the whole copy.
SQLITE_STEP_PAGES = 1024
# The Debian/Ubuntu and RHEL packages that bring pg_dump and pg_restore.
PG_CLIENT_HINT = ("install the PostgreSQL client tools of the server's major version "
                  "(Debian/Ubuntu: apt-get install postgresql-client-{major}; "
                  "RHEL/Alma/Rocky: dnf install postgresql{major})")
# pg_dump/pg_restore --verbose name each table as they reach its data.
_PG_TABLE_LINE = re.compile(r'(?:dumping contents of table|processing data for table) "([^"]+)"')
# A line of `pg_restore --list`: "215; 1259 16386 TABLE pp_x assets postgres" (dump id;
# catalog oid, object oid, kind, schema, name, owner).
_TOC_ENTRY = re.compile(r"^\d+;\s+\d+\s+\d+\s+(?P<kind>TABLE DATA|TABLE|SCHEMA|COMMENT|\S+)"
                        r"\s+(?P<schema>\S+)\s+(?P<name>\S+)")

Progress = Callable[[int, int], None]
"""``progress(done, total)``: pages (SQLite) or tables (PostgreSQL) copied so far."""


class BackupError(PatchPilotError):
    """A backup or restore that cannot be made; the message says what to do."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    """A finished backup."""

    path: Path
    backend: str
    """``sqlite`` or ``postgresql``."""
    revision: str | None
    """The schema revision (alembic) the backup holds."""
    size: int
    seconds: float


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """A finished restore."""

    backend: str
    revision: str | None
    """The schema revision the backup held."""
    head: str
    """The revision the database is at now (migrated when the backup was older)."""
    rows: dict[str, int]
    """Rows per table after the restore (and the migration)."""
    replaced: int
    """Rows the target held before and no longer does (only with ``force``)."""
    seconds: float


# --- what is in a database ------------------------------------------------------------


def head_revision() -> str:
    """The newest schema revision this code knows."""
    return _scripts().get_current_head() or ""


def known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this code's migrations."""
    try:
        return _scripts().get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown id
        return False


def schema_revision(conn: Connection) -> str | None:
    """The revision the database is at (None: no PatchPilot schema)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def table_counts(conn: Connection) -> dict[str, int]:
    """Rows of every table in the connection's schema, by table name."""
    prep = conn.dialect.identifier_preparer
    return {name: int(conn.execute(text(f"SELECT count(*) FROM {prep.quote(name)}")).scalar()
                      or 0)
            for name in sorted(inspect(conn).get_table_names())}


def data_rows(counts: dict[str, int]) -> int:
    """The rows that make a database non-empty: all but the schema revision's."""
    return sum(n for name, n in counts.items() if name != "alembic_version")


def backup_name(backend: str, now: datetime | None = None) -> str:
    """``patchpilot-YYYYmmdd-HHMMSS.sqlite`` or ``.pgdump`` (UTC): sorts by age."""
    stamp = (now or now_utc()).strftime("%Y%m%d-%H%M%S")
    return f"patchpilot-{stamp}.{'sqlite' if backend == 'sqlite' else 'pgdump'}"


def backup_kind(path: Path) -> str:
    """``sqlite`` or ``postgresql`` from the file's first bytes; a BackupError for
    anything else."""
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read the backup {path}: "
                          f"{exc.strerror or exc.__class__.__name__}") from exc
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is not a PatchPilot backup: neither a SQLite database nor a "
                      "pg_dump custom-format archive")


# --- backup ---------------------------------------------------------------------------


def backup_database(engine: Engine, dest_dir: Path, *, now: datetime | None = None,
                    progress: Progress | None = None) -> BackupResult:
    """Write a backup of ``engine``'s database into ``dest_dir`` (created, mode 0700 when
    new), named by :func:`backup_name`; the file is mode 0600 and appears only whole."""
    started = time.monotonic()
    backend = engine.dialect.name
    try:
        dest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise BackupError(f"cannot create the backup folder {dest_dir}: "
                          f"{exc.strerror or exc.__class__.__name__}") from exc
    target = dest_dir / backup_name(backend, now)
    if target.exists():
        raise BackupError(f"{target} exists already: wait a second or choose another folder")
    if backend == "sqlite":
        revision = _backup_sqlite(engine, target, progress)
    elif backend == "postgresql":
        revision = _backup_postgres(engine, target, progress)
    else:
        raise BackupError(f"cannot back up a {backend} database")
    return BackupResult(path=target, backend=backend, revision=revision,
                        size=target.stat().st_size, seconds=time.monotonic() - started)


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"the SQLite database {engine.url.render_as_string()} is not a "
                          "plain file: set PATCHPILOT_DATABASE_URL to sqlite:///PATH")
    return Path(database)


@contextmanager
def _partial(target: Path) -> Iterator[Path]:
    """A private temporary file beside ``target``, renamed onto it when the block ends
    without an error and removed otherwise."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial",
                                dir=target.parent)
    os.close(fd)
    partial = Path(name)
    try:
        yield partial
        os.replace(partial, target)
    finally:
        with suppress(FileNotFoundError):
            partial.unlink()


def _backup_sqlite(engine: Engine, target: Path, progress: Progress | None) -> str | None:
    source_path = _sqlite_path(engine)
    if not source_path.is_file():
        raise BackupError(f"no database at {source_path}: nothing to back up "
                          "(check PATCHPILOT_HOME and PATCHPILOT_DATABASE_URL)")
    source = sqlite3.connect(source_path, timeout=30)
    try:
        revision = _sqlite_revision(source)
        if revision is None:
            raise BackupError(f"no PatchPilot database at {source_path} (no schema in it): "
                              "nothing to back up (check PATCHPILOT_HOME and "
                              "PATCHPILOT_DATABASE_URL)")
        with _partial(target) as partial:
            dest = sqlite3.connect(partial)
            try:
                _sqlite_copy(source, dest, progress)
                # A backup is one file: the copied header says WAL; a rollback journal
                # makes it stand alone (no -wal/-shm beside it when opened).
                dest.execute("PRAGMA journal_mode=DELETE")
                problem = _quick_check(dest)
                if problem:
                    raise BackupError(f"the copy of {source_path} failed SQLite's check: "
                                      f"{problem}")
            finally:
                dest.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {source_path}: {exc}") from exc
    finally:
        source.close()
    return revision


def _sqlite_revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no such table: not a PatchPilot database (yet)
        return None
    return str(row[0]) if row else None


# --- files kept beside a backup (the keys the settings keep in the data directory) -----


def companion_path(backup: Path, name: str) -> Path:
    """Where the file ``name`` (``session.key``) of the backup ``backup`` lies:
    ``patchpilot-20250101-020000.session.key`` beside ``patchpilot-20250101-020000.sqlite``."""
    return backup.with_name(f"{backup.stem}.{name}")


def save_companions(backup: Path, files: dict[str, Path]) -> list[Path]:
    """Copy each existing file of ``files`` (by name) beside ``backup``, mode 0600; the
    copies made."""
    made = []
    for name, source in files.items():
        if not source.is_file():
            continue
        target = companion_path(backup, name)
        try:
            data = source.read_bytes()
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise BackupError(f"cannot copy {source} to {target}: "
                              f"{exc.strerror or exc.__class__.__name__}") from exc
        made.append(target)
    return made


@dataclass(frozen=True, slots=True)
class CompanionRestore:
    """What restoring one kept file means: copy ``source`` over ``target`` or not."""

    name: str
    source: Path
    target: Path
    action: str
    """``copy`` (the target is missing), ``same`` (identical: nothing to do) or
    ``replace`` (the target differs)."""


def plan_companions(backup: Path, files: dict[str, Path]) -> list[CompanionRestore]:
    """For each of ``files`` (name -> where the settings keep it) kept beside ``backup``,
    what restoring it would do."""
    plans = []
    for name, target in files.items():
        source = companion_path(backup, name)
        if not source.is_file():
            continue
        if not target.exists():
            action = "copy"
        elif target.read_bytes() == source.read_bytes():
            action = "same"
        else:
            action = "replace"
        plans.append(CompanionRestore(name, source, target, action))
    return plans


def restore_companions(plans: list[CompanionRestore]) -> None:
    """Carry out ``plans`` (the file replaced atomically, mode 0600)."""
    for plan in plans:
        if plan.action == "same":
            continue
        try:
            plan.target.parent.mkdir(parents=True, exist_ok=True)
            with _partial(plan.target) as partial:
                partial.write_bytes(plan.source.read_bytes())
                partial.chmod(0o600)
        except OSError as exc:
            raise BackupError(f"cannot restore {plan.target} from {plan.source}: "
                              f"{exc.strerror or exc.__class__.__name__}") from exc


# --- PostgreSQL through its own tools -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PgTarget:
    """How pg_dump/pg_restore reach the engine's database: a libpq connection string whose
    password, if any, is in a private password file (never on a command line, where the
    process list would show it)."""

    conninfo: str
    schema: str
    major: int


def _passfile_field(value: str) -> str:
    # .pgpass escapes ":" and "\\" with a backslash.
    return value.replace("\\", "\\\\").replace(":", "\\:")


@contextmanager
def _pg_target(engine: Engine) -> Iterator[_PgTarget]:
    from psycopg.conninfo import make_conninfo

    # The URL's parts, and its query as libpq parameters (options with a search_path,
    # sslmode, ...), as the driver passes them on.
    url = engine.url
    params = {k: str(v) for k, v in (("host", url.host), ("port", url.port),
                                     ("user", url.username), ("dbname", url.database))
              if v is not None}
    for key, value in url.query.items():
        params[key] = value if isinstance(value, str) else value[-1]
    try:
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar()
            path = conn.execute(text("SHOW search_path")).scalar()
            major = int(conn.execute(text("SHOW server_version_num")).scalar() or 0) // 10000
    except Exception as exc:  # noqa: BLE001 - any connection failure, said in one line
        raise BackupError(f"cannot connect to {engine.url.render_as_string()}: "
                          f"{str(exc).splitlines()[0]}") from exc
    if not schema:
        raise BackupError(f"the search_path of {engine.url.render_as_string()} ({path}) "
                          "names no existing schema: create it first")
    passfile = None
    try:
        if url.password:
            fd, name = tempfile.mkstemp(prefix="patchpilot-", suffix=".pgpass")
            passfile = Path(name)
            with os.fdopen(fd, "w") as fh:  # mode 0600 (mkstemp), as libpq requires
                fh.write(f"*:*:*:*:{_passfile_field(str(url.password))}\n")
            params["passfile"] = str(passfile)
        yield _PgTarget(conninfo=make_conninfo(**params), schema=str(schema), major=major)
    finally:
        if passfile is not None:
            passfile.unlink(missing_ok=True)


def _pg_tool(name: str, major: int) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} not found on PATH: " + PG_CLIENT_HINT.format(major=major))
    return found


def _run_pg(argv: list[str], *, what: str, total: int = 0,
            progress: Progress | None = None) -> str:
    """Run a PostgreSQL tool; its stderr lines that name a table advance ``progress``.
    A failure is a BackupError with the tool's own last lines."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines: list[str] = []
    done = 0
    assert proc.stderr is not None
    for line in proc.stderr:
        if _PG_TABLE_LINE.search(line):
            done += 1
            if progress is not None:
                progress(min(done, total), total)
        elif line.strip():
            lines.append(line.rstrip())
    stdout = proc.stdout.read() if proc.stdout else ""
    if proc.wait() != 0:
        said = [ln for ln in lines if "error" in ln.lower()] or lines
        raise BackupError(f"{what} failed ({Path(argv[0]).name} exit {proc.returncode}): "
                          + (" | ".join(said[-3:]) or "no message"))
    return stdout


def _quoted_pattern(name: str) -> str:
    """``name`` as a pg_dump/pg_restore pattern that matches exactly it."""
    return '"' + name.replace('"', '""') + '"'


def _backup_postgres(engine: Engine, target: Path, progress: Progress | None) -> str | None:
    with _pg_target(engine) as pg:
        pg_dump = _pg_tool("pg_dump", pg.major)
        with engine.connect() as conn:
            tables = len(inspect(conn).get_table_names())
            revision = schema_revision(conn)
        if revision is None:
            raise BackupError(f"no PatchPilot schema in {engine.url.render_as_string()} "
                              f"(schema {pg.schema}): nothing to back up (check "
                              "PATCHPILOT_DATABASE_URL)")
        with _partial(target) as partial:
            _run_pg([pg_dump, "--format=custom", "--verbose",
                     f"--schema={_quoted_pattern(pg.schema)}", f"--file={partial}",
                     f"--dbname={pg.conninfo}"],
                    what=f"pg_dump of schema {pg.schema}", total=tables, progress=progress)
    return revision


@dataclass(frozen=True, slots=True)
class _PgArchive:
    """What ``pg_restore --list`` says about an archive."""

    schema: str
    tables: int
    toc: list[str]


def _pg_archive(pg_restore: str, path: Path) -> _PgArchive:
    listing = _run_pg([pg_restore, "--list", str(path)], what=f"reading {path}")
    toc = listing.splitlines()
    schemas: set[str] = set()
    tables = 0
    for line in toc:
        entry = _TOC_ENTRY.match(line)
        if entry is None:
            continue
        if entry["kind"] == "TABLE DATA":
            tables += 1
        elif entry["kind"] == "TABLE":
            schemas.add(entry["schema"])
    if len(schemas) != 1:
        raise BackupError(f"{path} holds tables of {len(schemas)} schemas "
                          f"({', '.join(sorted(schemas)) or 'none'}); a PatchPilot backup "
                          "holds one")
    return _PgArchive(schema=schemas.pop(), tables=tables, toc=toc)


def _pg_archive_revision(pg_restore: str, path: Path) -> str | None:
    """The alembic revision in the archive's ``alembic_version`` data."""
    sql = _run_pg([pg_restore, "--data-only", "--table=alembic_version", "--file=-", str(path)],
                  what=f"reading {path}")
    copying = False
    for line in sql.splitlines():
        if line.startswith("COPY ") and "alembic_version" in line:
            copying = True
        elif copying:
            return None if line == "\\." else line.strip()
    return None


def _schema_entry(line: str) -> bool:
    """Whether a TOC line creates or comments the schema itself."""
    entry = _TOC_ENTRY.match(line)
    return entry is not None and (entry["kind"] == "SCHEMA" or (
        entry["kind"] == "COMMENT" and entry["schema"] == "-"
        and entry["name"] == "SCHEMA"))


def _drop_everything(conn: Connection) -> None:
    """Empty the connection's current schema (tables with their sequences, then any
    sequence or type left), keeping the schema itself and its grants."""
    prep = conn.dialect.identifier_preparer
    schema = conn.execute(text("SELECT current_schema()")).scalar()
    for name in inspect(conn).get_table_names():
        conn.execute(text(f"DROP TABLE IF EXISTS {prep.quote(name)} CASCADE"))
    for (name,) in conn.execute(text(
            "SELECT sequence_name FROM information_schema.sequences "
            "WHERE sequence_schema = :s"), {"s": schema}):
        conn.execute(text(f"DROP SEQUENCE IF EXISTS {prep.quote(name)} CASCADE"))
    for (name,) in conn.execute(text(
            "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = :s AND t.typtype IN ('e', 'd') "), {"s": schema}):
        conn.execute(text(f"DROP TYPE IF EXISTS {prep.quote(name)} CASCADE"))


# --- restore --------------------------------------------------------------------------


def restore_database(engine: Engine, path: Path, *, force: bool = False,
                     progress: Progress | None = None) -> RestoreResult:
    """Restore the backup ``path`` into ``engine``'s database, then migrate it to the
    newest schema.  A target holding data is refused unless ``force`` (then replaced)."""
    started = time.monotonic()
    kind = backup_kind(path)
    backend = engine.dialect.name
    if kind != backend:
        raise BackupError(f"{path} is a {kind} backup but PATCHPILOT_DATABASE_URL is "
                          f"{backend}: restore it into a {kind} database (moving between "
                          "the two is not a restore)")
    with engine.connect() as conn:
        before = table_counts(conn)
    held = data_rows(before)
    if held and not force:
        busiest = sorted(((n, t) for t, n in before.items() if t != "alembic_version"),
                         reverse=True)[:3]
        raise BackupError(
            f"the database {engine.url.render_as_string()} is not empty ({held:,} rows: "
            + ", ".join(f"{t} {n:,}" for n, t in busiest)
            + "); restore into an empty database, or add --force to replace its content")
    if backend == "sqlite":
        revision = _restore_sqlite(engine, path, progress)
    else:
        revision = _restore_postgres(engine, path, progress, has_tables=bool(before))
    engine.dispose()
    try:
        upgrade_schema(engine)
    except Exception as exc:  # noqa: BLE001 - say which step failed, keep the restored data
        raise BackupError(f"restored {path}, but migrating it from schema {revision} to "
                          f"{head_revision()} failed: {str(exc).splitlines()[0]}; run "
                          "`patchpilot db upgrade` after fixing the cause") from exc
    with engine.connect() as conn:
        rows = table_counts(conn)
        head = schema_revision(conn) or ""
    return RestoreResult(backend=backend, revision=revision, head=head, rows=rows,
                         replaced=held, seconds=time.monotonic() - started)


def _check_revision(path: Path, revision: str | None) -> None:
    if revision is None:
        raise BackupError(f"{path} holds no PatchPilot schema (no alembic_version row)")
    if not known_revision(revision):
        raise BackupError(f"{path} was made by a newer PatchPilot (schema {revision}; this "
                          f"one knows up to {head_revision()}): restore it with that version "
                          "or a later one")


def _restore_sqlite(engine: Engine, path: Path, progress: Progress | None) -> str | None:
    target_path = _sqlite_path(engine)
    try:
        source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open the backup {path}: {exc}") from exc
    try:
        revision = _sqlite_revision(source)
        _check_revision(path, revision)
        problem = _quick_check(source)
        if problem:
            raise BackupError(f"{path} is damaged (SQLite's check: {problem})")
        engine.dispose()  # no pooled connection of ours holds the target open
        dest = sqlite3.connect(target_path, timeout=30)
        try:
            # The copy replaces every page of the target, whatever it held.
            _sqlite_copy(source, dest, progress)
            dest.execute("PRAGMA journal_mode=WAL")
        finally:
            dest.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot restore {path} into {target_path}: {exc}") from exc
    finally:
        source.close()
    return revision


def _restore_postgres(engine: Engine, path: Path, progress: Progress | None, *,
                      has_tables: bool) -> str | None:
    with _pg_target(engine) as pg:
        pg_restore = _pg_tool("pg_restore", pg.major)
        archive = _pg_archive(pg_restore, path)
        revision = _pg_archive_revision(pg_restore, path)
        _check_revision(path, revision)
        renamed = archive.schema != pg.schema
        if renamed:
            with engine.connect() as conn:
                clash = conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"),
                                     {"s": archive.schema}).scalar()
            if clash:
                raise BackupError(
                    f"{path} holds schema {archive.schema!r}, which exists in this database "
                    f"beside the target schema {pg.schema!r}: restore into another "
                    f"database, or rename or drop {archive.schema!r} first")
        if has_tables:
            with engine.begin() as conn:
                _drop_everything(conn)
        _pg_restore_into(engine, pg, pg_restore, archive, path, progress)
    return revision


def _pg_restore_into(engine: Engine, pg: _PgTarget, pg_restore: str, archive: _PgArchive,
                     path: Path, progress: Progress | None) -> None:
    """pg_restore of everything but the schema itself (the target's exists, with its owner
    and grants), in one transaction."""
    prep = engine.dialect.identifier_preparer
    renamed = archive.schema != pg.schema
    entries = [line for line in archive.toc if not _schema_entry(line)]
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as fh:
        fh.write("\n".join(entries) + "\n")
        listing = Path(fh.name)
    try:
        if renamed:
            # The archive names its schema in every statement: restore under that name,
            # into the (empty) target renamed to it, then give the target its name back.
            with engine.begin() as conn:
                conn.execute(text(f"ALTER SCHEMA {prep.quote(pg.schema)} "
                                  f"RENAME TO {prep.quote(archive.schema)}"))
        try:
            _run_pg([pg_restore, "--verbose", "--no-owner", "--no-privileges",
                     "--exit-on-error", "--single-transaction", f"--use-list={listing}",
                     f"--dbname={pg.conninfo}", str(path)],
                    what=f"pg_restore of {path}", total=archive.tables, progress=progress)
        finally:
            if renamed:
                engine.dispose()
                with engine.begin() as conn:
                    conn.execute(text(f"ALTER SCHEMA {prep.quote(archive.schema)} "
                                      f"RENAME TO {prep.quote(pg.schema)}"))
    finally:
        listing.unlink(missing_ok=True)


def _scripts() -> Any:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return ScriptDirectory.from_config(cfg)


def _sqlite_copy(source: sqlite3.Connection, dest: sqlite3.Connection,
                 progress: Progress | None) -> None:
    """Copy ``source`` page by page into ``dest`` (the online backup API), reporting
    (pages done, pages in all) to ``progress``."""
    def step(_status: int, remaining: int, total: int) -> None:
        if progress is not None:
            progress(total - remaining, total)

    source.backup(dest, pages=SQLITE_STEP_PAGES, progress=step)


def _quick_check(conn: sqlite3.Connection) -> str | None:
    """What SQLite's quick_check finds wrong with ``conn``'s database, or None."""
    check = conn.execute("PRAGMA quick_check").fetchone()
    if check and check[0] == "ok":
        return None
    return str(check[0]) if check else "no answer"
