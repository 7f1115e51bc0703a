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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from churnwatch import store

#: the fields of a ``churn-alerts`` record (DESIGN.md), as the worker sends them
ALERT_FIELDS = (
    "alert_id",
    "customer_id",
    "ts",
    "score",
    "risk_level",
    "value_tier",
    "reason",
    "reason_codes",
    "model_version",
    "lifecycle_stage",
    "trigger",
)
#: the fields of a ``winback-tasks`` record
TASK_FIELDS = (
    "task_id",
    "alert_id",
    "customer_id",
    "ts",
    "action",
    "channel",
    "priority",
    "due_by",
    "owner_queue",
    "reason",
    "value_tier",
    "risk_level",
)


#: the fields of a ``customer-changes`` record
CHANGE_FIELDS = ("change_id", "customer_id", "ts", "field", "from_value", "to_value", "cause")


@dataclass
class Pending:
    """Records to send, in the order they were raised."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)

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
        for table, fields, into in (
            (store.alerts, ALERT_FIELDS, out.alerts),
            (store.winback_tasks, TASK_FIELDS, out.tasks),
            (store.customer_changes, CHANGE_FIELDS, out.changes),
        ):
            query = (
                sa.select(*(table.c[name] for name in fields))
                .where(table.c.published_at.is_(None), table.c.customer_id.in_(owned))
                .order_by(table.c.created_at, table.c.ts)
            )
            if stored_before is not None:
                query = query.where(table.c.created_at < stored_before)
            into.extend(_record(row, fields) for row in conn.execute(query))
    return out


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
