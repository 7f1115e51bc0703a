"""The documented rule score, used until a trained model exists.

    recency   = min(days since last purchase / RECENCY_FULL_DAYS, 1)
                (days since first seen when the customer never bought)
    complaint = min(complaints / (purchases + 1), 1)
    score     = RECENCY_WEIGHT * recency + COMPLAINT_WEIGHT * complaint

Both parts lie in [0, 1], so the score does too. The primary reason follows the
evidence: complaints about price point to a competitor, about communication to
poor communication, any other complaint to service quality; with no complaint
at all, a customer drifting away has changed needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from churnwatch.features.state import CustomerState

RULE_VERSION = "rule-v1"
RECENCY_FULL_DAYS = 90.0
RECENCY_WEIGHT = 0.7
COMPLAINT_WEIGHT = 0.3
_DAY_S = 86400.0

_REASON_OF_COMPLAINT = {"price": "competitor", "communication": "communication"}


@dataclass(frozen=True, slots=True)
class Score:
    """A churn score in [0, 1] with what drove it."""

    value: float
    reason: str
    reason_codes: list[dict[str, Any]]
    model_version: str


def rule_score(state: CustomerState, as_of_s: float) -> Score:
    """Score ``state`` as of event time ``as_of_s`` with the documented rule."""
    since = state.last_purchase_s if state.last_purchase_s is not None else state.first_seen_s
    idle_days = max(0.0, (as_of_s - since) / _DAY_S) if since is not None else 0.0
    recency = min(idle_days / RECENCY_FULL_DAYS, 1.0)
    complaint = min(state.complaint_count / (state.purchase_count + 1), 1.0)
    value = round(RECENCY_WEIGHT * recency + COMPLAINT_WEIGHT * complaint, 4)

    if state.complaint_count == 0:
        reason = "needs_changed"
    else:
        reason = _REASON_OF_COMPLAINT.get(state.last_complaint_category or "", "service_quality")
    codes = [
        {
            "indicator": "days_since_purchase",
            "value": round(idle_days, 2),
            "contribution": round(RECENCY_WEIGHT * recency, 4),
        },
        {
            "indicator": "complaints_per_purchase",
            "value": round(complaint, 4),
            "contribution": round(COMPLAINT_WEIGHT * complaint, 4),
        },
    ]
    codes.sort(key=lambda code: code["contribution"], reverse=True)
    return Score(value=value, reason=reason, reason_codes=codes, model_version=RULE_VERSION)
