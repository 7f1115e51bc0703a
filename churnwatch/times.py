"""Time helpers every layer shares: aware UTC times, and the one clock they read.

Every reading of "now" in churnwatch goes through :func:`utcnow`. By default it
is the wall clock; :func:`start_clock_at` (the ``CHURNWATCH_CLOCK_START``
setting) makes it start at another time and run on from there at the wall
clock's pace, so that data from another day is judged as on that day: the
future limit, ages and deadlines alike. The tests run on such a clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: what :func:`utcnow` adds to the wall clock, and the start it was set for
_offset = timedelta(0)
_started_at: datetime | None = None


def utcnow() -> datetime:
    """The current time, aware, in UTC (on the clock :func:`start_clock_at` set)."""
    return datetime.now(UTC) + _offset


def start_clock_at(start: datetime | None) -> None:
    """Make :func:`utcnow` read ``start`` now and run on from it; ``None``: the wall clock.

    Calling it again with the same start keeps the clock running, so that
    each reader of the settings may call it.
    """
    global _offset, _started_at
    if start is None:
        _offset, _started_at = timedelta(0), None
    elif start != _started_at:
        _offset, _started_at = aware(start) - datetime.now(UTC), start


def aware(value: datetime) -> datetime:
    """A time in UTC: SQLite hands ``DateTime(timezone=True)`` values back naive."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
