"""Time helpers every layer shares: aware UTC times."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """A time in UTC: SQLite hands ``DateTime(timezone=True)`` values back naive."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
