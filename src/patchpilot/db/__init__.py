"""Database: engine, tables and Alembic migrations (SQLite by default, PostgreSQL at scale)."""

from patchpilot.db.engine import connect, make_engine, upgrade_schema

__all__ = ["connect", "make_engine", "upgrade_schema"]
