"""Win-back tasks and the CRM's outcomes, which move a task and its alert along."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from churnwatch.records import STATUS_OF_OUTCOME
from churnwatch.store._write import add_once
from churnwatch.store.schema import alerts, winback_outcomes, winback_tasks


def add_tasks(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert win-back tasks (``ts``, ``due_by`` as ISO text), once per ``task_id``."""
    parsed = [
        {
            **row,
            "ts": datetime.fromisoformat(row["ts"]),
            "due_by": datetime.fromisoformat(row["due_by"]),
        }
        for row in rows
    ]
    return add_once(conn, winback_tasks, "task_id", parsed)


def add_outcomes(conn: Connection, outcomes: Sequence[Any]) -> tuple[list[Any], set[str]]:
    """Record CRM outcomes (:class:`churnwatch.winback.outcomes.Outcome`) and move tasks along.

    Returns the outcomes that were new, and the task ids no task has (which
    are not recorded). A new outcome sets its task's and alert's status unless
    they have ended; a ``lost`` one ends them.
    """
    ids = {o.task_id for o in outcomes}
    found = conn.execute(
        sa.select(winback_tasks.c.task_id, winback_tasks.c.alert_id).where(
            winback_tasks.c.task_id.in_(ids)
        )
    ).all()
    alert_of = {row.task_id: row.alert_id for row in found}
    known = [o for o in outcomes if o.task_id in alert_of]
    rows = [
        {
            "outcome_id": o.outcome_id,
            "task_id": o.task_id,
            "status": o.status,
            "ts": o.ts,
            "note": o.note,
        }
        for o in known
    ]
    new_ids = add_once(conn, winback_outcomes, "outcome_id", rows)
    new = sorted((o for o in known if o.outcome_id in new_ids), key=lambda o: o.ts)
    params = []
    for outcome in new:  # in time order: the latest report sets the status
        status = STATUS_OF_OUTCOME[outcome.status]
        params.append(
            {
                "b_task": outcome.task_id,
                "b_alert": alert_of[outcome.task_id],
                "b_status": status,
                "b_ended": outcome.ts if status == "lost" else None,
            }
        )
    if params:
        for table, key, param in (
            (winback_tasks, winback_tasks.c.task_id, "b_task"),
            (alerts, alerts.c.alert_id, "b_alert"),
        ):
            conn.execute(
                sa.update(table)
                .where(key == sa.bindparam(param), table.c.ended_at.is_(None))
                .values(status=sa.bindparam("b_status"), ended_at=sa.bindparam("b_ended")),
                params,
            )
    return new, ids - alert_of.keys()
