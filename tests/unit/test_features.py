"""Exact feature values for hand-built histories, edge cases included.

T is T0 + 100 days, a midnight, so every window is docs/contract.md's
``T - N days < ts <= T`` exactly; each history puts events on the edges.
"""

from __future__ import annotations

import orjson
import pytest

from churnwatch.features.row import FEATURE_NAMES, feature_row
from churnwatch.features.state import KEEP_DAYS, CustomerState, apply, is_too_late
from tests.builders import at, ev

T = at(100)


def fold(events) -> CustomerState:
    state = None
    for event in events:
        state = apply(state, event)
    return state


RFM_HISTORY = [
    ev(-30, "purchase", amount=10),  # in 365 d only
    ev(10, "purchase", amount=20),  # exactly T - 90 d: out of 90 d, in the trend baseline
    ev(10.5, "purchase", amount=30),
    ev(70, "purchase", amount=40),  # exactly T - 30 d: out of 30 d
    ev(70.25, "purchase", amount=50),
    ev(100, "purchase", amount=60),  # exactly T: in
    ev(95, "refund", amount=500),  # more than the window's spend
    ev(40, "refund", amount=5),
]
RFM_EXPECTED = {
    "recency_days": 0.0,
    "frequency_30d": 2,
    "frequency_90d": 4,
    "frequency_365d": 6,
    "monetary_30d": -390.0,
    "monetary_90d": -325.0,
    "monetary_365d": -295.0,
    "avg_order_value_365d": 35.0,
    "refunds_90d": 2,
    "refund_amount_90d": 505.0,
    "purchase_interval_days": 26.0,
    "last_interval_days": 29.75,
    "interval_ratio": 0.0,
    "frequency_trend": 2.0,  # 2 in 30 d against 3 in the 90 d before (1 per 30 d)
    "spend_trend": pytest.approx(110 / 30),
    # the year holds the 130 days since the customer was first seen
    "frequency_trend_365d": pytest.approx(4 / (6 * 90 / 130)),
    "spend_trend_365d": pytest.approx(180 / (210 * 90 / 130)),
    # purchase days -31, 9, 10, 69, 70, 99: gaps 40, 1, 59, 1, 29 (mean 26, variance 508.8)
    "interval_cv_365d": pytest.approx(508.8**0.5 / 26),
    "rhythm_z": pytest.approx(-26 / 508.8**0.5),
    "purchases_lifetime": 6,
    "days_since_first_purchase": 130.0,
    "tenure_days": 130.0,
    "days_since_signup": None,
    "last_complaint_category": None,
    "satisfaction_mean": None,
}

COMPLAINT_HISTORY = [
    ev(80, "complaint_opened", complaint_id="k1", category="service_quality", severity=2),
    ev(82, "complaint_resolved", complaint_id="k1", satisfaction=2),  # 48 h
    ev(90, "complaint_opened", complaint_id="k2", category="price", severity=1),  # overdue
    ev(95, "complaint_opened", complaint_id="k3", category="price", severity=3),
    # resolved before it was opened, and heard of first: 0 h, never negative
    ev(85.5, "complaint_resolved", complaint_id="k4"),
    ev(86, "complaint_opened", complaint_id="k4", category="delivery", severity=1),
    # opened exactly T - 90 d (out of 90 d), resolved inside it: counts as resolved
    ev(10, "complaint_opened", complaint_id="k5", category="other", severity=1),
    ev(12, "complaint_resolved", complaint_id="k5", satisfaction=5),
    ev(75, "complaint_opened", complaint_id="k6", category="communication", severity=2),
    ev(93, "complaint_opened", complaint_id="k7", category="other", severity=1),  # 7 d: not yet
]
COMPLAINT_EXPECTED = {
    "complaints_30d": 6,
    "complaints_90d": 6,
    "complaints_365d": 7,
    "complaints_90d_service_quality": 1,
    "complaints_90d_product": 0,
    "complaints_90d_price": 2,
    "complaints_90d_delivery": 1,
    "complaints_90d_communication": 1,
    "complaints_90d_other": 1,
    "last_complaint_category": "price",
    "open_complaints": 4,
    "overdue_complaints": 2,
    "resolved_complaints_90d": 3,
    "resolution_hours_mean_90d": 32.0,
    "resolution_hours_max_90d": 48.0,
    "satisfaction_latest": 2,
    "satisfaction_mean": 3.5,
    "post_resolution_satisfaction_90d": 3.5,
    "recency_days": None,
    "frequency_90d": 0,
    "monetary_90d": 0.0,
}

