"""The reads and writes of the retention worklist and its JSON API (streams/feed.py).

Queries over ``alerts``, ``winback_tasks``, ``case_owners``, ``customer_state``
and ``events``; their rows come back as dicts with aware UTC times. The API's
filters are checked by streams/feed.py before they reach these functions: here
they are plain values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from churnwatch.records import ChurnAlert, fields_of
from churnwatch.store.schema import alerts, case_owners, customer_state, events, winback_tasks
from churnwatch.times import aware

#: alert columns the page and the API show: the topic's record (less the model
#: version), where it stands, and who acknowledged it; plus the task's action
_ALERT_COLUMNS = (
    *(name for name in fields_of(ChurnAlert) if name != "model_version"),
    "status",
    "created_at",
    "acknowledged_at",
    "acknowledged_by",
)
_TASK_COLUMNS = ("action", "channel", "owner_queue", "due_by")


def _aware(row: Any) -> dict[str, Any]:
    """A result row as a dict, its times in UTC (SQLite hands them back naive)."""
    # keys are SQLAlchemy ``quoted_name``s, which orjson does not take as str
    out = {str(key): value for key, value in row._mapping.items()}
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = aware(value)
    return out


def _alerts_query(tiers: Sequence[str], reasons: Sequence[str], status: str | None) -> sa.Select:
    a, t = alerts, winback_tasks
    query = sa.select(*(a.c[n] for n in _ALERT_COLUMNS), *(t.c[n] for n in _TASK_COLUMNS))
    query = query.select_from(a.outerjoin(t, t.c.alert_id == a.c.alert_id))
    if tiers:
        query = query.where(a.c.value_tier.in_(tiers))
    if reasons:
        query = query.where(a.c.reason.in_(reasons))
    if status == "acknowledged":
        query = query.where(a.c.acknowledged_at.is_not(None))
    elif status == "unacknowledged":
        query = query.where(a.c.acknowledged_at.is_(None))
    elif status is not None:
        query = query.where(a.c.status == status)
    return query


def feed_alerts(
    conn: Connection,
    *,
    tiers: Sequence[str] = (),
    reasons: Sequence[str] = (),
    status: str | None = None,
    limit: int,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """Alerts (each with its task's action) of these tiers and reasons (empty: all).

    ``status`` is an alert status, ``acknowledged`` or ``unacknowledged``.
    Without ``since``: the most value at risk first (then the newest). With it:
    the newest ``limit`` raised at or after ``since`` (wall time), oldest first.
    """
    a = alerts
    query = _alerts_query(tiers, reasons, status)
    if since is None:
        query = query.order_by(
            a.c.value_at_risk.desc().nulls_last(), a.c.created_at.desc(), a.c.alert_id
        )
        return [_aware(row) for row in conn.execute(query.limit(limit))]
    query = query.where(a.c.created_at >= since)
    newest = query.order_by(a.c.created_at.desc(), a.c.alert_id).limit(limit)
    return [_aware(row) for row in reversed(conn.execute(newest).all())]


#: the owner filter's name for a case that nobody works
UNASSIGNED = "(unassigned)"


def _case_of() -> sa.ColumnElement[Any]:
    # an alert stored before cases existed is a case of its own
    return sa.func.coalesce(alerts.c.case_id, alerts.c.alert_id)


def _latest_of_cases(levels: Sequence[str]) -> sa.Subquery:
    """Each case's latest alert, how many alerts it has had and when it opened."""
    a = alerts
    case = _case_of()
    rank = sa.case({level: i for i, level in enumerate(levels)}, value=a.c.risk_level, else_=-1)
    newest_first = (a.c.ts.desc(), rank.desc(), a.c.alert_id.desc())
    return (
        sa.select(
            a.c.alert_id,
            case.label("case"),
            sa.func.row_number().over(partition_by=case, order_by=newest_first).label("nth"),
            sa.func.count().over(partition_by=case).label("alerts_in_case"),
            sa.func.min(a.c.ts).over(partition_by=case).label("opened_at"),
        )
    ).subquery()


def _status_clause(status: str) -> sa.ColumnElement[bool]:
    a = alerts
    if status == "open":
        return a.c.ended_at.is_(None)
    if status == "closed":
        return a.c.ended_at.is_not(None)
    if status == "all":
        return sa.true()
    return a.c.status == status


def feed_cases(
    conn: Connection,
    *,
    status: str,
    tiers: Sequence[str],
    reasons: Sequence[str],
    levels: Sequence[str],
    segments: Sequence[tuple[str, str]],
    owners: Sequence[str],
    search: str,
    limit: int,
    risk_levels: Sequence[str],
    dimensions: Sequence[str],
) -> dict[str, Any]:
    """One row per case that passes the filters, the most value at risk first, and counts.

    ``status`` is ``open``, ``closed``, ``all`` or a status of the case's latest
    alert; ``segments`` are ``(dimension, value)`` pairs (any value of a
    dimension passes), ``owners`` may hold :data:`UNASSIGNED`, ``search`` is part
    of a customer id. ``risk_levels`` are the levels from least to most severe
    (a case's latest alert of one time is its most severe), ``dimensions`` the
    segment dimensions counted. A case's row is its latest alert (with its task),
    the case's ``opened_at`` and ``alerts_in_case``. ``counts`` gives, for the
    status, the cases by tier, reason, level, segment and owner, and, for the
    other filters, the cases by status.
    """
    a, t, o = alerts, winback_tasks, case_owners
    latest = _latest_of_cases(risk_levels)
    base = (
        sa.select(
            latest.c.case.label("case_id"),
            latest.c.opened_at,
            latest.c.alerts_in_case,
            o.c.owner,
            *(a.c[n] for n in _ALERT_COLUMNS if n != "case_id"),
            a.c.ended_at,
            *(t.c[n] for n in _TASK_COLUMNS),
            t.c.status.label("task_status"),
        )
        .select_from(
            latest.join(a, a.c.alert_id == latest.c.alert_id)
            .outerjoin(t, t.c.alert_id == a.c.alert_id)
            .outerjoin(o, o.c.case_id == latest.c.case)
        )
        .where(latest.c.nth == 1)
    )
    chosen = _chosen(tiers, reasons, levels, segments, owners, search, dimensions)
    in_status = _status_clause(status)
    rows = conn.execute(
        base.where(in_status, *chosen)
        .order_by(a.c.value_at_risk.desc().nulls_last(), a.c.ts.desc(), a.c.alert_id)
        .limit(limit)
    )
    cases = [_aware(row) for row in rows]
    # The counts read every case once, here, rather than in a query per count that
    # would rank every alert again: with 100,000 alerts that took 8 of 9 queries' time.
    counted = {
        "value_tier": a.c.value_tier,
        "reason": a.c.reason,
        "risk_level": a.c.risk_level,
        **{d: a.c.segments[d].as_string() for d in dimensions},
        "owner": sa.func.coalesce(o.c.owner, UNASSIGNED),
    }
    summary = base.with_only_columns(
        *(column.label(f"by_{name}") for name, column in counted.items()),
        sa.case((a.c.ended_at.is_(None), "open"), else_=a.c.status).label("by_status"),
        _flag(in_status).label("in_status"),
        _flag(sa.and_(sa.true(), *chosen)).label("chosen"),
    )
    tally: dict[str, Counter[str]] = {name: Counter() for name in (*counted, "status")}
    for row in conn.execute(summary).mappings():
        if row["in_status"]:
            for name in counted:
                if (key := row[f"by_{name}"]) is not None:
                    tally[name][str(key)] += 1
        if row["chosen"]:
            tally["status"][str(row["by_status"])] += 1
    return {"cases": cases, "counts": {name: dict(keys) for name, keys in tally.items()}}


def _chosen(
    tiers: Sequence[str],
    reasons: Sequence[str],
    levels: Sequence[str],
    segments: Sequence[tuple[str, str]],
    owners: Sequence[str],
    search: str,
    dimensions: Sequence[str],
) -> list[sa.ColumnElement[bool]]:
    """The worklist's filters other than status, as conditions on a case's latest alert."""
    a, o = alerts, case_owners
    chosen: list[sa.ColumnElement[bool]] = []
    if tiers:
        chosen.append(a.c.value_tier.in_(tiers))
    if reasons:
        chosen.append(a.c.reason.in_(reasons))
    if levels:
        chosen.append(a.c.risk_level.in_(levels))
    for dimension in dimensions:
        values = [value for d, value in segments if d == dimension]
        if values:
            chosen.append(a.c.segments[dimension].as_string().in_(values))
    if owners:
        named = [owner for owner in owners if owner != UNASSIGNED]
        nobody = o.c.owner.is_(None) if UNASSIGNED in owners else sa.false()
        chosen.append(sa.or_(o.c.owner.in_(named), nobody))
    if search:
        chosen.append(a.c.customer_id.contains(search, autoescape=True))
    return chosen


def _flag(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    """1 where ``condition`` holds, else 0 (as SQLite and PostgreSQL both read it)."""
    return sa.case((condition, 1), else_=0)


def case_alerts(conn: Connection, case_id: str) -> list[dict[str, Any]]:
    """A case's alerts, oldest first, each with its win-back task (none: no such case)."""
    a, t = alerts, winback_tasks
    query = (
        sa.select(
            *(a.c[n] for n in _ALERT_COLUMNS),
            a.c.ended_at,
            *(t.c[n] for n in _TASK_COLUMNS),
            t.c.task_id,
            t.c.status.label("task_status"),
        )
        .select_from(a.outerjoin(t, t.c.alert_id == a.c.alert_id))
        .where(_case_of() == case_id)
        .order_by(a.c.ts, a.c.alert_id)
    )
    return [_aware(row) for row in conn.execute(query)]


def case_owner(conn: Connection, case_id: str) -> str | None:
    """Who works ``case_id``, if anyone."""
    o = case_owners
    return conn.execute(sa.select(o.c.owner).where(o.c.case_id == case_id)).scalar()


def assign_case(conn: Connection, case_id: str, owner: str, by: str, now: datetime) -> bool:
    """Give ``case_id`` to ``owner`` (an empty name: to nobody); ``False``: no such case."""
    a, o = alerts, case_owners
    if conn.execute(sa.select(a.c.alert_id).where(_case_of() == case_id).limit(1)).first() is None:
        return False
    conn.execute(sa.delete(o).where(o.c.case_id == case_id))
    if owner:
        conn.execute(
            sa.insert(o).values(case_id=case_id, owner=owner, assigned_by=by, assigned_at=now)
        )
    return True


def feed_tasks(conn: Connection, status: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` win-back tasks, of one status or of any."""
    t = winback_tasks
    query = sa.select(t).order_by(t.c.created_at.desc(), t.c.task_id).limit(limit)
    if status is not None:
        query = query.where(t.c.status == status)
    return [_aware(row) for row in conn.execute(query)]


def acknowledge_alert(
    conn: Connection, alert_id: str, by: str, now: datetime
) -> dict[str, Any] | None:
    """Mark an alert as seen by ``by`` (the first acknowledgement is kept).

    Returns the alert's ``alert_id``, ``acknowledged_at`` and ``acknowledged_by``,
    or ``None`` when there is no such alert.
    """
    a = alerts
    conn.execute(
        sa.update(a)
        .where(a.c.alert_id == alert_id, a.c.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by=by)
    )
    query = sa.select(a.c.alert_id, a.c.acknowledged_at, a.c.acknowledged_by)
    row = conn.execute(query.where(a.c.alert_id == alert_id)).first()
    return None if row is None else _aware(row)


def customer_row(conn: Connection, customer_id: str) -> dict[str, Any] | None:
    """A customer's ``customer_state`` row (its ``state`` and conclusions), or ``None``."""
    cs = customer_state
    row = conn.execute(sa.select(cs).where(cs.c.customer_id == customer_id)).first()
    return None if row is None else _aware(row)


def recent_alerts(conn: Connection, customer_id: str, limit: int) -> list[dict[str, Any]]:
    """A customer's newest ``limit`` alerts, newest first."""
    a = alerts
    recent = conn.execute(
        sa.select(*(a.c[n] for n in _ALERT_COLUMNS))
        .where(a.c.customer_id == customer_id)
        .order_by(a.c.ts.desc())
        .limit(limit)
    )
    return [_aware(r) for r in recent]


def recent_events(conn: Connection, customer_id: str, limit: int) -> list[dict[str, Any]]:
    """A customer's newest ``limit`` stored events (id, time, type, payload), newest first."""
    e = events
    newest = conn.execute(
        sa.select(e.c.event_id, e.c.ts, e.c.type, e.c.payload)
        .where(e.c.customer_id == customer_id)
        .order_by(e.c.ts.desc(), e.c.seq.desc())
        .limit(limit)
    )
    return [_aware(r) for r in newest]
