"""What the retention worklist and its JSON API read and write in the store.

Plain SQL over the ``alerts``, ``winback_tasks`` and ``customer_state`` tables:
``streams/web.py`` wraps these in Faust views. The page learns of new alerts
by polling the store (:class:`FeedCursor`), not from the worker's memory, so
one page shows the alerts of every worker sharing the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from churnwatch import store
from churnwatch.alerts.config import LEVELS
from churnwatch.engine.customer import CustomerRecord
from churnwatch.features.row import feature_row
from churnwatch.features.segments import SEGMENTS
from churnwatch.features.tier import TIERS
from churnwatch.models.reasons import REASONS, indicators
from churnwatch.models.value import VALUE_FIELDS
from churnwatch.records import ChurnAlert, fields_of

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
LIMIT_MAX = 1000
#: the events a customer's view shows
RECENT_EVENTS = 20


def _aware(row: Any) -> dict[str, Any]:
    """A result row as a dict, its times in UTC (SQLite hands them back naive)."""
    # keys are SQLAlchemy ``quoted_name``s, which orjson does not take as str
    out = {str(key): value for key, value in row._mapping.items()}
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = store.aware(value)
    return out


class BadParameter(ValueError):
    """A request's parameter has a value the API does not take.

    ``parameter`` names it; ``allowed`` lists the values it takes, when they are a
    closed set. The web views answer 400 with both.
    """

    def __init__(self, parameter: str, message: str, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter, self.allowed = parameter, allowed


def check_known(parameter: str, given: Iterable[str], allowed: tuple[str, ...]) -> None:
    """Refuse any of ``given`` that is not in ``allowed``, naming both."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        values = ", ".join(repr(value) for value in unknown)
        raise BadParameter(
            parameter, f"unknown value {values}; one of {', '.join(allowed)}", allowed
        )


def check_limit(limit: int) -> None:
    """Refuse a ``limit`` outside 1 to :data:`LIMIT_MAX`."""
    if not 1 <= limit <= LIMIT_MAX:
        raise BadParameter("limit", f"must lie between 1 and {LIMIT_MAX} (got {limit})")


