"""Why a customer is leaving: evidence for each of DOMAIN.md's four reasons.

Every reason has a scorecard of the warning indicators that DOMAIN.md §3 says
it looks like in events; each indicator adds evidence points, capped so that
one noisy count cannot decide alone. The primary reason is the one with the
most evidence; with none at all, a customer drifting away has changed needs.

    service_quality  complaints about service, product, delivery or other (1 each, ≤ 2),
                     post-resolution satisfaction ≤ 2 (2), resolution slower than 7 days (1)
    competitor       price complaints (2 each, ≤ 4),
                     spend down by half while engagement does not fall (1)
    communication    complaints about communication (2 each, ≤ 4),
                     unanswered support contacts (1 each, ≤ 3),
                     two or more support contacts in 30 days (1)
    needs_changed    purchases down by a third with no complaint in 90 days (1),
                     engagement down by a third with no complaint (0.5)

The points are judgement, documented here and in docs/alerts.md, not fitted: a
reason must be explainable to the retention team that acts on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REASONS = ("service_quality", "competitor", "needs_changed", "communication")
SLOW_RESOLUTION_HOURS = 7 * 24.0
_SERVICE_CATEGORIES = ("service_quality", "product", "delivery", "other")


def _n(row: Mapping[str, Any], name: str) -> float:
    value = row.get(name)
    return 0.0 if value is None or value != value else float(value)  # NaN is no evidence


def _below(row: Mapping[str, Any], name: str, limit: float) -> bool:
    value = row.get(name)
    return value is not None and value == value and value < limit


def evidence(row: Mapping[str, Any]) -> dict[str, float]:
    """Evidence points per reason for a feature row (:func:`features.row.feature_row`)."""
    service_complaints = sum(_n(row, f"complaints_90d_{c}") for c in _SERVICE_CATEGORIES)
    quiet = _n(row, "complaints_90d") == 0
    # still active elsewhere: engagement measured against a baseline and no lower
    trend = row.get("engagement_trend")
    holds_engagement = trend is not None and trend == trend and trend >= 1.0
    return {
        "service_quality": min(service_complaints, 2.0)
        + 2.0 * _below(row, "post_resolution_satisfaction_90d", 2.5)
        + (_n(row, "resolution_hours_max_90d") > SLOW_RESOLUTION_HOURS),
        "competitor": min(2.0 * _n(row, "complaints_90d_price"), 4.0)
        + (_below(row, "spend_trend", 0.5) and holds_engagement),
        "communication": min(2.0 * _n(row, "complaints_90d_communication"), 4.0)
        + min(_n(row, "unanswered_contacts_30d"), 3.0)
        + (_n(row, "support_contact_30d") >= 2),
        "needs_changed": (quiet and _below(row, "frequency_trend", 2 / 3))
        + 0.5 * (quiet and _below(row, "engagement_trend", 2 / 3)),
    }


def primary_reason(row: Mapping[str, Any]) -> str:
    """The reason with the most evidence (ties: DOMAIN.md order); none: needs_changed."""
    points = evidence(row)
    best = max(REASONS, key=lambda reason: points[reason])
    return best if points[best] > 0 else "needs_changed"
