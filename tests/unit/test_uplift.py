"""Uplift against holdouts: Newcombe's interval, control matching, shrinkage, recommendation."""

from __future__ import annotations

import dataclasses

import pytest

from churnwatch.winback.holdout import HOLDOUT
from churnwatch.winback.uplift import (
    Case,
    Cell,
    Group,
    difference_interval,
    estimate,
    recommend,
    shrunk,
)


def _round(figures: tuple[float, ...] | None, places: int = 6) -> tuple[float, ...] | None:
    return None if figures is None else tuple(round(x, places) for x in figures)


def test_newcombe_hybrid_score_interval_by_hand() -> None:
    # 56 of 70 treated came back, 48 of 80 held out: d = 0.8 - 0.6 = 0.2.
    # Wilson, z = 1.96, z² = 3.8416:
    #   56/70: 1 + z²/n = 1.054880; centre (0.8 + 0.027440) / 1.054880 = 0.784393;
    #          half 1.96 / 1.054880 · √(0.16/70 + z²/(4·70²))
    #             = 1.858031 · √(0.00228571 + 0.00019600) = 1.858031 · 0.049817 = 0.092561
    #          → (0.691831, 0.876954)
    #   48/80: 1 + z²/n = 1.048020; centre (0.6 + 0.024010) / 1.048020 = 0.595418;
    #          half 1.870193 · √(0.24/80 + z²/(4·80²)) = 1.870193 · 0.056125 = 0.104965
    #          → (0.490453, 0.700383)
    # low  = 0.2 - √((0.8 - 0.691831)² + (0.700383 - 0.6)²) = 0.2 - √(0.011701 + 0.010077)
    #      = 0.2 - 0.147571 = 0.052429
    # high = 0.2 + √((0.876954 - 0.8)² + (0.6 - 0.490453)²) = 0.2 + √(0.005922 + 0.012001)
    #      = 0.2 + 0.133875 = 0.333875
    # (Newcombe 1998, table II, example (a), method 10: 0.0524 to 0.3339)
    got = difference_interval(Group(70, 56), Group(80, 48))
    assert _round(got) == (0.2, 0.052429, 0.333875)


def test_newcombe_with_no_returns_in_either_group() -> None:
    # Wilson 0/n = (0, z²/(n + z²)): 0/10 = (0, 3.8416/13.8416) = (0, 0.277540),
    # 0/20 = (0, 3.8416/23.8416) = (0, 0.161130);
    # low = 0 - √(0² + 0.161130²), high = 0 + √(0.277540² + 0²)
    # (Newcombe 1998, example (e), method 10: -0.1611 to 0.2775)
    assert _round(difference_interval(Group(10, 0), Group(20, 0))) == (0.0, -0.16113, 0.27754)


def test_a_wider_z_widens_the_interval() -> None:
    narrow = difference_interval(Group(70, 56), Group(80, 48))
    wide = difference_interval(Group(70, 56), Group(80, 48), z=2.576)
    assert narrow is not None and wide is not None
    assert wide[1] < narrow[1] and wide[2] > narrow[2]


def test_no_rate_over_zero_cases() -> None:
    assert Group(0, 0).rate is None
    assert Group(4, 1).rate == 0.25
    assert difference_interval(Group(0, 0), Group(10, 2)) is None
    assert difference_interval(Group(10, 2), Group(0, 0)) is None
    with pytest.raises(ValueError, match="from 0 to n"):
        Group(3, 4)


def _cases(reason: str, tier: str, action: str, n: int, returned: int, **kw: object) -> list[Case]:
    fields: dict[str, object] = {"contacted": action != HOLDOUT, "delay": None, **kw}
    return [
        Case(reason, tier, action, i < returned, **fields)  # type: ignore[arg-type]
        for i in range(n)
    ]


#: treated: a call given in the high tier only, an email in two tiers, a small competitor cell
CASES = [
    *_cases("service_quality", "high", "call", 40, 20, delay="<24h"),
    *_cases("service_quality", "general", "email", 40, 10, delay="1-3d"),
    *_cases("service_quality", "high", "email", 10, 5),
    *_cases("competitor", "high", "call", 5, 1, delay="<24h"),
    *_cases("service_quality", "high", HOLDOUT, 30, 6),
    *_cases("service_quality", "general", HOLDOUT, 50, 5),
    *_cases("service_quality", "potential", HOLDOUT, 20, 19),
    *_cases("competitor", "high", HOLDOUT, 10, 1),
]


def _summary(cells: list[Cell]) -> list[tuple[object, ...]]:
    return [
        (c.key, (c.treated.n, c.treated.returned), (c.control.n, c.control.returned), c.enough)
        for c in cells
    ]


def test_by_reason_and_action_the_control_is_the_reasons_holdouts_in_the_same_tiers() -> None:
    cells = estimate(CASES)
    assert _summary(cells) == [
        (("competitor", "call"), (5, 1), (10, 1), False),
        # the call went to high-value customers only: their holdouts, 6 of 30
        (("service_quality", "call"), (40, 20), (30, 6), True),
        # the email went to general and high: those tiers' holdouts, 5 + 6 of 50 + 30;
        # never the potential tier's 19 of 20, who got no email
        (("service_quality", "email"), (50, 15), (80, 11), True),
    ]
    assert round(cells[1].uplift or 0, 6) == 0.3  # 20/40 - 6/30
    assert round(cells[2].uplift or 0, 6) == 0.1625  # 15/50 - 11/80
    assert cells[0].note == "not enough evidence (5 treated, 10 control; needs 30 each)"
    assert cells[1].note == ""