#: the statuses an alert, and its task, can have (alerts/policy.py, winback/outcomes.py)
ALERT_STATUSES = ("open", "in_progress", "won_back", "expired", "escalated", "lost")
#: what the alerts' status filter takes: a status, or whether someone acknowledged it
ALERT_FILTER_STATUSES = (*ALERT_STATUSES, "acknowledged", "unacknowledged")
#: what the tasks' status filter takes
TASK_STATUSES = ALERT_STATUSES


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts to list: tiers and reasons (empty: all), an optional status."""

    tiers: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    status: str | None = None
    limit: int = 200

    def __post_init__(self) -> None:
        check_limit(self.limit)
        check_known("tier", self.tiers, TIERS)
        check_known("reason", self.reasons, REASONS)
        if self.status is not None:
            check_known("status", (self.status,), ALERT_FILTER_STATUSES)


def _alerts_query(flt: AlertFilter) -> sa.Select:
    a, t = store.alerts, store.winback_tasks
    query = sa.select(*(a.c[n] for n in _ALERT_COLUMNS), *(t.c[n] for n in _TASK_COLUMNS))
    query = query.select_from(a.outerjoin(t, t.c.alert_id == a.c.alert_id))
    if flt.tiers:
        query = query.where(a.c.value_tier.in_(flt.tiers))
    if flt.reasons:
        query = query.where(a.c.reason.in_(flt.reasons))
    if flt.status == "acknowledged":
        query = query.where(a.c.acknowledged_at.is_not(None))
    elif flt.status == "unacknowledged":
        query = query.where(a.c.acknowledged_at.is_(None))
    elif flt.status is not None:
        query = query.where(a.c.status == flt.status)
    return query


def list_alerts(conn: Connection, flt: AlertFilter) -> list[dict[str, Any]]:
    """The alerts that pass ``flt``, the most value at risk first (then the newest)."""
    a = store.alerts
    query = _alerts_query(flt).order_by(
        a.c.value_at_risk.desc().nulls_last(), a.c.created_at.desc(), a.c.alert_id
    )
    query = query.limit(flt.limit)
    return [_aware(row) for row in conn.execute(query)]


def alerts_since(conn: Connection, since: datetime, flt: AlertFilter) -> list[dict[str, Any]]:
    """The newest ``flt.limit`` alerts raised at or after ``since`` (wall time), oldest first."""
    a = store.alerts
    query = _alerts_query(flt).where(a.c.created_at >= since)
    newest = query.order_by(a.c.created_at.desc(), a.c.alert_id).limit(flt.limit)
    return [_aware(row) for row in reversed(conn.execute(newest).all())]


#: what a case's status filter takes: open (not ended: ``open`` or ``in_progress``),
#: closed (ended), all, or one status its latest alert can have
CASE_STATUSES = ("open", "closed", "all", "in_progress", "won_back", "expired", "lost")
_ENDED = ("won_back", "expired", "lost")


@dataclass(frozen=True)
class CaseFilter:
    """Which cases to list: a status (default open), tiers, reasons, levels, a customer search."""

    status: str = "open"
    tiers: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    #: ``(dimension, value)`` pairs: a case passes with any value given for each dimension
    segments: tuple[tuple[str, str], ...] = ()
    #: who works the case (:func:`assign`); :data:`UNASSIGNED` for cases nobody has
    owners: tuple[str, ...] = ()
    #: part of a customer id
    search: str = ""
    limit: int = 200

    def __post_init__(self) -> None:
        check_limit(self.limit)
        check_known("status", (self.status,), CASE_STATUSES)
        check_known("tier", self.tiers, TIERS)
        check_known("reason", self.reasons, REASONS)
        check_known("level", self.levels, LEVELS)
        # segment values are free text (profiles name them); their dimensions are known
        for dimension, _ in self.segments:
            check_known("segment dimension", (dimension,), SEGMENTS)


#: the owner filter's name for a case that nobody works
UNASSIGNED = "(unassigned)"
#: the longest owner name kept
OWNER_MAX = 200


def _latest_of_cases() -> sa.Subquery:
    """Each case's latest alert, how many alerts it has had and when it opened."""
    a = store.alerts
    case = sa.func.coalesce(a.c.case_id, a.c.alert_id)
    rank = sa.case({level: i for i, level in enumerate(LEVELS)}, value=a.c.risk_level, else_=-1)
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
    a = store.alerts
    if status == "open":
        return a.c.ended_at.is_(None)
    if status == "closed":
        return a.c.ended_at.is_not(None)
    if status == "all":
        return sa.true()
    return a.c.status == status


