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
