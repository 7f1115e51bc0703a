"""The reason scorecard: each of the four reasons from its own evidence."""

from __future__ import annotations

import pytest

from churnwatch.features.row import feature_row
from churnwatch.features.state import apply
from churnwatch.models.reasons import evidence, indicators, primary_reason
from tests.builders import at, ev


def row_after(events, day: float) -> dict:
    state = None
    for event in events:
        state = apply(state, event)
    return feature_row(state, at(day))


def buys(days) -> list:
    return [ev(d, "purchase", amount=50, order_id=f"o{d}") for d in days]


def complaint(day: float, category: str, cid: str | None = None) -> object:
    return ev(day, "complaint_opened", complaint_id=cid or f"k{day}", category=category, severity=2)


def test_slow_unhappy_service_recovery_is_service_quality() -> None:
    history = [
        *buys(range(0, 120, 10)),
        complaint(100, "delivery", "k1"),
        ev(110, "complaint_resolved", complaint_id="k1", satisfaction=1),  # 10 days, rated 1
    ]
    points = evidence(row_after(history, 120))
    # one complaint (1) + post-resolution rating <= 2 (2) + slower than 7 days (1)
    assert points == {
        "service_quality": 4.0,
        "competitor": 0.0,
        "communication": 0.0,
        "needs_changed": 0.0,
    }
    assert primary_reason(row_after(history, 120)) == "service_quality"


def test_price_complaints_and_shrinking_spend_with_steady_engagement_is_competitor() -> None:
    # buying every 10 days for 90 days, then once in the last 30 for a fifth of the basket
    history = [
        *buys(range(0, 90, 10)),
        ev(100, "purchase", amount=10, order_id="small"),
        *[ev(d, "login") for d in (*range(0, 120, 3), 111, 112, 113)],  # engagement holds
        complaint(105, "price"),
    ]
    row = row_after(history, 120)
    assert row["spend_trend"] < 0.5 and row["engagement_trend"] >= 1.0
    assert evidence(row)["competitor"] == 3.0  # one price complaint (2) + spend drop (1)
    assert primary_reason(row) == "competitor"


def test_unanswered_contacts_and_communication_complaints_are_communication() -> None:
    history = [
        *buys(range(0, 120, 10)),
        *[ev(100 + d, "support_contact", answered=False) for d in range(3)],
        complaint(110, "communication"),
    ]
    points = evidence(row_after(history, 120))
    # complaint (2) + three unanswered contacts (3) + two or more contacts (1)
    assert points["communication"] == 6.0
    assert primary_reason(row_after(history, 120)) == "communication"


def test_emails_no_longer_opened_while_logging_in_are_communication() -> None:
    # opened an email every 5 days for 90 days, none in the last 30; logs in throughout
    history = [
        *buys(range(0, 120, 10)),
        *[ev(d + 0.5, "email_open") for d in range(0, 90, 5)],
        *[ev(d + 0.25, "login") for d in range(0, 120, 4)],
    ]
    row = row_after(history, 120)
    assert row["email_trend"] == 0.0 and row["login_30d"] > 0
    assert evidence(row)["communication"] == 2.0
    assert primary_reason(row) == "communication"


def test_emails_fading_with_everything_else_give_communication_nothing() -> None:
    # the same emails, but the customer no longer logs in either: no sign of a message unheard
    history = [*buys(range(0, 120, 10)), *[ev(d + 0.5, "email_open") for d in range(0, 90, 5)]]
    row = row_after(history, 120)
    assert row["email_trend"] == 0.0 and row["login_30d"] == 0
    assert evidence(row)["communication"] == 0.0


def test_spend_down_while_engagement_dips_less_than_a_third_is_competitor_evidence() -> None:
    row = {"spend_trend": 0.3, "engagement_trend": 0.8}
    assert evidence(row)["competitor"] == 1.0
    assert evidence({**row, "engagement_trend": 0.6})["competitor"] == 0.0


def test_fading_purchases_without_complaints_are_needs_changed() -> None:
    history = [*buys(range(0, 90, 5)), *buys([100])]
    row = row_after(history, 120)
    assert row["frequency_trend"] < 2 / 3 and row["complaints_90d"] == 0
    assert evidence(row)["needs_changed"] == 1.0
    assert primary_reason(row) == "needs_changed"


@pytest.mark.parametrize("day", [1, 400])
def test_no_evidence_at_all_defaults_to_needs_changed(day: int) -> None:
    row = row_after(buys([0]), day)
    assert primary_reason(row) == "needs_changed"


def test_the_indicators_say_in_words_what_gave_each_reason_its_points() -> None:
    row = {
        "complaints_90d": 3,
        "complaints_90d_price": 2,
        "complaints_90d_delivery": 1,
        "spend_trend": 0.3,
        "engagement_trend": 1.2,
        "support_contact_30d": 2,
    }
    lines = [(i.reason, i.feature, i.value, i.points) for i in indicators(row)]
    assert lines == [
        ("service_quality", "complaints_90d", 1.0, 1.0),
        ("competitor", "complaints_90d_price", 2, 4.0),
        ("competitor", "spend_trend", 0.3, 1.0),
        ("communication", "support_contact_30d", 2, 1.0),
    ]
    assert indicators(row)[1].text == "price complaints in 90 days"
    assert evidence(row) == {
        "service_quality": 1.0,
        "competitor": 5.0,
        "needs_changed": 0.0,
        "communication": 1.0,
    }
    assert primary_reason(row) == "competitor"
