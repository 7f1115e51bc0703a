"""When a score becomes an alert, and how an open alert ends.

Plain Python over one customer's :class:`AlertState`, driven by event time
only, so the worker and replay decide alike. With the thresholds of the
customer's value tier (``alerts/policy.toml``):

* **raise**: the score reaches a level and no alert is open — unless an alert
  at the same or a higher level was raised within ``cooldown_days``;
* **escalate**: an open alert's level is exceeded: a new alert at the higher
  level is raised at once (no cooldown) and the earlier one ends ``escalated``;
* **hold**: while an alert is open, nothing new at the same or a lower level;
* **won back**: a purchase after the alert and within ``winback_window_days``
  ends it ``won_back``;
* **expired**: an alert still open ``expire_days`` after it was raised ends
  ``expired``, at that moment (recorded when the customer is next assessed).

A **case** is one episode of a customer at risk: the alert raised while none is
open opens it, and its ``alert_id`` is the ``case_id`` of every alert that
escalates it. The case ends with its last alert (won back, expired or lost), so
a customer has at most one open case, and at most one open win-back task.

``alert_id`` is derived from customer, level and trigger (the event, or the
lifecycle change of a silent customer), so the same trigger can never yield two
alerts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from churnwatch.alerts.config import LEVELS, Policy
from churnwatch.features.state import DAY_S
from churnwatch.models.scoring import Score
from churnwatch.records import ChurnAlert

_RANK: Final[dict[str | None, int]] = {None: 0, **{level: i + 1 for i, level in enumerate(LEVELS)}}
_ALERT_NAMESPACE = uuid.UUID("6f1c8e9a-3b1d-4c55-9a59-0c1f2f3e4d5a")
#: statuses an alert can end in without the CRM
WON_BACK, EXPIRED, ESCALATED = "won_back", "expired", "escalated"


@dataclass(slots=True)
class AlertState:
    """One customer's alert history, as the policy needs it."""

    open_id: str | None = None
    open_level: str | None = None
    open_since: float | None = None
    last_at: float | None = None
    last_level: str | None = None
    #: the first purchase after the open alert was raised, in event time
    returned_at: float | None = None
    #: the case of the open alert (or of the last one): the id of its first alert
    case_id: str | None = None

    def to_list(self) -> list[Any]:
        """Stored form."""
        return [
            self.open_id,
            self.open_level,
            self.open_since,
            self.last_at,
            self.last_level,
            self.returned_at,
            self.case_id,
        ]

    def note_purchase(self, ts: float) -> None:
        """Remember a purchase made after the open alert (events may come out of order)."""
        if self.open_since is not None and ts > self.open_since:
            self.returned_at = ts if self.returned_at is None else min(self.returned_at, ts)

    @classmethod
    def from_list(cls, items: list[Any] | None) -> AlertState:
        """Inverse of :meth:`to_list`; ``None`` gives a fresh state.

        A state stored before cases existed has no ``case_id``: its open alert,
        if any, is taken as its own case.
        """
        if items and len(items) == 6:
            items = [*items, items[0]]
        return cls(*items) if items else cls()


@dataclass(frozen=True, slots=True)
class Ending:
    """An open alert came to an end: its new status and when."""

    alert_id: str
    status: str
    at: float


def alert_id(customer_id: str, level: str, trigger: str) -> str:
    """Deterministic id: the same customer, level and trigger give the same id."""
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{customer_id}\x1f{level}\x1f{trigger}"))


def settle(state: AlertState, policy: Policy, at: float) -> Ending | None:
    """End the open alert if a purchase won the customer back or it expired by ``at``."""
    if state.open_id is None or state.open_since is None:
        return None
    since = state.open_since
    expires = since + policy.expire_days * DAY_S
    window = since + policy.winback_window_days * DAY_S
    ending = None
    back = state.returned_at
    if back is not None and back <= min(window, expires):
        ending = Ending(state.open_id, WON_BACK, back)
    elif at >= expires:
        ending = Ending(state.open_id, EXPIRED, expires)
    if ending is not None:
        state.open_id = state.open_level = state.open_since = state.returned_at = None
    return ending


def decide(
    state: AlertState,
    policy: Policy,
    tier: str,
    score: float,
    at: float,
    segments: Mapping[str, str | None] | None = None,
) -> str | None:
    """Apply the policy to a new score; return the level to raise an alert at, if any.

    The thresholds are the tier's, or those of a segment rule that applies to
    ``segments``. The caller records the raised alert with :func:`opened`.
    """
    level = policy.thresholds_for(tier, segments).level(score)
    if level is None:
        return None
    if state.open_id is not None:
        return level if _RANK[level] > _RANK[state.open_level] else None
    cooling = (
        state.last_at is not None
        and at - state.last_at < policy.cooldown_days * DAY_S
        and _RANK[level] <= _RANK[state.last_level]
    )
    return None if cooling else level


def opened(state: AlertState, new_id: str, level: str, at: float) -> Ending | None:
    """Record a raised alert; an alert it escalates ends ``escalated``, in the same case."""
    ending = Ending(state.open_id, ESCALATED, at) if state.open_id is not None else None
    if ending is None:
        state.case_id = new_id
    state.open_id, state.open_level, state.open_since = new_id, level, at
    state.returned_at = None
    state.last_at, state.last_level = at, level
    return ending


def assess(
    state: AlertState,
    policy: Policy,
    *,
    tier: str,
    score: float,
    at: float,
    prospect: bool,
    name: Callable[[str], str],
    segments: Mapping[str, str | None] | None = None,
) -> tuple[str | None, list[Ending]]:
    """One scored moment through the policy: the step the worker and the backtest share.

    Ends the open alert if it was won back or expired, then raises an alert if the
    score calls for one; ``name(level)`` gives the new alert its id. A prospect has
    bought nothing yet, so it has nothing to lose: it settles but never raises.
    Returns the level raised (``None``: none) and the alerts that ended, in order.
    """
    endings = [ending for ending in (settle(state, policy, at),) if ending is not None]
    if prospect:
        return None, endings
    level = decide(state, policy, tier, score, at, segments)
    if level is not None:
        escalated = opened(state, name(level), level, at)
        if escalated is not None:
            endings.append(escalated)
    return level, endings


def build_alert(
    customer_id: str,
    trigger: str,
    ts: datetime,
    level: str,
    score: Score,
    value_tier: str,
    lifecycle_stage: str,
    case_id: str,
    segments: dict[str, str | None],
) -> ChurnAlert:
    """The ``churn-alerts`` record raised by ``trigger`` at event time ``ts`` in ``case_id``."""
    value = score.value_fields
    return ChurnAlert(
        alert_id=alert_id(customer_id, level, trigger),
        case_id=case_id,
        customer_id=customer_id,
        ts=ts.isoformat(),
        score=score.value,
        risk_level=level,
        value_tier=value_tier,
        segments=segments,
        reason=score.reason,
        reason_codes=score.reason_codes,
        model_version=score.model_version,
        lifecycle_stage=lifecycle_stage,
        trigger=trigger,
        p_alive=value.get("p_alive"),
        expected_purchases=value.get("expected_purchases"),
        clv=value.get("clv"),
        clv_horizon_days=value.get("clv_horizon_days"),
        value_at_risk=value.get("value_at_risk"),
    )


def iso(at: float) -> str:
    """Event time as ISO-8601 UTC."""
    return datetime.fromtimestamp(at, tz=UTC).isoformat()