def test_by_tier_the_control_is_the_holdouts_of_that_reason_and_tier() -> None:
    assert _summary(estimate(CASES, by=("reason", "action", "tier"))) == [
        (("competitor", "call", "high"), (5, 1), (10, 1), False),
        (("service_quality", "call", "high"), (40, 20), (30, 6), True),
        (("service_quality", "email", "general"), (40, 10), (50, 5), True),
        (("service_quality", "email", "high"), (10, 5), (30, 6), False),
    ]


def test_by_delay_the_control_is_the_reasons_holdouts_whatever_the_delay() -> None:
    assert _summary(estimate(CASES, by=("reason", "action", "delay"), min_customers=10)) == [
        (("competitor", "call", "<24h"), (5, 1), (10, 1), False),
        (("service_quality", "call", "<24h"), (40, 20), (30, 6), True),
        (("service_quality", "email", "1-3d"), (40, 10), (50, 5), True),
        # a treated case without a known delay is keyed "unknown"
        (("service_quality", "email", "unknown"), (10, 5), (30, 6), True),
    ]


def test_not_enough_evidence_below_the_minimum_in_either_group() -> None:
    cells = estimate(CASES, min_customers=41)
    # 40 treated are too few; the email's 50 and 80 are enough
    assert [c.enough for c in cells] == [False, False, True]
    assert cells[1].note == "not enough evidence (40 treated, 30 control; needs 41 each)"
    # the figures are still there, flagged
    assert round(cells[1].uplift or 0, 6) == 0.3


def test_no_control_gives_no_uplift() -> None:
    cells = estimate(_cases("needs_changed", "general", "email", 40, 8))
    assert len(cells) == 1
    assert cells[0].control == Group(0, 0)
    assert (cells[0].uplift, cells[0].low, cells[0].high) == (None, None, None)
    assert cells[0].note == "not enough evidence (40 treated, 0 control; needs 30 each)"


def test_intention_to_treat_counts_the_cases_nobody_reached() -> None:
    unreached = [
        dataclasses.replace(c, contacted=False) if i % 2 else c for i, c in enumerate(CASES)
    ]
    assert estimate(unreached) == estimate(CASES)


def test_a_key_without_the_action_or_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match="must include 'action'"):
        estimate(CASES, by=("reason", "tier"))
    with pytest.raises(ValueError, match="unknown field"):
        estimate(CASES, by=("reason", "action", "channel"))


def test_shrinkage_weighs_the_uplift_by_its_effective_size() -> None:
    cell = estimate(CASES)[1]  # 40 treated, 30 control, uplift 0.3
    # n_eff = 40 · 30 / (40 + 30) = 17.142857
    # (17.142857 · 0.3 + 50 · 0.05) / (17.142857 + 50) = 7.642857 / 67.142857 = 0.113830
    assert round(shrunk(cell, prior=0.05), 6) == 0.11383
    # strength 0: the cell's own uplift; a huge strength: the prior
    assert round(shrunk(cell, prior=0.05, strength=0.0), 6) == 0.3
    assert round(shrunk(cell, prior=0.05, strength=1e9), 6) == 0.05
    empty = estimate(_cases("needs_changed", "general", "email", 40, 8))[0]
    assert shrunk(empty, prior=0.07) == 0.07


def _cell(
    key: tuple[str, ...], uplift: float, low: float, high: float, enough: bool = True
) -> Cell:
    return Cell(key, Group(100, 30), Group(100, 20), uplift, low, high, enough, "")


CELLS = [
    # a big uplift, poorly measured; a smaller one, well measured; one too small to count
    _cell(("service_quality", "call"), 0.20, 0.02, 0.38),
    _cell(("service_quality", "email"), 0.12, 0.08, 0.16),
    _cell(("service_quality", "visit"), 0.50, 0.30, 0.70, enough=False),
    _cell(("competitor", "call"), 0.30, 0.10, 0.50, enough=False),
]


def test_recommend_picks_the_best_lower_bound_among_cells_with_enough_evidence() -> None:
    got = recommend(CELLS)
    # competitor has no cell with enough evidence: left out
    assert list(got) == [("service_quality",)]
    action, why = got["service_quality",]
    assert action == "email"
    assert why == (
        "uplift +12.0% (95 % CI +8.0% to +16.0%; 100 treated, 100 control): "
        "+0.080 per contact at its lower bound (1 x +0.080 - cost 0.000); "
        "next best 'call' at +0.020"
    )


def test_recommend_takes_the_cost_per_contact_off() -> None:
    # call: 0.02 - 0; email: 0.08 - 0.07 = 0.01
    got = recommend(CELLS, cost={"call": 0.0, "email": 0.07, "visit": 0.0})
    assert got["service_quality",][0] == "call"
    # at twice the value the email pays again: 0.16 - 0.07 = 0.09 against 0.04
    got = recommend(CELLS, cost={"call": 0.0, "email": 0.07, "visit": 0.0}, value=2.0)
    assert got["service_quality",][0] == "email"
    # one cost for all changes nothing between them, but says nothing pays
    action, why = recommend(CELLS, cost=0.1)["service_quality",]
    assert action == "email"
    assert why.endswith("; no action is proven to pay for its contact")
    with pytest.raises(ValueError, match="no cost given for action 'email'"):
        recommend(CELLS, cost={"call": 0.0})


def test_recommend_per_reason_and_tier() -> None:
    cells = [
        _cell(("service_quality", "call", "high"), 0.2, 0.1, 0.3),
        _cell(("service_quality", "email", "high"), 0.1, 0.05, 0.15),
        _cell(("service_quality", "call", "general"), 0.1, -0.05, 0.25),
        _cell(("service_quality", "email", "general"), 0.05, 0.01, 0.09),
    ]
    got = recommend(cells)
    assert {group: action for group, (action, _) in got.items()} == {
        ("service_quality", "general"): "email",
        ("service_quality", "high"): "call",
    }
