"""When a score becomes an alert.

A customer is alerted when their risk level rises: first reaching ``watch``,
``high`` or ``critical``, or escalating from a lower level. While the level
stays or falls back within the alerting range nothing new is raised; once the
score drops below every threshold (say, after a purchase) the customer is
re-armed. ``alert_id`` is derived from customer, level and the trigger (the
event, or the lifecycle change of a silent customer), so the same trigger can
never yield two alerts.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from churnwatch.models.scoring import Score

#: (level, minimum score), strongest first.
RISK_THRESHOLDS: tuple[tuple[str, float], ...] = (("critical", 0.8), ("high", 0.6), ("watch", 0.4))
_RANK = {None: 0, "watch": 1, "high": 2, "critical": 3}
_ALERT_NAMESPACE = uuid.UUID("6f1c8e9a-3b1d-4c55-9a59-0c1f2f3e4d5a")


def risk_level(score: float) -> str | None:
    """The strongest level whose threshold ``score`` reaches, or ``None``."""
    for level, minimum in RISK_THRESHOLDS:
        if score >= minimum:
            return level
    return None


def next_level(previous: str | None, score: float) -> tuple[str | None, bool]:
    """Return the customer's new alert level and whether to raise an alert now."""
    level = risk_level(score)
    if level is None:
        return None, False
    if _RANK[level] > _RANK[previous]:
        return level, True
    return previous, False


def alert_id(customer_id: str, level: str, trigger: str) -> str:
    """Deterministic id: the same customer, level and trigger give the same id."""
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{customer_id}\x1f{level}\x1f{trigger}"))


def build_alert(
    customer_id: str,
    trigger: str,
    ts: datetime,
    level: str,
    score: Score,
    value_tier: str,
    lifecycle_stage: str,
) -> dict[str, Any]:
    """The ``churn-alerts`` record (DESIGN.md) raised by ``trigger`` at event time ``ts``."""
    return {
        "alert_id": alert_id(customer_id, level, trigger),
        "customer_id": customer_id,
        "ts": ts.isoformat(),
        "score": score.value,
        "risk_level": level,
        "value_tier": value_tier,
        "reason": score.reason,
        "reason_codes": score.reason_codes,
        "model_version": score.model_version,
        "lifecycle_stage": lifecycle_stage,
        "trigger": trigger,
    }
