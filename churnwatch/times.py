"""Time helpers every layer shares: aware UTC times, and the one clock they read.

Every reading of "now" in churnwatch goes through :func:`utcnow`. By default it
is the wall clock; :func:`set_clock_offset` (the ``CHURNWATCH_CLOCK_OFFSET_S``
setting) moves it by a fixed number of seconds, so that data of another day is
judged as on that day: the future limit, ages and deadlines alike. An offset,
not a start time, so that every process given the same setting (a worker, its
fold process, the commands beside it) reads the same clock, and it never runs
backwards from one process to the next. The tests run on such a clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: what :func:`utcnow` adds to the wall clock
_offset = timedelta(0)


def utcnow() -> datetime:
    """The current time, aware, in UTC (moved by :func:`set_clock_offset`)."""
    return datetime.now(UTC) + _offset


def clock_offset_s() -> float:
    """The seconds :func:`utcnow` adds to the wall clock now."""
    return _offset.total_seconds()


def set_clock_offset(seconds: float) -> None:
    """Make :func:`utcnow` read the wall clock plus ``seconds`` (negative: the past)."""
    global _offset
    _offset = timedelta(seconds=seconds)


def offset_to(moment: datetime) -> float:
    """The offset, in seconds, that makes the clock read ``moment`` now."""
    return (aware(moment) - datetime.now(UTC)).total_seconds()


def aware(value: datetime) -> datetime:
    """A time in UTC: SQLite hands ``DateTime(timezone=True)`` values back naive."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
