"""Shared fixtures: real databases (SQLite and PostgreSQL), real data from ../shared/data.

Every test that takes ``engine`` runs twice: on a fresh SQLite file and on a fresh schema
of the PostgreSQL server at ``PATCHPILOT_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/test``).  Without PostgreSQL the PostgreSQL half is
skipped, except under ``CI=true``, where an unreachable PostgreSQL fails the run.

Migrating a fresh database costs a tenth of a second on SQLite and up to a second on a
loaded PostgreSQL, for each of thousands of tests: each test process migrates one template per
backend (with the real migrations) and ``engine`` gets a copy of it -- the SQLite file
copied, a PostgreSQL schema taken from a pool of migrated ones that earlier tests emptied.
Test sessions on PostgreSQL commit without waiting for the disk
(``synchronous_commit=off``): a crash of the test server loses nothing a test needs.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

import patchpilot.db
from patchpilot.db.engine import make_engine, upgrade_schema

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PATCHPILOT_SHARED_DATA", REPO.parent / "shared" / "data"))
PG_URL = os.environ.get("PATCHPILOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--update-golden`` rewrites golden output files instead of comparing with them."""
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests' golden files from the current output")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """Whether golden files are being refreshed."""
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data next to the repository (never copied into it)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real test data not found at {SHARED_DATA}; set PATCHPILOT_SHARED_DATA")
    return SHARED_DATA


_pg_state: dict[str, str | None] = {}


def _pg_problem() -> str | None:
    if "problem" not in _pg_state:
        try:
            eng = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"),
                                connect_args={"connect_timeout": 5})
            with eng.connect() as conn:
                conn.execute(text("SELECT 1"))
            eng.dispose()
            _pg_state["problem"] = None
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            _pg_state["problem"] = f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}"
    return _pg_state["problem"]


_admin: list[Engine] = []


def _pg_admin() -> Engine:
    """One engine per test process for creating and dropping the tests' schemas."""
    if not _admin:
        _admin.append(create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"),
                                    connect_args={"options": "-csynchronous_commit=off"}))
    return _admin[0]


def _schema_url(schema: str) -> str:
    return f"{PG_URL}?options=-csearch_path%3D{schema}%20-csynchronous_commit%3Doff"


def _create_schema() -> str:
    """A fresh, empty schema's name (PostgreSQL reachable, or the test fails/skips)."""
    problem = _pg_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable under CI=true: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    schema = f"pp_{uuid.uuid4().hex[:12]}"
    with _pg_admin().begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return schema