def list_cases(conn: Connection, flt: CaseFilter) -> dict[str, Any]:
    """One row per case that passes ``flt``, the most value at risk first, and counts.

    A case's row is its latest alert (with its task), the case's ``opened_at``
    and ``alerts_in_case``. ``counts`` gives, for the filter's status, the cases
    by tier, reason and level, and, for the other filters, the cases by status.
    """
    a, t, o = store.alerts, store.winback_tasks, store.case_owners
    latest = _latest_of_cases()
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
    narrowed = base
    if flt.tiers:
        narrowed = narrowed.where(a.c.value_tier.in_(flt.tiers))
    if flt.reasons:
        narrowed = narrowed.where(a.c.reason.in_(flt.reasons))
    if flt.levels:
        narrowed = narrowed.where(a.c.risk_level.in_(flt.levels))
    for dimension in SEGMENTS:
        chosen = [value for d, value in flt.segments if d == dimension]
        if chosen:
            narrowed = narrowed.where(a.c.segments[dimension].as_string().in_(chosen))
    if flt.owners:
        named = [owner for owner in flt.owners if owner != UNASSIGNED]
        nobody = o.c.owner.is_(None) if UNASSIGNED in flt.owners else sa.false()
        narrowed = narrowed.where(sa.or_(o.c.owner.in_(named), nobody))
    if flt.search:
        narrowed = narrowed.where(a.c.customer_id.contains(flt.search, autoescape=True))
    rows = conn.execute(
        narrowed.where(_status_clause(flt.status))
        .order_by(a.c.value_at_risk.desc().nulls_last(), a.c.ts.desc(), a.c.alert_id)
        .limit(flt.limit)
    )
    in_status = base.where(_status_clause(flt.status)).subquery()
    by_status = narrowed.subquery()
    counts: dict[str, dict[str, int]] = {}
    for name, column in (
        ("value_tier", in_status.c.value_tier),
        ("reason", in_status.c.reason),
        ("risk_level", in_status.c.risk_level),
        *((d, in_status.c.segments[d].as_string()) for d in SEGMENTS),
        ("owner", sa.func.coalesce(in_status.c.owner, UNASSIGNED)),
    ):
        grouped = sa.select(column, sa.func.count()).group_by(column)
        counts[name] = {str(k): int(n) for k, n in conn.execute(grouped) if k is not None}
    ended = sa.case((by_status.c.ended_at.is_(None), "open"), else_=by_status.c.status)
    grouped = sa.select(ended, sa.func.count()).group_by(ended)
    counts["status"] = {str(k): int(n) for k, n in conn.execute(grouped)}
    return {"cases": [_aware(row) for row in rows], "counts": counts}


def case_view(conn: Connection, case_id: str) -> dict[str, Any] | None:
    """A case's alerts, oldest first, each with its win-back task; ``None``: no such case."""
    a, t = store.alerts, store.winback_tasks
    query = (
        sa.select(
            *(a.c[n] for n in _ALERT_COLUMNS),
            a.c.ended_at,
            *(t.c[n] for n in _TASK_COLUMNS),
            t.c.task_id,
            t.c.status.label("task_status"),
        )
        .select_from(a.outerjoin(t, t.c.alert_id == a.c.alert_id))
        .where(sa.func.coalesce(a.c.case_id, a.c.alert_id) == case_id)
        .order_by(a.c.ts, a.c.alert_id)
    )
    alerts = [_aware(row) for row in conn.execute(query)]
    if not alerts:
        return None
    latest = alerts[-1]
    o = store.case_owners
    owner = conn.execute(sa.select(o.c.owner).where(o.c.case_id == case_id)).scalar()
    return {
        "case_id": case_id,
        "owner": owner,
        "customer_id": latest["customer_id"],
        "opened_at": alerts[0]["ts"],
        "status": "open" if latest["ended_at"] is None else latest["status"],
        "alerts": alerts,
    }


def assign(conn: Connection, case_id: str, owner: str, by: str, now: datetime) -> dict | None:
    """Give ``case_id`` to ``owner`` (an empty name: to nobody), as ``by`` did at ``now``.

    Returns the case's owner row (``owner`` ``None`` once unassigned), or ``None``
    when there is no such case. A longer name than :data:`OWNER_MAX` is refused.
    """
    owner = owner.strip()
    if "\x00" in owner:
        raise ValueError("owner: a NUL character is not allowed")
    if len(owner) > OWNER_MAX:
        raise ValueError(f"owner: at most {OWNER_MAX} characters (got {len(owner)})")
    if owner == UNASSIGNED:
        raise ValueError(f"owner: {UNASSIGNED!r} names no one; send an empty owner to unassign")
    a, o = store.alerts, store.case_owners
    case = sa.func.coalesce(a.c.case_id, a.c.alert_id)
    if conn.execute(sa.select(a.c.alert_id).where(case == case_id).limit(1)).first() is None:
        return None
    conn.execute(sa.delete(o).where(o.c.case_id == case_id))
    if owner:
        conn.execute(
            sa.insert(o).values(case_id=case_id, owner=owner, assigned_by=by, assigned_at=now)
        )
    return {"case_id": case_id, "owner": owner or None, "assigned_by": by, "assigned_at": now}


