"""Migration 0021 drops the foreign key of ``sweep_results.sweep_id`` (as db/tables.py
declares the table) and keeps the asset's; its downgrade adds it again."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, inspect

Migrate = Callable[[Engine, str, str], None]


def _references(engine: Engine) -> set[tuple[tuple[str, ...], str, str | None]]:
    return {(tuple(fk["constrained_columns"]), fk["referred_table"],
             fk.get("options", {}).get("ondelete"))
            for fk in inspect(engine).get_foreign_keys("sweep_results")}


def test_migration_0021_up_and_down(engine: Engine, migrate: Migrate) -> None:
    assert _references(engine) == {(("asset_id",), "assets", "CASCADE")}
    migrate(engine, "downgrade", "0020_job_chunks")
    assert _references(engine) == {(("asset_id",), "assets", "CASCADE"),
                                   (("sweep_id",), "sweeps", "CASCADE")}
    migrate(engine, "upgrade", "head")
    assert _references(engine) == {(("asset_id",), "assets", "CASCADE")}