def pg_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh, private schema (dropped afterwards)."""
    schema = _create_schema()
    try:
        yield _schema_url(schema)
    finally:
        with _pg_admin().begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


_sqlite_template: list[Path] = []


def _sqlite_copy(path: Path) -> None:
    """Make ``path`` a copy of a migrated SQLite file made once per test process."""
    if not _sqlite_template:
        template = Path(os.environ.get("TMPDIR", "/tmp")) / f"pp-template-{uuid.uuid4().hex}.db"
        eng = make_engine(f"sqlite:///{template}")
        upgrade_schema(eng)
        eng.dispose()  # the last connection closed: the WAL is checkpointed into the file
        _sqlite_template.append(template)
    shutil.copyfile(_sqlite_template[0], path)


# Migrated PostgreSQL schemas of this test process that a finished test left emptied:
# the next test takes one instead of creating and migrating its own.
_pg_free: list[str] = []
_pg_shape: dict[str, object] = {}

_SHAPE = """SELECT (SELECT version_num FROM "{s}".alembic_version),
  (SELECT string_agg(table_name || '.' || column_name || ':' || data_type, ',' ORDER BY
     table_name, column_name) FROM information_schema.columns WHERE table_schema = '{s}'),
  (SELECT string_agg(indexname || ':' || indexdef, ',' ORDER BY indexname) FROM pg_indexes
     WHERE schemaname = '{s}'),
  (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{s}')"""


def _shape(conn: Connection, schema: str) -> tuple[object, ...]:
    """What a test may have changed in a schema's definition (a migration undone, a table
    altered): a schema whose shape differs from a freshly migrated one is not reused."""
    try:
        row = conn.exec_driver_sql(_SHAPE.format(s=schema)).one()
    except DBAPIError:
        conn.rollback()
        return ()
    return tuple(str(v).replace(schema, "") for v in row)


def _pg_engine_url() -> Iterator[str]:
    """A URL of a migrated, empty PostgreSQL schema of this test process's pool; emptied
    and put back afterwards (dropped if the test changed its shape)."""
    if _pg_free:
        schema = _pg_free.pop()
    else:
        schema = _create_schema()
        eng = make_engine(_schema_url(schema))
        upgrade_schema(eng)
        eng.dispose()
        with _pg_admin().connect() as conn:
            _pg_shape.setdefault("shape", _shape(conn, schema))
    try:
        yield _schema_url(schema)
    finally:
        with _pg_admin().connect() as conn:
            if _shape(conn, schema) == _pg_shape["shape"] and _emptied(conn, schema):
                _pg_free.append(schema)
            else:
                conn.rollback()
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
                conn.commit()


def _emptied(conn: Connection, schema: str) -> bool:
    """Delete every row of a pooled schema but its migration mark and restart its
    sequences, as a fresh migration leaves it; False when that cannot be done at once (a
    lock a test left behind)."""
    try:
        tables = conn.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = %(s)s "
            "AND tablename <> 'alembic_version'", {"s": schema}).scalars().all()
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
        conn.exec_driver_sql("; ".join(f'DELETE FROM "{schema}"."{t}"'
                                       for t in tables))
        conn.exec_driver_sql(
            "SELECT setval(c.oid, q.seqstart, false) FROM pg_sequence q "
            "JOIN pg_class c ON c.oid = q.seqrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(s)s",
            {"s": schema})
        conn.commit()
    except DBAPIError:
        conn.rollback()
        return False
    return True


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop this test process's pooled schemas and template file."""
    if _pg_free:
        with _pg_admin().begin() as conn:
            for schema in _pg_free:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        _pg_free.clear()
    for template in _sqlite_template:
        template.unlink(missing_ok=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database, once per backend (already migrated when the test also
    takes ``engine``)."""
    migrated = "engine" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "patchpilot.db"
        if migrated:
            _sqlite_copy(path)
        yield f"sqlite:///{path}"
    elif migrated:
        yield from _pg_engine_url()
    else:
        yield from pg_schema_url()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on an empty, migrated database, once per backend."""
    eng = make_engine(database_url)  # migrated already: database_url saw "engine" asked for
    yield eng
    eng.dispose()


@pytest.fixture
def feed_dir(tmp_path: Path, shared_data: Path):  # type: ignore[no-untyped-def]
    """Build a small feed folder from named real files: ``feed_dir({"osv/x.json": src})``."""

    def build(files: dict[str, str | Path], name: str = "feeds") -> Path:
        root = tmp_path / name
        for dest, src in files.items():
            target = root / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            source = Path(src)
            shutil.copyfile(source if source.is_absolute() else shared_data / source, target)
        return root

    return build


def migrate_schema(engine: Engine, direction: str, revision: str, *,
                   now: datetime | None = None) -> None:
    """``alembic upgrade|downgrade revision`` on ``engine``, as upgrade_schema runs it
    (``now``: the moment a migration that computes figures takes as the present)."""
    from alembic import command
    from alembic.config import Config

    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location",
                            str(Path(patchpilot.db.__file__).parent / "migrations"))
        cfg.attributes["connection"] = conn
        if now is not None:
            cfg.attributes["now"] = now
        getattr(command, direction)(cfg, revision)


@pytest.fixture
def migrate() -> Callable[..., None]:
    """``migrate(engine, "upgrade"|"downgrade", revision)``, as upgrade_schema runs it."""
    return migrate_schema