def list_tasks(conn: Connection, status: str | None = None, limit: int = 200) -> list[dict]:
    """The newest win-back tasks, optionally of one status."""
    check_limit(limit)
    if status is not None:
        check_known("status", (status,), TASK_STATUSES)
    t = store.winback_tasks
    query = sa.select(t).order_by(t.c.created_at.desc(), t.c.task_id).limit(limit)
    if status is not None:
        query = query.where(t.c.status == status)
    return [_aware(row) for row in conn.execute(query)]


def acknowledge(conn: Connection, alert_id: str, by: str, now: datetime) -> dict | None:
    """Mark an alert as seen by ``by``; the first acknowledgement is kept.

    Returns the alert's acknowledgement, or ``None`` when there is no such alert.
    """
    a = store.alerts
    conn.execute(
        sa.update(a)
        .where(a.c.alert_id == alert_id, a.c.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by=by)
    )
    query = sa.select(a.c.alert_id, a.c.acknowledged_at, a.c.acknowledged_by)
    row = conn.execute(query.where(a.c.alert_id == alert_id)).first()
    return None if row is None else _aware(row)


def customer_view(conn: Connection, customer_id: str) -> dict[str, Any] | None:
    """A customer's conclusions, feature row and reason evidence (as of their newest event),
    recent alerts and recent events (:data:`RECENT_EVENTS`, newest first)."""
    cs = store.customer_state
    row = conn.execute(sa.select(cs).where(cs.c.customer_id == customer_id)).first()
    if row is None:
        return None
    record = CustomerRecord.from_row(customer_id, row.state)
    features = feature_row(record.features) if record.features.last_event_s else {}
    a = store.alerts
    recent = conn.execute(
        sa.select(*(a.c[n] for n in _ALERT_COLUMNS))
        .where(a.c.customer_id == customer_id)
        .order_by(a.c.ts.desc())
        .limit(20)
    )
    state = _aware(row)
    alerts = [_aware(r) for r in recent]
    e = store.events
    newest = conn.execute(
        sa.select(e.c.event_id, e.c.ts, e.c.type, e.c.payload)
        .where(e.c.customer_id == customer_id)
        .order_by(e.c.ts.desc(), e.c.seq.desc())
        .limit(RECENT_EVENTS)
    )
    return {
        "customer_id": customer_id,
        "lifecycle_stage": state["lifecycle_stage"],
        "value_tier": state["value_tier"],
        "score": state["score"],
        "scored_at": state["scored_at"],
        "features": features,
        # worth and value at risk as of the newest alert (the scorer values only what it alerts)
        "value": {name: alerts[0][name] for name in VALUE_FIELDS} if alerts else None,
        "alerts": alerts,
        # the reason scorecard's lines that give points, as of the newest event
        "evidence": [asdict(line) for line in indicators(features)] if features else [],
        "events": [_aware(r) for r in newest],
    }


@dataclass
class FeedCursor:
    """Hands out each alert once, polling by ``created_at`` with an overlap.

    Two workers can commit out of ``created_at`` order, so each poll looks
    ``overlap`` further back than the newest alert seen and skips ids it has
    already handed out; ids older than the overlap are forgotten.
    """

    since: datetime
    overlap: timedelta = timedelta(seconds=30)
    _seen: dict[str, datetime] = field(default_factory=dict)

    @property
    def poll_from(self) -> datetime:
        """Where the next poll starts."""
        return self.since - self.overlap

    def take(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows not handed out before; advances the cursor."""
        fresh = []
        for row in rows:
            created = row["created_at"]
            if row["alert_id"] in self._seen:
                continue
            self._seen[row["alert_id"]] = created
            fresh.append(row)
            self.since = max(self.since, created)
        horizon = self.poll_from
        self._seen = {k: v for k, v in self._seen.items() if v >= horizon}
        return fresh