ENGAGEMENT_HISTORY = [
    ev(0, "profile", signup_ts="2025-01-01T00:00:00+00:00"),
    ev(-5, "profile", signup_ts="2020-01-01T00:00:00+00:00"),  # older profile: ignored
    ev(5, "survey_response", satisfaction=1, nps=2),  # outside 90 d
    ev(60, "survey_response", satisfaction=4, nps=9),
    ev(99, "survey_response", nps=7),
    ev(71, "login"),
    ev(80, "login"),
    ev(69.5, "email_open"),  # T - 30.5 d
    ev(99.75, "email_click"),
    ev(98, "support_contact", answered=True),
    ev(99.5, "support_contact"),
    ev(85, "points_earned", points=120),
    ev(88, "points_redeemed", points=20),
    ev(5, "points_earned", points=999),  # outside 90 d
    ev(72, "campaign_participation"),
    ev(40, "member_event"),
]
ENGAGEMENT_EXPECTED = {
    "satisfaction_latest": 4,
    "satisfaction_mean": 4.0,
    "post_resolution_satisfaction_90d": None,
    "nps_latest": 7,
    "nps_mean_90d": 8.0,
    "engagement_30d": 9,
    "engagement_90d": 12,
    # 9 in 30 d against 5 in the 90 d before, of which the customer was seen in 75
    "engagement_trend": pytest.approx(9 / (5 * 30 / 75)),
    # the click in 30 d against the open at T - 30.5 d, in the same 75 days seen
    "email_trend": pytest.approx(1 / (1 * 30 / 75)),
    "login_30d": 2,
    "email_open_30d": 0,
    "email_click_30d": 1,
    "campaign_participation_30d": 1,
    "member_event_30d": 0,
    "points_earned_30d": 1,
    "points_redeemed_30d": 1,
    "support_contact_30d": 2,
    "survey_response_30d": 1,
    "days_since_engagement": 0.25,
    "points_earned_90d": 120,
    "points_redeemed_90d": 20,
    "unanswered_contacts_30d": 1,
    "tenure_days": 105.0,
    "days_since_signup": 465.0,
    "recency_days": None,
    "frequency_30d": 0,
    "avg_order_value_365d": None,
    "purchase_interval_days": None,
    "last_interval_days": None,
    "interval_ratio": None,
    "frequency_trend": None,
    "spend_trend": None,
    "open_complaints": 0,
    "resolution_hours_mean_90d": None,
    "resolution_hours_max_90d": None,
}

CASES = [
    ("rfm", RFM_HISTORY, RFM_EXPECTED),
    ("complaints", COMPLAINT_HISTORY, COMPLAINT_EXPECTED),
    ("engagement", ENGAGEMENT_HISTORY, ENGAGEMENT_EXPECTED),
]


