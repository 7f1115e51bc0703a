"""The threshold recommendation: expected net value, within capacity, above a precision floor."""

from __future__ import annotations

import pytest

from churnwatch.alerts.economics import MIN_MEASURED_TASKS, economics, plan
from churnwatch.offline.backtest import Metrics

TIERS = ("high", "potential", "general")


def m(per_day: float, precision: float | None, value: float, days: float = 100) -> Metrics:
    return Metrics(
        alerts=round(per_day * days),
        alerts_per_day=per_day,
        precision=precision,
        value_caught=value,
    )


# per tier, candidate watch thresholds from loose (many alerts, low precision) to strict
SWEEP = {
    "high": [(0.10, m(30, 0.05, 9000)), (0.30, m(8, 0.30, 6000)), (0.50, m(2, 0.60, 2500))],
    "potential": [(0.20, m(20, 0.20, 3000)), (0.40, m(5, 0.35, 4000)), (0.60, m(1, 0.50, 500))],
    "general": [(0.30, m(40, 0.10, 900)), (0.50, m(10, 0.20, 400)), (0.70, m(3, 0.24, 100))],
}
CURRENT = {"high": 0.10, "potential": 0.40, "general": 0.50}


def test_the_precision_floor_holds_and_a_tier_below_it_keeps_its_thresholds() -> None:
    econ = economics(TIERS, prior=0.2, contact_cost=1.0)
    chosen = plan(SWEEP, CURRENT, capacity_per_day=50, econ=econ)
    # high's loosest threshold catches the most value but at 5 % precision: not allowed
    assert chosen.watch == {"high": 0.30, "potential": 0.40, "general": 0.50}
    picked = {t: dict(SWEEP[t])[w] for t, w in chosen.watch.items() if t not in chosen.held}
    assert all(p.precision >= 0.25 for p in picked.values())
    # no general threshold reaches 25 %: it keeps the current one, and the plan says why
    assert chosen.held == {
        "general": "no threshold reaches the 25% precision floor (best 24.0% at watch 0.70)"
    }
    # net value = 20 % of the value caught - 1 per alert (100 days)
    assert chosen.net_value == pytest.approx(
        (0.2 * 6000 - 800) + (0.2 * 4000 - 500) + (0.2 * 400 - 1000)
    )
    assert chosen.current_net_value == pytest.approx(
        (0.2 * 9000 - 3000) + (0.2 * 4000 - 500) + (0.2 * 400 - 1000)
    )
    assert chosen.alerts_per_day == 8 + 5 + 10 and chosen.fits


def test_capacity_binds_before_value() -> None:
    econ = economics(TIERS, prior=0.2, precision_floor=0.25)
    # general holds 10 a day: 15 leave room for high's and potential's strictest alone
    chosen = plan(SWEEP, CURRENT, capacity_per_day=15, econ=econ)
    assert chosen.alerts_per_day == 2 + 1 + 10 and chosen.fits
    assert chosen.watch == {"high": 0.50, "potential": 0.60, "general": 0.50}
    # a floor of 0 lets the loosest high threshold win when there is room for it
    loose = plan(SWEEP, CURRENT, 100, economics(TIERS, prior=0.2, precision_floor=0.0))
    assert loose.watch["high"] == 0.10 and not loose.held
    # nothing fits: the fewest alerts, flagged
    none = plan(SWEEP, CURRENT, capacity_per_day=1, econ=econ)
    assert not none.fits and none.alerts_per_day == 2 + 1 + 10


def test_measured_win_back_rates_replace_the_prior() -> None:
    rows = [
        {"value_tier": "high", "tasks": MIN_MEASURED_TASKS - 5, "won_back": 10},
        {"value_tier": "high", "tasks": 5, "won_back": 0},
        {"value_tier": "potential", "tasks": MIN_MEASURED_TASKS - 1, "won_back": 19},
    ]
    econ = economics(TIERS, rows, prior=0.2)
    assert econ.winback_rate == {"high": 10 / MIN_MEASURED_TASKS, "potential": 0.2, "general": 0.2}
    assert econ.rate_source["high"] == f"measured ({MIN_MEASURED_TASKS} tasks)"
    assert econ.rate_source["potential"] == "prior"
    assert econ.net_value("high", m(1, 0.5, 1000)) == pytest.approx(1000 * 10 / 20)
