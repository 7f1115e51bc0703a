"""The outbox: alerts and win-back tasks that are stored but not yet on their topics.

An alert and its task are written in the batch's SQL transaction and sent to
Kafka after it commits. A worker that dies between the two would leave them
in the store only; so each send is marked (``published_at``), and a worker
that takes over a partition sends what is unmarked for its customers first.
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
from churnwatch.models.value import VALUE_FIELDS

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
    *VALUE_FIELDS,
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


@dataclass
class Pending:
    """Records to send, in the order they were raised."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)


def _record(row: Any, fields: Sequence[str]) -> dict[str, Any]:
    out = {}
    for name in fields:
        value = row._mapping[name]
        if isinstance(value, datetime):
            value = store.aware(value).isoformat()  # as sent the first time
        out[name] = value
    return out


def pending(engine: Engine, partitions: Iterable[int]) -> Pending:
    """Unsent alerts and tasks of the customers stored under ``partitions``."""
    owned = sa.select(store.customer_state.c.customer_id).where(
        store.customer_state.c.partition.in_(list(partitions))
    )
    out = Pending()
    with engine.connect() as conn:
        for table, fields, into in (
            (store.alerts, ALERT_FIELDS, out.alerts),
            (store.winback_tasks, TASK_FIELDS, out.tasks),
        ):
            query = (
                sa.select(*(table.c[name] for name in fields))
                .where(table.c.published_at.is_(None), table.c.customer_id.in_(owned))
                .order_by(table.c.created_at, table.c.ts)
            )
            into.extend(_record(row, fields) for row in conn.execute(query))
    return out


def mark_sent(engine: Engine, alert_ids: Sequence[str], task_ids: Sequence[str]) -> None:
    """Record that these alerts and tasks are on their topics."""
    if not alert_ids and not task_ids:
        return
    now = store.utcnow()
    with engine.begin() as conn:
        for table, key, ids in (
            (store.alerts, "alert_id", alert_ids),
            (store.winback_tasks, "task_id", task_ids),
        ):
            if ids:
                conn.execute(
                    sa.update(table)
                    .where(table.c[key].in_(list(ids)), table.c.published_at.is_(None))
                    .values(published_at=now)
                )
