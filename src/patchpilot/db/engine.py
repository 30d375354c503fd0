"""Engines for SQLite (WAL) and PostgreSQL (psycopg 3), and schema migration on start."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import Connection

from patchpilot.errors import ConfigError

_MIGRATIONS = Path(__file__).parent / "migrations"


def normalize_url(url: str) -> str:
    """Pick the psycopg 3 driver for plain ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys and a busy timeout."""
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several kinds here
        raise ConfigError(f"PATCHPILOT_DATABASE_URL is not a database URL: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets readers (the dashboard) run while a feed update writes.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.execute("PRAGMA cache_size=-65536")
            cur.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    raise ConfigError(f"unsupported database {parsed.get_backend_name()!r}: "
                      "use sqlite:///PATH or postgresql://USER@HOST/DB")


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
        conn.exec_driver_sql("PRAGMA optimize=0x10002")
        conn.commit()
