"""The outbox's reads and marks: stored records not yet on their topics.

Each of ``alerts``, ``winback_tasks`` and ``customer_changes`` has a
``published_at``, set once its record's own delivery succeeded; what stays
unset is sent again (streams/outbox.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from churnwatch.records import ChurnAlert, CustomerChange, WinbackTask, fields_of
from churnwatch.store.schema import alerts, customer_changes, customer_state, winback_tasks
from churnwatch.times import aware, utcnow

#: the table that keeps each kind of outgoing record
_TABLE_OF: dict[type, sa.Table] = {
    ChurnAlert: alerts,
    WinbackTask: winback_tasks,
    CustomerChange: customer_changes,
}


def _record(row: Any, fields: Sequence[str]) -> dict[str, Any]:
    out = {}
    for name in fields:
        value = row._mapping[name]
        if isinstance(value, datetime):
            value = aware(value).isoformat()  # as sent the first time
        out[name] = value
    return out


def unsent(
    conn: Connection,
    record: type,
    partitions: Iterable[int],
    *,
    stored_before: datetime | None = None,
    leave_out_action: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The unsent ``record``s (ChurnAlert, WinbackTask or CustomerChange), oldest first.

    Only those of the customers stored under ``partitions``, stored before
    ``stored_before`` when it is given; ``leave_out_action`` leaves out the
    tasks of that action (the records are dicts of the record's fields, times
    as ISO text).
    """
    table = _TABLE_OF[record]
    owned = sa.select(customer_state.c.customer_id).where(
        customer_state.c.partition.in_(list(partitions))
    )
    fields = fields_of(record)
    query = (
        sa.select(*(table.c[name] for name in fields))
        .where(table.c.published_at.is_(None), table.c.customer_id.in_(owned))
        .order_by(table.c.created_at, table.c.ts)
    )
    if leave_out_action is not None:
        query = query.where(table.c.action != leave_out_action)
    if stored_before is not None:
        query = query.where(table.c.created_at < stored_before)
    return (_record(row, fields) for row in conn.execute(query))


def mark_sent(
    conn: Connection,
    alert_ids: Sequence[str],
    task_ids: Sequence[str],
    change_ids: Sequence[str] = (),
) -> None:
    """Record that these alerts, tasks and changes are on their topics (once: the first time)."""
    now = utcnow()
    for table, key, ids in (
        (alerts, "alert_id", alert_ids),
        (winback_tasks, "task_id", task_ids),
        (customer_changes, "change_id", change_ids),
    ):
        if ids:
            conn.execute(
                sa.update(table)
                .where(table.c[key].in_(list(ids)), table.c.published_at.is_(None))
                .values(published_at=now)
            )
