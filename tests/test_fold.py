"""The fold, the rule score and the alert policy on hand-built histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from churnwatch.alerts.policy import alert_id, build_alert, next_level, risk_level
from churnwatch.features.state import CustomerState, apply
from churnwatch.features.tier import value_tier
from churnwatch.models.rule import rule_score

from churnwatch.events import ComplaintOpened, EngagementEvent, PurchaseEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def purchase(day: float, amount: float, type_: str = "purchase", eid: str = "") -> PurchaseEvent:
    return PurchaseEvent(
        event_id=eid or f"p{day}{type_}",
        customer_id="c1",
        ts=T0 + timedelta(days=day),
        type=type_,
        amount=amount,
        currency="EUR",
        order_id="o",
        channel="online",
    )


def complaint(day: float, category: str) -> ComplaintOpened:
    return ComplaintOpened(
        event_id=f"k{day}",
        customer_id="c1",
        ts=T0 + timedelta(days=day),
        type="complaint_opened",
        complaint_id=f"k{day}",
        category=category,
        severity=2,
    )


def login(day: float) -> EngagementEvent:
    return EngagementEvent(
        event_id=f"l{day}", customer_id="c1", ts=T0 + timedelta(days=day), type="login"
    )


def fold(events) -> CustomerState:
    state = None
    for event in events:
        state = apply(state, event)
    return state


def test_fold_counts_purchases_refunds_and_complaints() -> None:
    state = fold(
        [
            purchase(0, 100),
            purchase(10, 50),
            purchase(12, 30, "refund"),
            complaint(20, "price"),
            login(25),
        ]
    )
    assert state.purchase_count == 2
    assert state.refund_count == 1
    assert state.monetary_total == pytest.approx(120.0)
    assert state.complaint_count == 1
    assert state.last_complaint_category == "price"
    assert state.last_purchase_s == (T0 + timedelta(days=10)).timestamp()
    assert state.first_seen_s == T0.timestamp()
    assert state.last_event_s == (T0 + timedelta(days=25)).timestamp()
    assert state.event_count == 5


def test_state_round_trips_through_its_dict() -> None:
    state = fold([purchase(0, 100), complaint(1, "delivery")])
    assert CustomerState.from_dict(state.to_dict()) == state


def test_rule_score_exact_values() -> None:
    state = fold([purchase(0, 100), complaint(1, "price")])
    # 45 idle days: recency 0.5 -> 0.35; 1 complaint / (1 purchase + 1) -> 0.3 * 0.5
    score = rule_score(state, (T0 + timedelta(days=45)).timestamp())
    assert score.value == 0.5
    assert score.reason == "competitor"
    assert score.reason_codes[0] == {
        "indicator": "days_since_purchase",
        "value": 45.0,
        "contribution": 0.35,
    }
    # recency saturates at 90 days
    assert rule_score(state, (T0 + timedelta(days=400)).timestamp()).value == 0.85


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
    state = fold([purchase(0, 10), complaint(1, category)])
    assert rule_score(state, state.last_event_s).reason == reason


def test_reason_without_complaints_is_needs_changed() -> None:
    state = fold([purchase(0, 10)])
    assert rule_score(state, state.last_event_s + 86400 * 80).reason == "needs_changed"


def test_customer_who_never_bought_is_scored_from_first_sight() -> None:
    state = fold([login(0)])
    assert rule_score(state, (T0 + timedelta(days=90)).timestamp()).value == 0.7


def test_value_tiers_by_net_spend() -> None:
    assert value_tier(fold([purchase(0, 499.99)])) == "general"
    assert value_tier(fold([purchase(0, 500)])) == "potential"
    assert value_tier(fold([purchase(0, 2500), purchase(1, 600, "refund")])) == "potential"
    assert value_tier(fold([purchase(0, 2000)])) == "high"


def test_risk_levels_and_policy_transitions() -> None:
    assert [risk_level(s) for s in (0.39, 0.4, 0.6, 0.8)] == [None, "watch", "high", "critical"]
    assert next_level(None, 0.45) == ("watch", True)
    assert next_level("watch", 0.5) == ("watch", False)
    assert next_level("watch", 0.65) == ("high", True)  # escalation
    assert next_level("high", 0.45) == ("high", False)  # no new alert on the way down
    assert next_level("high", 0.1) == (None, False)  # re-armed
    assert next_level(None, 0.9) == ("critical", True)


def test_alert_ids_are_deterministic() -> None:
    assert alert_id("c1", "high", "e9") == alert_id("c1", "high", "e9")
    assert alert_id("c1", "high", "e9") != alert_id("c1", "critical", "e9")
    event = purchase(100, 5, eid="e100")
    state = fold([purchase(0, 10), event])
    alert = build_alert(event, "watch", rule_score(state, event.epoch_s), "general")
    assert alert["alert_id"] == alert_id("c1", "watch", "e100")
    assert alert["ts"] == "2026-04-11T00:00:00+00:00"
    assert set(alert) == {
        "alert_id",
        "customer_id",
        "ts",
        "score",
        "risk_level",
        "value_tier",
        "reason",
        "reason_codes",
        "model_version",
    }
