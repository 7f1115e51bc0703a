"""The rule score on feature rows, the alert policy and the alert record."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from churnwatch.alerts.policy import alert_id, build_alert
from churnwatch.features.row import feature_row
from churnwatch.features.state import apply
from churnwatch.models.rule import rule_score
from tests.builders import at, ev

SEGMENTS = {"region": "north", "industry": None, "channel": "online", "segment": None}


def row_of(events, day: float) -> dict:
    state = None
    for event in events:
        state = apply(state, event)
    return feature_row(state, at(day))


def complaint(day: float, category: str) -> object:
    return ev(day, "complaint_opened", complaint_id=f"k{day}", category=category, severity=2)


def test_rule_score_exact_values() -> None:
    history = [ev(0, "purchase", amount=100), complaint(1, "price")]
    # 45 idle days: recency 0.5 -> 0.35; 1 complaint / (1 purchase + 1) -> 0.3 * 0.5
    score = rule_score(row_of(history, 45))
    assert score.value == 0.5
    assert score.reason == "competitor"
    assert score.reason_codes[0] == {
        "indicator": "days_since_purchase",
        "value": 45.0,
        "contribution": 0.35,
    }
    # recency saturates at 90 days; the complaint has left the 90-day window by then
    assert rule_score(row_of(history, 400)).value == 0.7


@pytest.mark.parametrize(
    ("category", "reason"),
    [
        ("price", "competitor"),
        ("communication", "communication"),
        ("delivery", "service_quality"),
        ("service_quality", "service_quality"),
    ],
)
def test_reason_follows_the_last_complaint(category: str, reason: str) -> None:
    assert rule_score(row_of([ev(0, "purchase", amount=10), complaint(1, category)], 1)).reason == (
        reason
    )


def test_reason_without_complaints_is_needs_changed() -> None:
    assert rule_score(row_of([ev(0, "purchase", amount=10)], 80)).reason == "needs_changed"


def test_customer_who_never_bought_is_scored_from_first_sight() -> None:
    assert rule_score(row_of([ev(0, "login")], 90)).value == 0.7


def test_alerts_are_deterministic_per_trigger() -> None:
    assert alert_id("c1", "high", "e9") == alert_id("c1", "high", "e9")
    assert alert_id("c1", "high", "e9") != alert_id("c1", "critical", "e9")
    score = rule_score(row_of([ev(0, "purchase", amount=10)], 100))
    when = datetime(2026, 4, 11, tzinfo=UTC)
    alert = build_alert("c1", "e100", when, "watch", score, "general", "lapsed", "case-1", SEGMENTS)
    assert alert == {
        "alert_id": alert_id("c1", "watch", "e100"),
        "case_id": "case-1",
        "customer_id": "c1",
        "ts": "2026-04-11T00:00:00+00:00",
        "score": 0.7,
        "risk_level": "watch",
        "value_tier": "general",
        "segments": SEGMENTS,
        "reason": "needs_changed",
        "reason_codes": score.reason_codes,
        "model_version": "rule-v3",
        "lifecycle_stage": "lapsed",
        "trigger": "e100",
        # the rule has no purchase model: the worth is the year's spend run over 90 days
        "p_alive": None,
        "expected_purchases": None,
        "clv": round(10 * 90 / 365, 2),
        "clv_horizon_days": 90.0,
        "value_at_risk": round(0.7 * round(10 * 90 / 365, 2), 2),
    }
