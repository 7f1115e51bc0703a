"""The documented rule score, used until a trained model is promoted.

    idle      = recency_days (tenure_days when the customer never bought)
    recency   = min(idle / RECENCY_FULL_DAYS, 1)
    complaint = min(complaints_90d / (frequency_90d + 1), 1)
    score     = RECENCY_WEIGHT * recency + COMPLAINT_WEIGHT * complaint

Both parts lie in [0, 1], so the score does too; each part is a reason code.
The primary reason comes from :mod:`churnwatch.models.reasons`, as for a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from churnwatch.models.scoring import ReasonCode, Row, Score, score_rows

RULE_VERSION = "rule-v3"
RECENCY_FULL_DAYS = 90.0
RECENCY_WEIGHT = 0.7
COMPLAINT_WEIGHT = 0.3


def _parts(row: Row) -> tuple[float, float, float]:
    """(idle days, recency part, complaint part) of the rule."""
    idle = row["recency_days"] if row["recency_days"] is not None else row["tenure_days"]
    idle = max(0.0, idle or 0.0)
    recency = min(idle / RECENCY_FULL_DAYS, 1.0)
    complaint = min(row["complaints_90d"] / (row["frequency_90d"] + 1), 1.0)
    return idle, recency, complaint


class RuleScorer:
    """The rule as a :class:`~churnwatch.models.scoring.Scorer`."""

    version = RULE_VERSION

    def values(self, rows: Sequence[Row]) -> list[float]:
        """The rule's score of each row."""
        out = []
        for row in rows:
            _, recency, complaint = _parts(row)
            out.append(round(RECENCY_WEIGHT * recency + COMPLAINT_WEIGHT * complaint, 4))
        return out

    def reason_codes(self, rows: Sequence[Row], values: Sequence[float]) -> list[list[ReasonCode]]:
        """The rule's two parts, larger first."""
        out = []
        for row in rows:
            idle, recency, complaint = _parts(row)
            codes: list[dict[str, Any]] = [
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
            out.append(codes)
        return out


def rule_score(row: Row) -> Score:
    """Score one feature row with the rule (reason codes included)."""
    return score_rows(RuleScorer(), [row])[0]
