"""Time, always timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def now_utc() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def aware(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
