"""Win-back tasks and the CRM's outcomes, which move a task and its alert along."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

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


#: settled tasks: the customer came back in the window, or the window closed
_SETTLED = ("won_back", "lost", "expired")
#: the CRM's reports that say the customer was reached ("failed" says they were not)
_REACHED = ("contacted", "accepted", "declined", "done")


class SettledTask(NamedTuple):
    """A win-back task that ended, with what the CRM reported of it."""

    reason: str
    value_tier: str
    action: str
    status: str
    #: the task's event time
    ts: datetime
    #: the time of the CRM's first report on it, if any
    first_ts: datetime | None
    #: whether the CRM reported it reached the customer
    reached: bool


def settled_tasks(conn: Connection) -> list[SettledTask]:
    """Every settled task (``won_back``, ``lost`` or ``expired``), in ``task_id`` order.

    Escalated tasks are left out: they never settle. *Reached*: the CRM reported
    contacted, accepted, declined or done.
    """
    t, o = winback_tasks, winback_outcomes
    first = (
        sa.select(o.c.task_id, sa.func.min(o.c.ts).label("first_ts"))
        .group_by(o.c.task_id)
        .subquery()
    )
    reached = sa.select(o.c.task_id).where(o.c.status.in_(_REACHED)).distinct().subquery()
    query = (
        sa.select(
            t.c.reason, t.c.value_tier, t.c.action, t.c.status, t.c.ts,
            first.c.first_ts, reached.c.task_id.label("reached"),
        )
        .outerjoin(first, first.c.task_id == t.c.task_id)
        .outerjoin(reached, reached.c.task_id == t.c.task_id)
        .where(t.c.status.in_(_SETTLED))
        .order_by(t.c.task_id)
    )  # fmt: skip
    return [
        SettledTask(
            row.reason, row.value_tier, row.action, row.status, row.ts, row.first_ts,
            row.reached is not None,
        )
        for row in conn.execute(query)
    ]  # fmt: skip


#: the win-back evaluation's views (migration 0006)
VIEWS = ("winback_effectiveness", "winback_failures")


def view_rows(conn: Connection, view: str) -> list[dict[str, Any]]:
    """Every row of one of the :data:`VIEWS`, ordered by its first three columns."""
    if view not in VIEWS:  # the name is spliced into the SQL: only the known ones
        raise ValueError(f"no win-back view {view!r}")
    rows = conn.execute(sa.text(f"SELECT * FROM {view} ORDER BY 1, 2, 3")).mappings()
    return [dict(row) for row in rows]


def count_tasks(conn: Connection, status: str) -> int:
    """How many win-back tasks have ``status`` (``won_back``, say)."""
    query = sa.select(sa.func.count()).where(winback_tasks.c.status == status)
    return int(conn.execute(query).scalar_one())
