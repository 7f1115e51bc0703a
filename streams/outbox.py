"""The outbox: alerts, win-back tasks and customer changes stored but not yet on their topics.

An alert and its task are written in the batch's SQL transaction and sent to
Kafka after it commits. A worker that dies between the two, or a send that
fails, would leave them in the store only; so each record is marked
(``published_at``) once its own delivery succeeded, and what stays unmarked is
sent again: by a worker that takes over a partition, and on a timer.
The topics are therefore at-least-once: a worker that died after sending but
before marking sends again, with the same deterministic ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from churnwatch import store
from churnwatch.alerts.config import HOLDOUT
from churnwatch.records import ChurnAlert, CustomerChange, WinbackTask, fields_of


@dataclass
class Pending:
    """Records to send, in the order they were raised."""

    alerts: list[ChurnAlert] = field(default_factory=list)
    tasks: list[WinbackTask] = field(default_factory=list)
    changes: list[CustomerChange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.alerts or self.tasks or self.changes)


def _record(row: Any, fields: Sequence[str]) -> dict[str, Any]:
    out = {}
    for name in fields:
        value = row._mapping[name]
        if isinstance(value, datetime):
            value = store.aware(value).isoformat()  # as sent the first time
        out[name] = value
    return out


def pending(
    engine: Engine, partitions: Iterable[int], *, stored_before: datetime | None = None
) -> Pending:
    """Unsent records of the customers stored under ``partitions`` (stored before a time)."""
    owned = sa.select(store.customer_state.c.customer_id).where(
        store.customer_state.c.partition.in_(list(partitions))
    )
    out = Pending()
    with engine.connect() as conn:
        unsent = partial(_unsent, conn, owned, stored_before)
        out.alerts.extend(cast(ChurnAlert, r) for r in unsent(store.alerts, ChurnAlert))
        # a held-out case's task stays in the store: nobody is to contact the customer
        contact = store.winback_tasks.c.action != HOLDOUT
        tasks = unsent(store.winback_tasks, WinbackTask, contact)
        out.tasks.extend(cast(WinbackTask, r) for r in tasks)
        out.changes.extend(
            cast(CustomerChange, r) for r in unsent(store.customer_changes, CustomerChange)
        )
    return out


def _unsent(
    conn: Connection,
    owned: Any,
    stored_before: datetime | None,
    table: sa.Table,
    record: type,
    *where: Any,
) -> Iterator[dict[str, Any]]:
    """The unsent ``record``s of ``table`` for ``owned`` customers, oldest first."""
    fields = fields_of(record)
    query = (
        sa.select(*(table.c[name] for name in fields))
        .where(table.c.published_at.is_(None), table.c.customer_id.in_(owned), *where)
        .order_by(table.c.created_at, table.c.ts)
    )
    if stored_before is not None:
        query = query.where(table.c.created_at < stored_before)
    return (_record(row, fields) for row in conn.execute(query))


def mark_sent(
    engine: Engine,
    alert_ids: Sequence[str],
    task_ids: Sequence[str],
    change_ids: Sequence[str] = (),
) -> None:
    """Record that these alerts, tasks and changes are on their topics."""
    if not alert_ids and not task_ids and not change_ids:
        return
    now = store.utcnow()
    with engine.begin() as conn:
        for table, key, ids in (
            (store.alerts, "alert_id", alert_ids),
            (store.winback_tasks, "task_id", task_ids),
            (store.customer_changes, "change_id", change_ids),
        ):
            if ids:
                conn.execute(
                    sa.update(table)
                    .where(table.c[key].in_(list(ids)), table.c.published_at.is_(None))
                    .values(published_at=now)
                )
