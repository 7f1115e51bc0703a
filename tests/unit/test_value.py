"""Worth and value at risk: from the CLV model when there is one, else the run rate."""

from __future__ import annotations

import numpy as np

from churnwatch.alerts.config import load_policy
from churnwatch.models.clv import BGNBD, CLVModel, GammaGamma
from churnwatch.models.rule import RuleScorer
from churnwatch.models.value import VALUE_FIELDS, customer_values
from churnwatch.offline.replay import COLUMNS, rows_as_of
from tests.builders import at, ev

CLV = CLVModel(BGNBD(0.243, 4.414, 0.793, 2.426), GammaGamma(6.25, 3.74, 15.44), 90.0)
HISTORY = [
    ev(0, "purchase", cid="a", amount=30),
    ev(20, "purchase", cid="a", amount=50),
    ev(60, "purchase", cid="a", amount=40),
    ev(5, "login", cid="b"),  # never bought
]
T = at(100)


class ValuedRule(RuleScorer):
    """The rule's scores with a store's CLV model beside them, as a trained scorer has."""

    clv = CLV


def test_values_from_the_clv_model() -> None:
    row = {
        "purchases_lifetime": 3,
        "days_since_first_purchase": 100.0,
        "recency_days": 40.0,
        "avg_order_value_365d": 40.0,
        "monetary_365d": 120.0,
    }
    (got,) = customer_values([row], [0.5], CLV)
    x, t_x, T_ = (np.array([v]) for v in (2.0, 60.0, 100.0))
    expected = float(CLV.purchases.expected_purchases(90.0, x, t_x, T_)[0])
    spend = float(CLV.spend.expected_spend(x, np.array([40.0]))[0])
    assert got["p_alive"] == round(float(CLV.purchases.p_alive(x, t_x, T_)[0]), 4)
    assert got["expected_purchases"] == round(expected, 4)
    assert got["clv"] == round(expected * spend, 2)
    assert got["value_at_risk"] == round(0.5 * got["clv"], 2)
    assert got["clv_horizon_days"] == 90.0 and list(got) == list(VALUE_FIELDS)


def test_values_by_run_rate_without_a_clv_model() -> None:
    (got,) = customer_values([{"monetary_365d": 365.0}], [0.4], None)
    assert got == {
        "p_alive": None,
        "expected_purchases": None,
        "clv": 90.0,
        "clv_horizon_days": 90.0,
        "value_at_risk": 36.0,
    }
    # net refunds cannot make a customer worth less than nothing
    assert customer_values([{"monetary_365d": -50.0}], [0.9], None)[0]["clv"] == 0.0


def test_replay_as_of_has_the_value_columns() -> None:
    rows = {
        r["customer_id"]: r
        for r in rows_as_of(HISTORY, T, ValuedRule(), load_policy(), partitions=1)
    }
    assert set(VALUE_FIELDS) <= set(COLUMNS)
    a, b = rows["a"], rows["b"]
    assert a["clv"] > 0 and 0 < a["p_alive"] < 1
    assert a["value_at_risk"] == round(a["score"] * a["clv"], 2)
    assert (b["p_alive"], b["clv"], b["value_at_risk"]) == (None, None, None)
