"""What the retention worklist and its JSON API read and write in the store.

The API's filters are checked here; the store runs their queries
(churnwatch/store/feed.py). ``streams/web.py`` wraps these in Faust views.
The page learns of new alerts by polling the store (:class:`FeedCursor`), not
from the worker's memory, so one page shows the alerts of every worker sharing
the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from churnwatch import store
from churnwatch.alerts.config import LEVELS
from churnwatch.engine.customer import CustomerRecord
from churnwatch.features.row import feature_row
from churnwatch.features.segments import SEGMENTS
from churnwatch.features.tier import TIERS
from churnwatch.models.reasons import REASONS, indicators
from churnwatch.models.value import VALUE_FIELDS
from churnwatch.store import Connection

# the owner filter's name for a case that nobody works
from churnwatch.store.feed import UNASSIGNED as UNASSIGNED

LIMIT_MAX = 1000
#: the events a customer's view shows
RECENT_EVENTS = 20


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


def list_alerts(conn: Connection, flt: AlertFilter) -> list[dict[str, Any]]:
    """The alerts that pass ``flt``, the most value at risk first (then the newest)."""
    return _alerts(conn, flt)


def alerts_since(conn: Connection, since: datetime, flt: AlertFilter) -> list[dict[str, Any]]:
    """The newest ``flt.limit`` alerts raised at or after ``since`` (wall time), oldest first."""
    return _alerts(conn, flt, since)


def _alerts(
    conn: Connection, flt: AlertFilter, since: datetime | None = None
) -> list[dict[str, Any]]:
    tiers, reasons, status = flt.tiers, flt.reasons, flt.status
    return store.feed_alerts(
        conn, tiers=tiers, reasons=reasons, status=status, limit=flt.limit, since=since
    )


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


#: the longest owner name kept
OWNER_MAX = 200


def list_cases(conn: Connection, flt: CaseFilter) -> dict[str, Any]:
    """One row per case that passes ``flt``, the most value at risk first, and counts.

    A case's row is its latest alert (with its task), the case's ``opened_at``
    and ``alerts_in_case``. ``counts`` gives, for the filter's status, the cases
    by tier, reason and level, and, for the other filters, the cases by status.
    """
    return store.feed_cases(
        conn,
        status=flt.status,
        tiers=flt.tiers,
        reasons=flt.reasons,
        levels=flt.levels,
        segments=flt.segments,
        owners=flt.owners,
        search=flt.search,
        limit=flt.limit,
        risk_levels=LEVELS,
        dimensions=SEGMENTS,
    )


def case_view(conn: Connection, case_id: str) -> dict[str, Any] | None:
    """A case's alerts, oldest first, each with its win-back task; ``None``: no such case."""
    alerts = store.case_alerts(conn, case_id)
    if not alerts:
        return None
    latest = alerts[-1]
    owner = store.case_owner(conn, case_id)
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
    if not store.assign_case(conn, case_id, owner, by, now):
        return None
    return {"case_id": case_id, "owner": owner or None, "assigned_by": by, "assigned_at": now}


def list_tasks(conn: Connection, status: str | None = None, limit: int = 200) -> list[dict]:
    """The newest win-back tasks, optionally of one status."""
    check_limit(limit)
    if status is not None:
        check_known("status", (status,), TASK_STATUSES)
    return store.feed_tasks(conn, status, limit)


def acknowledge(conn: Connection, alert_id: str, by: str, now: datetime) -> dict | None:
    """Mark an alert as seen by ``by``; the first acknowledgement is kept.

    Returns the alert's acknowledgement, or ``None`` when there is no such alert.
    """
    return store.acknowledge_alert(conn, alert_id, by, now)


def customer_view(conn: Connection, customer_id: str) -> dict[str, Any] | None:
    """A customer's conclusions, feature row and reason evidence (as of their newest event),
    recent alerts and recent events (:data:`RECENT_EVENTS`, newest first)."""
    state = store.customer_row(conn, customer_id)
    if state is None:
        return None
    record = CustomerRecord.from_row(customer_id, state["state"])
    features = feature_row(record.features) if record.features.last_event_s else {}
    alerts = store.recent_alerts(conn, customer_id, 20)
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
        "events": store.recent_events(conn, customer_id, RECENT_EVENTS),
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
