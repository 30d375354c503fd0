"""``patchpilot backup`` / ``patchpilot restore`` (issue 19): a database filled with real
advisories and real inventories, matched, with a user, a token and an action secret, is
backed up by the command line, restored into an empty database (SQLite: another file;
PostgreSQL: another database, so the schema's name changes too) and holds the same rows
in every table; the keys of the data directory come back with it."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from patchpilot.automation.secrets import key_of, read_secret, set_secret
from patchpilot.config import load_settings
from patchpilot.db.backup import (
    BackupError,
    backup_database,
    head_revision,
    restore_database,
    schema_revision,
    table_counts,
)
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.server.security import Role, create_api_token
from tests.builders import web_data
from tests.builders.processes import env_for, patchpilot
from tests.conftest import PG_URL, migrate_schema, pg_schema_url

SECRET_VALUE = "https://chat.example/hook/T000/B000/xyzzy-backup-test"


@pytest.fixture
def empty_target(database_url: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of the same backend as ``database_url``: a new SQLite
    file, or a new PostgreSQL database (its ``public`` schema: the backup's schema is
    another name, so the restore renames it)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'patchpilot.db'}"
        return
    name = f"pp_restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _filled(database_url: str, home: Path, shared_data: Path, feeds: Path) -> Engine:
    """A database with advisories, two matched hosts, a user with a token, and an
    encrypted action secret; the data directory holds both key files."""
    engine = make_engine(database_url)
    upgrade_schema(engine)
    web_data.load(engine, shared_data, feeds)
    create_api_token(engine, user="backup-admin", role=Role.ADMIN, name="backup test")
    home.mkdir(parents=True, exist_ok=True)
    (home / "session.key").write_text("session-key-of-the-source\n")
    with engine.begin() as conn:
        set_secret(conn, "cli:test", "chat-hook", SECRET_VALUE,
                   key_of(load_settings({"PATCHPILOT_HOME": str(home)})))
    return engine


def _only_file(folder: Path, suffix: str) -> Path:
    [found] = sorted(folder.glob(f"*{suffix}"))
    return found


def test_backup_and_restore_round_trip_keeps_every_row(
        database_url: str, empty_target: str, tmp_path: Path, shared_data: Path) -> None:
    source = _filled(database_url, tmp_path / "home", shared_data, tmp_path / "feeds")
    with source.connect() as conn:
        before = table_counts(conn)
    source.dispose()
    for table in ("advisories", "affected", "assets", "inventories", "findings", "users",
                  "api_tokens", "secrets", "audit_log"):
        assert before[table] > 0, table

    backups = tmp_path / "backups"
    made = patchpilot("backup", str(backups), env=env_for(database_url, tmp_path / "home"),
                      check=False)
    assert made.returncode == 0, made.stderr
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    dump = _only_file(backups, ".sqlite" if backend == "sqlite" else ".pgdump")
    assert dump.name.startswith("patchpilot-")
    assert f"backed up the {backend} database (schema {head_revision()}" in made.stdout
    for path in (dump, *backups.glob("*.key")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert sorted(p.name.split(".", 1)[1] for p in backups.glob("*.key")) == [
        "secrets.key", "session.key"]

    # Into an empty database and an empty data directory.
    target_home = tmp_path / "home-restored"
    env = env_for(empty_target, target_home)
    done = patchpilot("restore", str(dump), env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert f"{sum(before.values()):,} rows in {len(before)} tables" in done.stdout
    target = make_engine(empty_target)
    with target.connect() as conn:
        assert table_counts(conn) == before
        assert schema_revision(conn) == head_revision()
        # The restored secret opens with the restored key.
        assert read_secret(conn, "chat-hook", key_of(load_settings(
            {"PATCHPILOT_HOME": str(target_home)}))) == SECRET_VALUE
    assert (target_home / "session.key").read_text() == "session-key-of-the-source\n"
    # The ids go on after the restored rows (PostgreSQL's sequences came along).
    create_api_token(target, user="after-restore", role=Role.VIEWER, name="later")
    target.dispose()

    # A second restore finds data: refused, then done with --force.
    again = patchpilot("restore", str(dump), env=env, check=False)
    assert again.returncode == 2
    assert "is not empty" in again.stderr and "--force" in again.stderr
    forced = patchpilot("restore", "--force", str(dump), env=env, check=False)
    assert forced.returncode == 0, forced.stderr
    assert "replaced" in forced.stdout
    target = make_engine(empty_target)
    with target.connect() as conn:
        assert table_counts(conn) == before
    target.dispose()


def test_restore_of_an_older_backup_migrates_it(
        database_url: str, empty_target: str, tmp_path: Path) -> None:
    from patchpilot.db.backup import _scripts

    older = _scripts().get_revision(head_revision()).down_revision
    source = make_engine(database_url)
    migrate_schema(source, "upgrade", older)
    result = backup_database(source, tmp_path / "backups")
    assert result.revision == older
    source.dispose()

    target = make_engine(empty_target)
    restored = restore_database(target, result.path)
    assert (restored.revision, restored.head) == (older, head_revision())
    with target.connect() as conn:
        assert schema_revision(conn) == head_revision()
    target.dispose()


def test_restore_refuses_what_it_cannot_restore(tmp_path: Path) -> None:
    """The other backend's backup, a file that is no backup, one of a newer schema."""
    source = make_engine(f"sqlite:///{tmp_path / 'source.db'}")
    upgrade_schema(source)
    backup = backup_database(source, tmp_path / "backups").path
    target = make_engine(f"sqlite:///{tmp_path / 'target.db'}")

    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("hello")
    with pytest.raises(BackupError, match="notes.txt is not a PatchPilot backup"):
        restore_database(target, not_a_backup)

    pg_like = tmp_path / "patchpilot-20250101-000000.pgdump"
    pg_like.write_bytes(b"PGDMP\x01\x0e\x00")
    with pytest.raises(BackupError, match="is a postgresql backup but "
                                          "PATCHPILOT_DATABASE_URL is sqlite"):
        restore_database(target, pg_like)

    with source.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    newer = backup_database(source, tmp_path / "newer").path
    with pytest.raises(BackupError, match="was made by a newer PatchPilot"):
        restore_database(target, newer)
    # Nothing was touched: the target is still empty (not even a schema).
    with target.connect() as conn:
        assert table_counts(conn) == {}
    assert restore_database(target, backup).head == head_revision()


