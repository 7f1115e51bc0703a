"""The event log: append-only, idempotent on ``event_id``, read in event-time order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from churnwatch.store._write import dialect_insert
from churnwatch.store.schema import events


def append_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert event rows, skipping ids already stored; return the ids that were new."""
    if not rows:
        return set()
    stmt = dialect_insert(conn, events).on_conflict_do_nothing(index_elements=["event_id"])
    result = conn.execute(stmt.returning(events.c.event_id), list(rows))
    return {row[0] for row in result}


def sources_of(conn: Connection, event_ids: Iterable[str]) -> dict[str, str | None]:
    """Where each of these stored events came from."""
    ids = list(event_ids)
    if not ids:
        return {}
    query = sa.select(events.c.event_id, events.c.source).where(events.c.event_id.in_(ids))
    return {key: value for key, value in conn.execute(query)}


def _between(query: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        query = query.where(events.c.ts >= since)
    if until is not None:
        query = query.where(events.c.ts <= until)
    return query


def read_events(
    conn: Connection, *, until: datetime | None = None, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Stored event payloads in event-time order (``since <= ts <= until``), streamed.

    Ties are broken by ``event_id``, as the worker orders a batch.
    """
    query = sa.select(events.c.payload).order_by(events.c.ts, events.c.event_id)
    for (payload,) in conn.execution_options(yield_per=5000).execute(_between(query, since, until)):
        yield payload


def read_events_of(
    conn: Connection, keep: Callable[[str], bool], *, until: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """:func:`read_events` of the customers ``keep(customer_id)`` accepts, streamed.

    The others' payloads are skipped before they are decoded: a replay worker
    reads the store for its own lanes only.
    """
    query = sa.select(events.c.customer_id, sa.cast(events.c.payload, sa.Text)).order_by(
        events.c.ts, events.c.event_id
    )
    rows = conn.execution_options(yield_per=5000).execute(_between(query, None, until))
    for customer_id, text in rows:
        if keep(customer_id):
            yield orjson.loads(text)


def count_events(
    conn: Connection, *, until: datetime | None = None, since: datetime | None = None
) -> int:
    """How many stored events have ``since <= ts <= until``."""
    query = sa.select(sa.func.count()).select_from(events)
    return conn.execute(_between(query, since, until)).scalar_one()


def event_writer(conn: Connection) -> Callable[[list[dict[str, Any]]], int]:
    """A batch insert of event rows that skips stored ids; it returns how many were new.

    On PostgreSQL the rows are copied (``COPY``) into a temporary table that the
    transaction drops, then inserted from it: many times faster than an
    ``INSERT`` of each row for an import of millions. Elsewhere it is
    :func:`append_events`.
    """
    if conn.dialect.name != "postgresql":
        return lambda rows: len(append_events(conn, rows))
    conn.execute(
        sa.text("CREATE TEMP TABLE import_events (LIKE events INCLUDING DEFAULTS) ON COMMIT DROP")
    )
    names = [c.name for c in events.columns if c.name != "seq"]

    def copy_then_insert(rows: list[dict[str, Any]]) -> int:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY import_events ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [orjson.dumps(row[n]).decode() if n == "payload" else row[n] for n in names]
                )
        cols = ", ".join(names)
        inserted = conn.execute(
            sa.text(
                f"INSERT INTO events ({cols}) SELECT {cols} FROM import_events "
                "ON CONFLICT (event_id) DO NOTHING"
            )
        ).rowcount
        conn.execute(sa.text("TRUNCATE import_events"))
        return inserted

    return copy_then_insert


def event_times(conn: Connection) -> list[datetime]:
    """Every stored event's time, oldest first."""
    return [ts for (ts,) in conn.execute(sa.select(events.c.ts).order_by(events.c.ts))]
