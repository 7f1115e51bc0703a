"""The threshold recommendation: expected net value, within capacity, above a precision floor."""

from __future__ import annotations

import pytest

from churnwatch.alerts.economics import SettingError, check, economics, plan
from churnwatch.offline.backtest import Metrics

TIERS = ("high", "potential", "general")


def m(per_day: float, precision: float | None, value: float, days: float = 100) -> Metrics:
    """A candidate's metrics: every alert judged, ``precision`` of them followed by churn."""
    alerts = round(per_day * days)
    return Metrics(
        alerts=alerts,
        alerts_per_day=per_day,
        judged=alerts if precision is not None else 0,
        confirmed=round((precision or 0) * alerts),
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


def test_a_tier_with_its_own_capacity_keeps_within_it() -> None:
    econ = economics(TIERS, prior=0.2, precision_floor=0.25)
    # with room for everything, high takes 0.30 (8 a day); its own capacity of 3 a day
    # leaves it only 0.50 (2 a day)
    assert plan(SWEEP, CURRENT, 100, econ).watch["high"] == 0.30
    capped = plan(SWEEP, CURRENT, 100, econ, tier_capacity={"high": 3})
    assert capped.watch["high"] == 0.50 and capped.fits
    # below every candidate: the quietest, and the plan does not fit
    tight = plan(SWEEP, CURRENT, 100, econ, tier_capacity={"high": 1})
    assert tight.watch["high"] == 0.50 and not tight.fits


def test_measured_win_back_rates_replace_the_prior() -> None:
    measured = {"high": (0.05, "measured uplift +4.0% (…), shrunk toward the prior 20%")}
    econ = economics(TIERS, measured, prior=0.2)
    assert econ.winback_rate == {"high": 0.05, "potential": 0.2, "general": 0.2}
    assert econ.rate_source["high"].startswith("measured uplift +4.0%")
    assert econ.rate_source["potential"] == "prior"
    assert econ.net_value("high", m(1, 0.5, 1000)) == pytest.approx(1000 * 0.05)


def test_a_tier_judged_on_too_few_alerts_keeps_its_thresholds() -> None:
    few = {
        # 25 judged alerts at most: 100 % precision on them could be luck
        "high": [(0.30, m(0.25, 1.0, 5000)), (0.35, m(0.1, 1.0, 2000))],
        "potential": SWEEP["potential"],
        # 40 judged alerts below the floor; the 10 above it are too few to count
        "general": [(0.30, m(0.4, 0.20, 900)), (0.50, m(0.1, 0.60, 400))],
    }
    current = {"high": 0.35, "potential": 0.40, "general": 0.50}
    chosen = plan(few, current, capacity_per_day=50, econ=economics(TIERS, prior=0.2))
    assert chosen.held == {
        "high": "not enough evidence (25 alerts): a threshold needs 30 judged alerts",
        "general": "no threshold reaches the 25% precision floor (best 20.0% at watch 0.30); "
        "thresholds judged on fewer than 30 alerts do not count",
    }
    assert chosen.watch == {"high": 0.35, "potential": 0.40, "general": 0.50}
    # with the rule at 10 alerts, both tiers are judged on enough
    lenient = plan(few, current, 50, economics(TIERS, prior=0.2, min_evidence=10))
    assert lenient.watch == {"high": 0.30, "potential": 0.40, "general": 0.50}
    assert not lenient.held


# general keeps its thresholds (below the floor at every candidate) and pulls the
# alerts of all tiers together down: 50 of its 1,000 judged alerts are right
POOLED = {
    "high": [(0.10, m(30, 0.30, 9000)), (0.30, m(8, 0.60, 6000)), (0.50, m(2, 0.90, 2500))],
    "potential": [(0.40, m(5, 0.30, 4000))],
    "general": [(0.30, m(40, 0.05, 900)), (0.50, m(10, 0.05, 400))],
}


def test_the_floor_holds_for_all_tiers_together() -> None:
    chosen = plan(POOLED, CURRENT, capacity_per_day=100, econ=economics(TIERS, prior=0.2))
    # high at 0.10 reaches the floor alone (30 %) but all together would be
    # (900 + 150 + 50) / (3000 + 500 + 1000) = 24.4 %: tightened to 0.30
    assert chosen.watch == {"high": 0.30, "potential": 0.40, "general": 0.50}
    assert chosen.overall_precision == pytest.approx((480 + 150 + 50) / (800 + 500 + 1000))
    assert chosen.overall_short is None
    # passed over (it fell below the floor when replayed), nothing else reaches it: high at
    # 0.50 alone is the strictest, but general's alerts then weigh more (22.4 %)
    again = plan(POOLED, CURRENT, 100, economics(TIERS, prior=0.2), rejected=[chosen.watch])
    assert again.watch == {"high": 0.10, "potential": 0.40, "general": 0.50}
    assert again.overall_short == (
        "no combination of thresholds keeps all tiers' alerts together at the 25% floor: "
        "those whose per-tier figures reach it fall below it when replayed together"
    )


def test_a_floor_that_cannot_hold_for_all_tiers_together_is_said_plainly() -> None:
    econ = economics(TIERS, prior=0.2, precision_floor=0.5)
    chosen = plan(POOLED, CURRENT, capacity_per_day=100, econ=econ)
    # high at 0.30 gives the most: (480 + 150 + 50) / (800 + 500 + 1000)
    assert chosen.overall_short == (
        "no combination of thresholds keeps all tiers' alerts together at the 50% floor "
        "(best 29.6%)"
    )
    # per tier the floor still holds: high takes its best-paying threshold above 50 %
    assert chosen.watch["high"] == 0.30
    assert set(chosen.held) == {"potential", "general"}


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("precision_floor", 1.5, "the precision floor is a share from 0 to 1 (got 1.5)"),
        ("precision_floor", float("nan"), "the precision floor is a share from 0 to 1 (got nan)"),
        ("winback_rate", -0.1, "the win-back rate is a share from 0 to 1 (got -0.1)"),
        ("contact_cost", -2.0, "the contact cost is an amount of 0 or more (got -2)"),
        ("contact_cost", float("inf"), "the contact cost is an amount of 0 or more (got inf)"),
        ("min_evidence", 0, "the evidence needed is at least 1 judged alert (got 0)"),
    ],
)
def test_settings_out_of_range_are_refused_in_one_line(
    setting: str, value: float, message: str
) -> None:
    with pytest.raises(SettingError) as refused:
        check(**{setting: value})
    assert (refused.value.setting, str(refused.value)) == (setting, message)
    # the edges of each range are allowed
    check(precision_floor=0.0, winback_rate=1.0, contact_cost=0.0, min_evidence=1)
