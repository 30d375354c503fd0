"""``patchpilot backup`` and ``patchpilot restore``: the database, and the keys the
settings keep in the data directory.

What a backup is made of (``db.backup``): one file for the database, plus a copy of each
key file the data directory holds -- ``session.key`` (the dashboard's cookie signing key)
and ``secrets.key`` (what the playbooks' action secrets are encrypted with: without it
the restored secrets cannot be read).  A key given by the environment instead
(``PATCHPILOT_SESSION_SECRET``, ``PATCHPILOT_SECRETS_KEY``) is not in any file: the
command says to keep it with the backups.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from patchpilot.cli.common import console, err, fail
from patchpilot.config import Settings, load_settings
from patchpilot.db import make_engine
from patchpilot.db.backup import (
    backup_database,
    plan_companions,
    restore_companions,
    restore_database,
    save_companions,
)
from patchpilot.errors import PatchPilotError

# The key files of the data directory, and the setting that replaces each when set.
KEY_FILES = {"session.key": "PATCHPILOT_SESSION_SECRET",
             "secrets.key": "PATCHPILOT_SECRETS_KEY"}


def _key_files(settings: Settings) -> tuple[dict[str, Path], list[str]]:
    """The key files that live in the data directory (name -> path), and the settings
    that give the other keys from the environment."""
    from_env = {"PATCHPILOT_SESSION_SECRET": settings.session_secret,
                "PATCHPILOT_SECRETS_KEY": settings.secrets_key}
    files = {name: settings.home / name for name, var in KEY_FILES.items()
             if not from_env[var]}
    return files, [var for var in KEY_FILES.values() if from_env[var]]


def _progress(what: str) -> Progress:
    return Progress(TextColumn(what), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                    console=err, transient=True)


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e5 else f"{n / 1e3:,.1f} kB"


def backup(
    directory: Annotated[Path, typer.Argument(
        help="Folder to write the backup into (created if missing).", file_okay=False)],
) -> None:
    """Back up the database (and the key files of the data directory) into DIRECTORY.

    SQLite: an online copy (the server may keep running); PostgreSQL: pg_dump's custom
    format of PatchPilot's schema.  The file is patchpilot-YYYYmmdd-HHMMSS.sqlite or
    .pgdump (UTC), mode 0600; session.key and secrets.key are copied beside it."""
    settings = load_settings()
    keys, from_env = _key_files(settings)
    try:
        engine = make_engine(settings.database_url)
        with _progress("backing up") as progress:
            task = progress.add_task("backup", total=None)
            result = backup_database(engine, directory, progress=lambda done, total:
                                     progress.update(task, completed=done, total=total))
        kept = save_companions(result.path, keys)
    except PatchPilotError as exc:
        fail(exc)
        return
    console.print(f"backed up the {result.backend} database (schema {result.revision or '-'}"
                  f", {_size(result.size)}) to {result.path} in {result.seconds:.1f} s",
                  soft_wrap=True)
    for path in kept:
        console.print(f"kept {path.name.split('.', 1)[1]} as {path}", soft_wrap=True)
    for var in from_env:
        console.print(f"[yellow]note:[/] {var} comes from the environment: keep its value "
                      "with your backups (it is in no file)", soft_wrap=True)


def restore(
    file: Annotated[Path, typer.Argument(
        help="A backup made by `patchpilot backup` (.sqlite or .pgdump).", exists=True,
        dir_okay=False)],
    force: Annotated[bool, typer.Option(
        help="Replace a database that holds data, and key files that differ from the "
             "backup's.")] = False,
) -> None:
    """Restore a backup into the configured database, then migrate it to this version.

    Stop the server and the workers first.  An empty database is filled; one that holds
    data is refused unless --force.  The key files kept beside the backup are put back in
    the data directory (a differing one only with --force)."""
    settings = load_settings()
    keys, from_env = _key_files(settings)
    plans = plan_companions(file, keys)
    differ = [p for p in plans if p.action == "replace"]
    if differ and not force:
        fail(PatchPilotError(
            "the backup's " + " and ".join(p.name for p in differ) + " differ from "
            + ", ".join(str(p.target) for p in differ)
            + ": the restored database needs the backup's keys (secrets.key decrypts the "
              "action secrets); add --force to replace them"))
        return
    try:
        engine = make_engine(settings.database_url)
        with _progress("restoring") as progress:
            task = progress.add_task("restore", total=None)
            result = restore_database(engine, file, force=force, progress=lambda done, total:
                                      progress.update(task, completed=done, total=total))
        restore_companions(plans)
    except PatchPilotError as exc:
        fail(exc)
        return
    rows = sum(result.rows.values())
    migrated = (f", migrated from schema {result.revision} to {result.head}"
                if result.revision != result.head else f" (schema {result.head})")
    console.print(f"restored {file} into the {result.backend} database: {rows:,} rows in "
                  f"{len(result.rows)} tables{migrated}, in {result.seconds:.1f} s",
                  soft_wrap=True)
    if result.replaced:
        console.print(f"replaced {result.replaced:,} rows the database held before (--force)")
    for plan in plans:
        if plan.action != "same":
            console.print(f"{'replaced' if plan.action == 'replace' else 'restored'} "
                          f"{plan.target} from {plan.source.name}", soft_wrap=True)
    for var in from_env:
        console.print(f"[yellow]note:[/] {var} is set: it must be the value the backup was "
                      "made with", soft_wrap=True)
