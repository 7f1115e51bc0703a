"""Lifecycle stages as time passes, their recorded changes, and population-relative tiers."""

from __future__ import annotations

import pytest

from churnwatch.engine.customer import CustomerRecord
from churnwatch.features.lifecycle import changes_between, next_change, stage_at
from churnwatch.features.state import CustomerState, apply
from churnwatch.features.tier import RFM, Population
from tests.builders import at, ev


def state_of(*events) -> CustomerState:
    state = None
    for event in events:
        state = apply(state, event)
    return state


def test_stages_of_a_monthly_buyer_going_silent() -> None:
    # purchases every 10 days: cooling after 20 d, at risk after 30 d, lapsed after 90 d
    state = state_of(*(ev(d, "purchase", amount=5) for d in (0, 10, 20, 30, 40)))
    assert [stage_at(state, at(d)) for d in (40, 59.9, 60, 69.9, 70, 129.9, 130)] == [
        "active",
        "active",
        "cooling",
        "cooling",
        "at_risk",
        "at_risk",
        "lapsed",
    ]
    assert next_change(state, at(40)) == at(60)
    assert changes_between(state, "active", at(40), at(200)) == [
        (at(60), "active", "cooling"),
        (at(70), "cooling", "at_risk"),
        (at(130), "at_risk", "lapsed"),
    ]


def test_prospect_new_and_won_back() -> None:
    assert stage_at(state_of(ev(0, "login")), at(5)) == "prospect"
    first = state_of(ev(0, "purchase", amount=5))
    assert stage_at(first, at(0)) == "new"
    # one purchase: a 30 d typical gap is assumed, so cooling after 60 d (the cap)
    assert [stage_at(first, at(d)) for d in (29, 30, 60, 75, 90)] == [
        "new",
        "active",
        "cooling",
        "at_risk",
        "lapsed",
    ]
    back = state_of(ev(0, "purchase", amount=5), ev(120, "purchase", amount=5))
    assert stage_at(back, at(120)) == "won_back"
    # typical gap 120 d: cooling would need 60 d (the cap), so won-back ends at 30 d
    assert stage_at(back, at(150)) == "active"


def test_a_silent_customer_becomes_at_risk_with_no_event_of_their_own() -> None:
    record = CustomerRecord(CustomerState("c1"))
    changes: list[dict] = []
    for day in (0, 10, 20):
        record.fold(ev(day, "purchase", amount=5), changes)
    assert [c["to_value"] for c in changes] == ["new"]
    changes.clear()
    assert record.advance_to(at(55), "silence", changes) == at(50)
    # new ends on day 30; a 10 d typical gap: cooling after 20 d, at risk after 30 d
    assert [(c["ts"], c["from_value"], c["to_value"], c["cause"]) for c in changes] == [
        ("2026-01-31T00:00:00+00:00", "new", "active", "silence"),
        ("2026-02-10T00:00:00+00:00", "active", "cooling", "silence"),
        ("2026-02-20T00:00:00+00:00", "cooling", "at_risk", "silence"),
    ]
    assert record.stage == "at_risk" and record.stage_as_of == at(55)


def test_events_after_a_silence_record_every_change_on_the_way() -> None:
    record = CustomerRecord(CustomerState("c1"))
    changes: list[dict] = []
    record.fold(ev(0, "purchase", amount=5), changes)
    record.fold(ev(200, "purchase", amount=5), changes)  # no timer ran in between
    moves = [(c["from_value"], c["to_value"], c["cause"]) for c in changes]
    assert moves[0][1] == "new"
    assert moves[1:] == [
        ("new", "active", "silence"),
        ("active", "cooling", "silence"),
        ("cooling", "at_risk", "silence"),
        ("at_risk", "lapsed", "silence"),
        ("lapsed", "won_back", changes[-1]["cause"]),
    ]
    assert changes[-1]["cause"].startswith("c1-purchase-200")
    assert len({c["change_id"] for c in changes}) == len(changes)


def test_tiers_are_relative_to_the_population() -> None:
    population = Population()
    # ten customers, customer i bought i times for 100 each, the last one on day i
    for i in range(1, 11):
        population.update(f"c{i}", RFM(at(i), i, 100.0 * i))
    population.rerank()
    tiers = [population.tier(f"c{i}") for i in range(1, 11)]
    assert tiers == ["general"] * 5 + ["potential"] * 3 + ["high"] * 2
    assert population.value_score("c10") == pytest.approx(0.95)
    # the population moves: ten bigger customers arrive and c10 is no longer on top
    for i in range(11, 21):
        population.update(f"c{i}", RFM(at(i), i, 100.0 * i))
    # ranks are read from the last snapshot until the next one
    assert population.tier("c10") == "high"
    population.rerank()
    assert population.tier("c10") == "general"
    assert population.tier("c20") == "high"
    # a customer with no purchase in a year leaves the ranking
    population.update("c20", RFM(at(20), 0, 0.0))
    population.rerank()
    assert population.tier("c20") == "general" and len(population) == 19