def test_restore_keeps_a_differing_key_unless_forced(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'source.db'}"
    upgrade_schema(make_engine(url))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "secrets.key").write_text("the-backup-key-0123456789")
    made = patchpilot("backup", str(tmp_path / "backups"), env=env_for(url, tmp_path / "home"))
    dump = _only_file(tmp_path / "backups", ".sqlite")

    other_home = tmp_path / "other-home"
    other_home.mkdir()
    (other_home / "secrets.key").write_text("another-key-9876543210")
    env = env_for(f"sqlite:///{tmp_path / 'target.db'}", other_home)
    refused = patchpilot("restore", str(dump), env=env, check=False)
    assert refused.returncode == 2
    assert f"differ from {other_home / 'secrets.key'}" in " ".join(refused.stderr.split())
    assert not (tmp_path / "target.db").exists()  # refused before the database was touched
    forced = patchpilot("restore", "--force", str(dump), env=env, check=False)
    assert forced.returncode == 0, forced.stderr
    assert (other_home / "secrets.key").read_text() == "the-backup-key-0123456789"
    assert "kept secrets.key" in made.stdout


def test_a_key_from_the_environment_is_named_not_copied(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'source.db'}"
    upgrade_schema(make_engine(url))
    env = {**env_for(url, tmp_path / "home"), "PATCHPILOT_SECRETS_KEY": "k" * 32}
    made = patchpilot("backup", str(tmp_path / "backups"), env=env)
    assert "PATCHPILOT_SECRETS_KEY comes from the environment" in " ".join(made.stdout.split())
    assert not list((tmp_path / "backups").glob("*.key"))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema's URL (PostgreSQL only)."""
    yield from pg_schema_url()


def test_backup_without_the_postgresql_tools_says_what_to_install(
        pg_url: str, tmp_path: Path) -> None:
    engine = make_engine(pg_url)
    upgrade_schema(engine)
    engine.dispose()
    env = {**env_for(pg_url, tmp_path / "home"), "PATH": str(tmp_path / "empty-bin")}
    done = patchpilot("backup", str(tmp_path / "backups"), env=env, check=False)
    assert done.returncode == 2
    said = " ".join(done.stderr.split())
    assert "pg_dump not found on PATH: install the PostgreSQL client tools of the " \
           "server's major version (Debian/Ubuntu: apt-get install postgresql-client-1" in said
    assert not list((tmp_path / "backups").glob("patchpilot-*"))


def test_backup_of_no_patchpilot_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nowhere' / 'patchpilot.db'}"
    done = patchpilot("backup", str(tmp_path / "backups"), env=env_for(url, tmp_path / "home"),
                      check=False)
    assert done.returncode == 2
    assert (f"no PatchPilot database at {tmp_path / 'nowhere' / 'patchpilot.db'}"
            in " ".join(done.stderr.split()))
    assert not list((tmp_path / "backups").glob("patchpilot-*"))
