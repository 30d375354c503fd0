"""Shared fixtures: real databases (SQLite and PostgreSQL), real data from ../shared/data.

Every test that takes ``engine`` runs twice: on a fresh SQLite file and on a fresh schema
of the PostgreSQL server at ``PATCHPILOT_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/test``).  Without PostgreSQL the PostgreSQL half is
skipped, except under ``CI=true``, where an unreachable PostgreSQL fails the run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

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


def pg_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh, private schema (dropped afterwards)."""
    problem = _pg_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable under CI=true: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    schema = f"pp_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'patchpilot.db'}"
    else:
        yield from pg_schema_url()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on an empty, migrated database, once per backend."""
    eng = make_engine(database_url)
    upgrade_schema(eng)
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