@pytest.mark.parametrize(("history", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_exact_feature_values(history, expected) -> None:
    row = feature_row(fold(history), T)
    assert set(row) == set(FEATURE_NAMES)
    assert {name: row[name] for name in expected} == expected


def test_the_hand_built_histories_cover_every_feature() -> None:
    covered = set().union(*(expected for _, _, expected in CASES))
    assert covered == set(FEATURE_NAMES)


@pytest.mark.parametrize(("history", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_reverse_order_gives_the_same_state(history, expected) -> None:
    forward, backward = fold(history), fold(reversed(history))
    assert forward.to_dict() == backward.to_dict()


def test_state_round_trips_through_its_dict() -> None:
    state = fold(COMPLAINT_HISTORY + RFM_HISTORY)
    assert CustomerState.from_dict(state.to_dict()) == state


def test_memory_is_bounded_by_the_longest_window() -> None:
    # ten years of daily purchases keep at most a year of day buckets
    state = fold(ev(day + 0.5, "purchase", amount=1) for day in range(3650))
    assert len(state.buckets) == KEEP_DAYS
    row = feature_row(state, at(3650))
    assert (row["frequency_30d"], row["frequency_365d"]) == (30, 365)
    assert state.purchase_count == 3650
    assert row["purchase_interval_days"] == 1.0


def test_an_event_older_than_a_year_counts_only_in_lifetime_totals() -> None:
    state = fold([ev(400, "purchase", amount=5), ev(10, "purchase", amount=7)])
    assert state.purchase_count == 2 and len(state.buckets) == 1
    assert feature_row(state)["monetary_365d"] == 5.0


def test_silence_is_evaluated_as_of_any_later_time() -> None:
    state = fold([ev(0, "purchase", amount=10), ev(0.5, "login")])
    row = feature_row(state, at(45))
    assert (row["recency_days"], row["frequency_30d"], row["frequency_90d"]) == (45.0, 0, 1)
    assert (row["engagement_30d"], row["days_since_engagement"]) == (0, 44.5)


def test_lateness_is_measured_from_the_customers_newest_event() -> None:
    state = fold([ev(10, "login")])
    week = 7 * 86400
    assert not is_too_late(state.last_event_s, at(3), week)  # exactly the allowed lateness
    assert is_too_late(state.last_event_s, at(2.99), week)
    assert not is_too_late(None, at(-1000), week)  # a new customer has no clock yet


def test_the_stored_cells_are_sparse_and_by_day() -> None:
    state = fold([ev(0.5, "purchase", amount=12.5), ev(0.75, "login"), ev(2.5, "refund", amount=2)])
    day = int(at(0) // 86400)
    assert state.to_dict()["cells"] == {
        str(day): [0, 1, 1, 12500, 20, 1, 21, 1],
        str(day + 2): [2, 1, 3, 2000],
    }


def test_a_state_stored_in_the_older_dense_form_still_loads() -> None:
    state = fold(COMPLAINT_HISTORY + RFM_HISTORY)
    old = {k: v for k, v in state.to_dict().items() if k != "cells"}
    # the older form: every bucket a list of counters, empty maps, records as lists
    old["buckets"] = {str(day): slots for day, slots in state.buckets.items()}
    for name in ("last_complaint", "last_satisfaction", "last_nps", "profile"):
        old[name] = None if old[name] is None else list(old[name])
    old["open_complaints"] = {c: list(o) for c, o in (old["open_complaints"] or {}).items()}
    old["early_resolutions"] = old["early_resolutions"] or {}
    # a login 60 days before the newest event: the older form kept it, a 30-day slot does not
    newest = int(state.last_event_s // 86400)
    old["buckets"].setdefault(str(newest - 60), [0] * 22)[21] = 1
    loaded = CustomerState.from_dict(old)
    assert loaded == state
    assert feature_row(loaded, T) == feature_row(state, T)


def test_counts_too_large_for_32_bits_widen_the_cells() -> None:
    state = fold([ev(1, "purchase", amount=1000), ev(1.5, "purchase", amount=3_000_000)])
    assert state.cell_counts.typecode == "q"
    assert feature_row(state)["monetary_30d"] == 3_001_000.0
    stored = CustomerState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
    assert stored == state and stored.cell_counts.typecode == "q"


def test_trends_wait_for_a_baseline_and_scale_it_to_the_days_seen() -> None:
    # a purchase every 10 days from day 0: a steady customer, whatever their age
    steady = [ev(day, "purchase", amount=10) for day in range(0, 101, 10)]
    young = feature_row(fold(steady[-6:]), T)  # seen from day 50: 50 days
    assert young["frequency_trend"] is None and young["frequency_trend_365d"] is None
    grown = feature_row(fold(steady), T)  # seen for 100 days: 70 of the baseline's 90
    # 3 purchases in the last 30 d (days 80, 90, 100) against 8 in days 0 to 70
    assert grown["frequency_trend"] == pytest.approx(3 / (8 * 30 / 70))
    assert grown["frequency_trend_365d"] is None  # no 30 days beyond the last 90
