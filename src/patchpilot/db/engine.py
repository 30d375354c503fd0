"""Engines for SQLite (WAL) and PostgreSQL (psycopg 3), and schema migration on start."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from patchpilot.errors import ConfigError

_MIGRATIONS = Path(__file__).parent / "migrations"
# A SQLite connection's page cache, KiB.
CACHE_KIB = 65536


def normalize_url(url: str) -> str:
    """Pick the psycopg 3 driver for plain ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys and a busy timeout,
    PostgreSQL sessions no JIT compilation."""
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several kinds here
        raise ConfigError(f"PATCHPILOT_DATABASE_URL is not a database URL: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        if (parsed.database and parsed.database != ":memory:"
                and not parsed.database.startswith("file:")):
            _create_private(Path(parsed.database))
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets readers (the dashboard) run while a feed update writes.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            cur.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, pool_pre_ping=True)

        @event.listens_for(engine, "connect")
        def _no_jit(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # PatchPilot's set-based statements carry large cost estimates and long CASE
            # expressions, which PostgreSQL's JIT compiles for seconds before a run that
            # takes less: re-prioritising 78k findings took 10.6 s with it, 1.8 s without.
            with dbapi_conn.cursor() as cur:
                cur.execute("SET jit = off")
            dbapi_conn.commit()

        return engine
    raise ConfigError(f"unsupported database {parsed.get_backend_name()!r}: "
                      "use sqlite:///PATH or postgresql://USER@HOST/DB")


# The page cache (KiB) of a SQLite connection while it streams a large result, against the
# 64 MiB it has otherwise; the sorter's in-memory share follows it.
STREAM_CACHE_KIB = 8192


@contextmanager
def low_memory(conn: Connection, *, cache_kib: int = STREAM_CACHE_KIB,
               spill_sorts: bool = True) -> Iterator[Connection]:
    """``conn`` set up to stream a large sorted result in little memory, then restored.

    SQLite sorts in the process: with ``temp_store=MEMORY`` and a 64 MiB cache, the
    ORDER BY of a million findings held every sorted row in memory (a 400 MB process for
    a CSV export).  While streaming, the cache is small and sorts spill to temporary files;
    afterwards the settings come back and the cache's memory is returned (the pool keeps
    the connection).  ``cache_kib`` and ``spill_sorts`` (temporary storage in files) are
    for writers that want a smaller cache but their statement journals in memory (an
    import).  PostgreSQL sorts on the server and streams through a server-side cursor:
    nothing to do.
    """
    if conn.dialect.name != "sqlite":
        yield conn
        return
    conn.exec_driver_sql(f"PRAGMA cache_size=-{cache_kib}")
    if spill_sorts:
        conn.exec_driver_sql("PRAGMA temp_store=FILE")
    try:
        yield conn
    finally:
        conn.exec_driver_sql("PRAGMA temp_store=MEMORY")
        conn.exec_driver_sql(f"PRAGMA cache_size=-{CACHE_KIB}")
        conn.exec_driver_sql("PRAGMA shrink_memory")


def _create_private(path: Path) -> None:
    """Create the SQLite file ``path`` (and its folder) readable by its owner only.

    The database holds token hashes, session hashes and every host's inventory: 0600,
    whatever the umask.  Created here, before SQLite opens it, because SQLite creates a
    missing file with 0644 & ~umask; its -wal and -shm files take the main file's
    permission bits, so they are 0600 too.  An existing file keeps its mode (an
    administrator may have chosen another).  A folder that cannot be made (a parent that
    is a file, no permission) is a ConfigError naming it, not a traceback.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise ConfigError(f"cannot create the database {path}: "
                          f"{exc.strerror or exc.__class__.__name__}"
                          f"{f' ({exc.filename})' if exc.filename else ''}; "
                          "set PATCHPILOT_HOME or PATCHPILOT_DATABASE_URL to a "
                          "writable place") from exc
    os.close(fd)


def write_problem(engine: Engine) -> str | None:
    """Why the database cannot be written to, or None when it can.

    A real write attempt, rolled back, so nothing is left behind: an ``UPDATE`` that
    matches no row still makes SQLite begin a write transaction (refused on a read-only
    file or a read-only open: SQLITE_READONLY) and PostgreSQL check the transaction's
    read-only state (a standby, ``default_transaction_read_only``).  File-mode checks
    would not be honest: root ignores them, and a read-only mount or open is not a mode.
    On SQLite the probe waits at most 0.2 s for the write lock: a lock held by another
    writer means the database is writable, just busy.
    """
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA busy_timeout=200")
            try:
                conn.execute(text("UPDATE feed_state SET records = records WHERE 1 = 0"))
            finally:
                conn.rollback()
                if engine.dialect.name == "sqlite":
                    conn.exec_driver_sql("PRAGMA busy_timeout=30000")
    except DBAPIError as exc:
        if is_read_only(exc):
            return f"read-only: {str(exc.orig).splitlines()[0]}"
        if "locked" in str(exc.orig) or "busy" in str(exc.orig):
            return None
        raise
    return None


def is_read_only(exc: BaseException) -> bool:
    """Whether ``exc`` says the database refuses writes: SQLite's SQLITE_READONLY (8, and
    its extended codes) or PostgreSQL's read_only_sql_transaction (SQLSTATE 25006)."""
    orig = getattr(exc, "orig", exc)
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF == 8:
        return True
    return (getattr(orig, "sqlstate", None) == "25006"
            or "readonly database" in str(orig) or "read-only transaction" in str(orig))


def _alembic_config(connection: Connection):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade_schema(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is current)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.begin() as conn:
        cfg = _alembic_config(conn)
        head = ScriptDirectory.from_config(cfg).get_current_head()
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
        command.upgrade(cfg, "head")


def connect(url: str) -> Engine:
    """An engine whose schema is current: what every command starts with."""
    engine = make_engine(url)
    try:
        upgrade_schema(engine)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - surface connection problems as one clear error
        raise ConfigError(f"cannot open the database {engine.url.render_as_string()}: "
                          f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}") from exc
    return engine


def require_writable(engine: Engine) -> None:
    """A ConfigError naming the database unless it can be written to.

    For the long-running commands (server, worker): on a read-only database they would
    start and then fail request after request, job after job.  Commands that only read
    (listings, reports) do not call this, so a read-only copy can still be queried.
    """
    try:
        problem = write_problem(engine)
    except Exception as exc:  # noqa: BLE001 - one clear line, as connect's
        raise ConfigError(f"cannot open the database {engine.url.render_as_string()}: "
                          f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}") from exc
    if problem:
        raise ConfigError(f"the database {engine.url.render_as_string()} is {problem}")


def optimize(engine: Engine) -> None:
    """Refresh the query planner's statistics where the data has changed enough.

    SQLite plans without statistics until ``ANALYZE`` runs, and then picks, e.g., the
    findings list's order index over a selective search index; ``PRAGMA optimize`` with
    the "check every table" flag (0x10000) analyses only the tables that changed a lot
    since, so calling it often (idle workers do) is cheap.  PostgreSQL's autovacuum
    keeps its own statistics.
    """
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        try:
            conn.exec_driver_sql("PRAGMA optimize=0x10002")
            conn.commit()
        except OperationalError as exc:
            # Best effort: another writer held the database past the busy timeout (an
            # import, a feed load); the next idle round analyses instead.
            if "locked" not in str(exc):
                raise
            conn.rollback()
