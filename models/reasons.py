"""Why a customer is leaving: evidence for each of the four reasons (docs/alerts.md).

Every reason has a scorecard of the warning indicators it shows in events
(docs/features.md's catalogue); each indicator adds evidence points, capped so that
one noisy count cannot decide alone. The primary reason is the one with the
most evidence; with none at all, a customer drifting away has changed needs.

    service_quality  complaints about service, product, delivery or other (1 each, ≤ 2),
                     post-resolution satisfaction ≤ 2 (2), resolution slower than 7 days (1)
    competitor       price complaints (2 each, ≤ 4),
                     spend down by half while engagement is not down by a third (1)
    communication    complaints about communication (2 each, ≤ 4),
                     unanswered support contacts (1 each, ≤ 3),
                     two or more support contacts in 30 days (1),
                     emails opened or clicked down to under a third of the customer's
                     own rate while they still log in (2)
    needs_changed    purchases down by a third with no complaint in 90 days (1),
                     engagement down by a third with no complaint (0.5)

The points are judgement, documented here and in docs/alerts.md, not fitted: a
reason must be explainable to the retention team that acts on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

REASONS = ("service_quality", "competitor", "needs_changed", "communication")
SLOW_RESOLUTION_HOURS: Final = 7 * 24.0
_SERVICE_CATEGORIES = ("service_quality", "product", "delivery", "other")
#: a trend (30 days against the 90 before) below this has fallen by a third
FALLEN = 2 / 3


def _n(row: Mapping[str, Any], name: str) -> float:
    value = row.get(name)
    return 0.0 if value is None or value != value else float(value)  # NaN is no evidence


def _below(row: Mapping[str, Any], name: str, limit: float) -> bool:
    value = row.get(name)
    return value is not None and value == value and value < limit


@dataclass(frozen=True, slots=True)
class Indicator:
    """One line of a reason's scorecard that gave it points, in words and numbers."""

    reason: str
    #: what was seen, in the retention team's words
    text: str
    #: the feature it reads, and its value
    feature: str
    value: float | None
    points: float


def indicators(row: Mapping[str, Any]) -> list[Indicator]:
    """Every scorecard line that gives a reason points for a feature row, in reason order."""
    service_complaints = sum(_n(row, f"complaints_90d_{c}") for c in _SERVICE_CATEGORIES)
    quiet = _n(row, "complaints_90d") == 0
    # still active elsewhere: engagement measured against a baseline and not down
    # by a third (the needs_changed line below reads the same trend the other way)
    trend = row.get("engagement_trend")
    holds_engagement = trend is not None and trend == trend and trend >= FALLEN
    # messages no longer answered: the customer stopped opening emails, not coming
    emails_ignored = _below(row, "email_trend", 1 / 3) and _n(row, "login_30d") > 0
    lines = [
        Indicator(
            "service_quality",
            "complaints about service, product or delivery in 90 days",
            "complaints_90d",
            service_complaints,
            min(service_complaints, 2.0),
        ),
        Indicator(
            "service_quality",
            "low satisfaction after complaints were resolved (90 days)",
            "post_resolution_satisfaction_90d",
            row.get("post_resolution_satisfaction_90d"),
            2.0 * _below(row, "post_resolution_satisfaction_90d", 2.5),
        ),
        Indicator(
            "service_quality",
            "a complaint took more than 7 days to resolve (hours, 90 days)",
            "resolution_hours_max_90d",
            row.get("resolution_hours_max_90d"),
            float(_n(row, "resolution_hours_max_90d") > SLOW_RESOLUTION_HOURS),
        ),
        Indicator(
            "competitor",
            "price complaints in 90 days",
            "complaints_90d_price",
            row.get("complaints_90d_price"),
            min(2.0 * _n(row, "complaints_90d_price"), 4.0),
        ),
        Indicator(
            "competitor",
            "spend down by half while engagement is not down by a third (30 days against before)",
            "spend_trend",
            row.get("spend_trend"),
            float(_below(row, "spend_trend", 0.5) and holds_engagement),
        ),
        Indicator(
            "communication",
            "complaints about communication in 90 days",
            "complaints_90d_communication",
            row.get("complaints_90d_communication"),
            min(2.0 * _n(row, "complaints_90d_communication"), 4.0),
        ),
        Indicator(
            "communication",
            "support contacts left unanswered in 30 days",
            "unanswered_contacts_30d",
            row.get("unanswered_contacts_30d"),
            min(_n(row, "unanswered_contacts_30d"), 3.0),
        ),
        Indicator(
            "communication",
            "two or more support contacts in 30 days",
            "support_contact_30d",
            row.get("support_contact_30d"),
            float(_n(row, "support_contact_30d") >= 2),
        ),
        Indicator(
            "communication",
            "emails opened or clicked down to under a third while still logging in "
            "(30 days against before)",
            "email_trend",
            row.get("email_trend"),
            2.0 * emails_ignored,
        ),
        Indicator(
            "needs_changed",
            "purchases down by a third, no complaint in 90 days (30 days against before)",
            "frequency_trend",
            row.get("frequency_trend"),
            float(quiet and _below(row, "frequency_trend", FALLEN)),
        ),
        Indicator(
            "needs_changed",
            "engagement down by a third, no complaint in 90 days (30 days against before)",
            "engagement_trend",
            trend,
            0.5 * (quiet and _below(row, "engagement_trend", FALLEN)),
        ),
    ]
    return [line for line in lines if line.points > 0]


def evidence(row: Mapping[str, Any]) -> dict[str, float]:
    """Evidence points per reason for a feature row (:func:`features.row.feature_row`)."""
    points = dict.fromkeys(REASONS, 0.0)
    for line in indicators(row):
        points[line.reason] += line.points
    return points


def primary_reason(row: Mapping[str, Any]) -> str:
    """The reason with the most evidence (ties: ``REASONS`` order); none: needs_changed."""
    points = evidence(row)
    best = max(REASONS, key=lambda reason: points[reason])
    return best if points[best] > 0 else "needs_changed"
