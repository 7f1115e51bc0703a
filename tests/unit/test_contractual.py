"""Subscription histories: recognised, who is active, and retention by tenure."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from churnwatch.events import from_payload
from churnwatch.models.clv import CLVModel
from churnwatch.models.contractual import (
    CONTRACTUAL,
    NON_CONTRACTUAL,
    HistoryKind,
    RetentionModel,
    ShiftedBetaGeometric,
    recognise,
    value_model_from_dict,
)
from churnwatch.models.dataset import population_rows, snapshots
from churnwatch.models.training import raw_frame
from churnwatch.sim.simulator import Simulation
from churnwatch.sim.subscriptions import PERIOD_DAYS, SubscriptionSimulation
from tests.builders import at, ev
from tests.reference import REFERENCE

#: Fader & Hardie (2007), table 1: of 1,000 customers, those still subscribed after each year
HIGH_END = (1000, 869, 743, 653, 593, 551, 517, 491)
REGULAR = (1000, 631, 468, 382, 326, 289, 262, 241)


def _cohort(alive: tuple[int, ...]) -> tuple[list[int], list[bool]]:
    """Periods paid and whether cancelled, per customer, of a cohort's survivor counts."""
    periods, cancelled = [], []
    for year in range(1, len(alive)):
        lost = alive[year - 1] - alive[year]
        periods += [year] * lost
        cancelled += [True] * lost
    # still there after the last year: paid for the next one, censored
    periods += [len(alive)] * alive[-1]
    cancelled += [False] * alive[-1]
    return periods, cancelled


def test_shifted_beta_geometric_matches_the_published_fits() -> None:
    high, regular = (ShiftedBetaGeometric.fit(*_cohort(c)) for c in (HIGH_END, REGULAR))
    assert (round(high.alpha, 3), round(high.beta, 3)) == (0.668, 3.806)
    assert (round(regular.alpha, 3), round(regular.beta, 3)) == (0.704, 1.182)


def _population(events: list[dict]) -> pd.DataFrame:
    parsed = [from_payload(e) for e in events]
    return raw_frame(population_rows(parsed, parsed[-1].epoch_s))


def test_a_subscription_history_is_contractual_and_a_shop_is_not() -> None:
    start = REFERENCE - timedelta(days=365)
    shop = recognise(_population(list(Simulation(400, start, REFERENCE, seed=5).events())))
    subs = recognise(_population(list(SubscriptionSimulation(400, start, REFERENCE).events())))
    assert shop.kind == NON_CONTRACTUAL and shop.period_days is None
    assert shop.why.endswith(": purchases, not subscriptions")
    assert subs.kind == CONTRACTUAL and subs.contractual
    assert subs.period_days == pytest.approx(PERIOD_DAYS, abs=0.5)
    assert subs.why.startswith("100% of the ") and subs.why.endswith("typically every 30 days")


def _row(payments: float, recency: float, interval: float, amount: float) -> dict[str, float]:
    return {
        "purchases_lifetime": payments,
        "recency_days": recency,
        "purchase_interval_days": interval,
        "avg_order_value_365d": amount,
        "days_since_signup": np.nan,
    }


def test_retention_columns_by_hand() -> None:
    sbg = ShiftedBetaGeometric(alpha=0.7, beta=1.2)
    model = RetentionModel(sbg, period_days=30.0, mean_amount=15.0, horizon_days=90.0)
    rows = pd.DataFrame(
        [
            _row(4, 10.0, 30.0, 20.0),  # paid 4, next due in 20 days: renewals at 20, 50, 80
            _row(
                4, 33.0, 30.0, 20.0
            ),  # 3 days overdue, within the grace: renewals at 0, 30, 60, 90
            _row(4, 40.0, 30.0, 20.0),  # 10 days overdue: lapsed
            _row(1, 5.0, np.nan, np.nan),  # paid once: the history's period and mean amount
        ]
    )
    out = model.columns(rows)

    def s(t: int) -> float:
        return float(np.exp(sbg.log_survival(np.array([float(t)]))[0]))

    expected = [
        sum(s(4 + j) / s(3) for j in range(3)),
        sum(s(4 + j) / s(3) for j in range(4)),
        0.0,
        sum(s(1 + j) / s(0) for j in range(3)),
    ]
    assert out["expected_purchases_90d"].tolist() == pytest.approx(expected)
    assert out["clv_90d"].tolist() == pytest.approx(
        [expected[0] * 20, expected[1] * 20, 0.0, expected[3] * 15]
    )
    assert out["p_alive"].tolist() == pytest.approx([1.0, s(4) / s(3), 0.0, 1.0])
    assert out["p_no_purchase_90d"].tolist() == pytest.approx(
        [1 - s(4) / s(3), 1 - s(4) / s(3), 1.0, 1 - s(1)]
    )
    # the longer a subscriber has stayed, the likelier they renew
    assert s(10) / s(9) > s(4) / s(3) > s(1)


def test_the_card_tells_the_value_models_apart() -> None:
    model = RetentionModel(ShiftedBetaGeometric(0.7, 1.2), 30.0, 15.0, 90.0)
    assert value_model_from_dict(model.to_dict()) == model
    purchase = {
        "bg_nbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
        "gamma_gamma": {"p": 6.25, "q": 3.74, "v": 15.44},
        "horizon_days": 90.0,
    }
    assert isinstance(value_model_from_dict(purchase), CLVModel)


def test_a_lapsed_subscriber_is_no_snapshot_of_a_contractual_history() -> None:
    events = sorted(
        [ev(day, "purchase", "a", amount=10.0) for day in (0, 30, 60, 90, 120)]
        + [ev(day, "purchase", "b", amount=10.0) for day in (0, 30)]
        + [ev(day, "purchase", "c", amount=10.0) for day in (0, 30, 60)]
        + [ev(day, "purchase", "d", amount=10.0) for day in range(0, 181, 30)],
        key=lambda e: e.epoch_s,
    )
    cut = [at(100)]
    retail = {s.customer_id: s.churned for s in snapshots(events, cut, horizon_days=90.0)}
    monthly = HistoryKind(CONTRACTUAL, "monthly", 30.0)
    subs = {
        s.customer_id: s.churned for s in snapshots(events, cut, horizon_days=90.0, history=monthly)
    }
    # retail: a purchase in the 90 days before; b (70 days ago) is still "active"
    assert retail == {"a": False, "b": True, "c": True, "d": False}
    # contractual: b lapsed 70 days ago, c is 10 days overdue (grace 7.5): neither is a
    # question; a paid once more (day 120) and had lapsed by the horizon's end (day 190),
    # d still paid on day 180
    assert subs == {"a": True, "d": False}


def test_the_subscription_simulation_is_seeded_and_keeps_its_truth() -> None:
    start, end = REFERENCE - timedelta(days=300), REFERENCE
    first = list(SubscriptionSimulation(60, start, end, seed=3).events())
    sim = SubscriptionSimulation(60, start, end, seed=3)
    assert list(sim.events()) == first
    parsed = [from_payload(e) for e in first]
    assert [e.epoch_s for e in parsed] == sorted(e.epoch_s for e in parsed)
    prices = {t.customer_id: t.price for t in sim.truth()}
    ends = {t.customer_id: t.end for t in sim.truth() if t.end is not None}
    assert ends, "some subscriptions end within the history"
    for e in parsed:
        if e.type == "purchase":
            assert e.amount == prices[e.customer_id]
            end = ends.get(e.customer_id)
            assert end is None or e.ts < datetime.fromisoformat(end)
    assert {"login", "support_contact", "profile", "purchase"} <= {e.type for e in parsed}
