"""The documented rule score, used until a trained model exists.

    idle      = recency_days (tenure_days when the customer never bought)
    recency   = min(idle / RECENCY_FULL_DAYS, 1)
    complaint = min(complaints_90d / (frequency_90d + 1), 1)
    score     = RECENCY_WEIGHT * recency + COMPLAINT_WEIGHT * complaint

Both parts lie in [0, 1], so the score does too. The primary reason follows the
evidence: complaints about price point to a competitor, about communication to
poor communication, any other complaint to service quality; with no complaint
in 90 days, a customer drifting away has changed needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RULE_VERSION = "rule-v2"
RECENCY_FULL_DAYS = 90.0
RECENCY_WEIGHT = 0.7
COMPLAINT_WEIGHT = 0.3

_REASON_OF_COMPLAINT = {"price": "competitor", "communication": "communication"}


@dataclass(frozen=True, slots=True)
class Score:
    """A churn score in [0, 1] with what drove it."""

    value: float
    reason: str
    reason_codes: list[dict[str, Any]]
    model_version: str


def rule_score(row: Mapping[str, Any]) -> Score:
    """Score a feature row (:func:`churnwatch.features.row.feature_row`) with the rule."""
    idle = row["recency_days"] if row["recency_days"] is not None else row["tenure_days"]
    idle = max(0.0, idle or 0.0)
    recency = min(idle / RECENCY_FULL_DAYS, 1.0)
    complaint = min(row["complaints_90d"] / (row["frequency_90d"] + 1), 1.0)
    value = round(RECENCY_WEIGHT * recency + COMPLAINT_WEIGHT * complaint, 4)

    if row["complaints_90d"] == 0:
        reason = "needs_changed"
    else:
        reason = _REASON_OF_COMPLAINT.get(row["last_complaint_category"] or "", "service_quality")
    codes = [
        {
            "indicator": "days_since_purchase",
            "value": round(idle, 2),
            "contribution": round(RECENCY_WEIGHT * recency, 4),
        },
        {
            "indicator": "complaints_per_purchase_90d",
            "value": round(complaint, 4),
            "contribution": round(COMPLAINT_WEIGHT * complaint, 4),
        },
    ]
    codes.sort(key=lambda code: code["contribution"], reverse=True)
    return Score(value=value, reason=reason, reason_codes=codes, model_version=RULE_VERSION)
