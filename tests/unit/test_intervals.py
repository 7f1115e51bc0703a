"""The backtest's statistics: Wilson intervals and the bulk of a history."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from churnwatch.features.state import DAY_S
from churnwatch.models.dataset import dense_window
from churnwatch.offline.backtest import Metrics, Span, bulk, wilson


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # the textbook cases: 5 of 10, and none or all of 10 (upper bound z²/(n+z²))
        (5, 10, 0.2366, 0.7634),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (4, 5, 0.3755, 0.9638),
        (21, 40, 0.3750, 0.6706),
        (1, 1, 0.2065, 1.0),
    ],
)
def test_wilson_95_percent_intervals(successes: int, n: int, low: float, high: float) -> None:
    assert tuple(round(b, 4) for b in wilson(successes, n)) == (low, high)


def test_wilson_without_trials_and_out_of_range() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="successes must be from 0 to n"):
        wilson(3, 2)
    with pytest.raises(ValueError, match="successes must be from 0 to n"):
        wilson(-1, 2)
    # a wider z gives a wider interval
    assert wilson(5, 10, z=2.576)[0] < wilson(5, 10)[0]


@given(st.integers(1, 10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_a_wilson_interval_holds_its_share_within_0_and_1(case: tuple[int, int]) -> None:
    successes, n = case
    low, high = wilson(successes, n)
    assert 0.0 <= low <= successes / n <= high <= 1.0
    # four times the trials, the same share: a narrower interval
    low4, high4 = wilson(4 * successes, 4 * n)
    assert high4 - low4 < high - low


def test_metrics_carry_the_intervals_of_their_counts() -> None:
    m = Metrics(
        alerts=12, judged=10, confirmed=5, precision=0.5, churns=40, caught=21, recall=0.525
    )
    assert m.precision_interval == wilson(5, 10)
    assert m.recall_interval == wilson(21, 40)
    row = m.to_dict()
    bounds = ("precision_low", "precision_high", "recall_low", "recall_high")
    assert [row[k] for k in bounds] == [0.2366, 0.7634, 0.375, 0.6706]
    assert Metrics().to_dict()["precision_low"] is None
    assert Metrics().precision_interval is None and Metrics().recall_interval is None


def _days(*days: float) -> list[float]:
    return [d * DAY_S for d in days]


def test_the_bulk_of_a_history_leaves_stray_records_out() -> None:
    dense = _days(*range(200))  # a record a day for 200 days
    # two records a year after the rest: strays
    assert bulk([*dense, *_days(565, 566)]) == Span(0.0, 199 * DAY_S, 0, 2)
    # and one a year before
    assert bulk([*_days(-365), *dense]) == Span(0.0, 199 * DAY_S, 1, 0)
    # a lone record four weeks on, or three in a row a half-year on: outside the dense part
    assert bulk([*dense, *_days(227)]) == Span(0.0, 199 * DAY_S, 0, 1)
    assert bulk([*dense, *_days(400, 401, 402)]) == Span(0.0, 199 * DAY_S, 0, 3)
    # a record a few days on, and a thinner tail that goes on, are part of the history
    assert bulk([*dense, *_days(205)]) == Span(0.0, 205 * DAY_S, 0, 0)
    assert bulk([*dense, *_days(*range(200, 260, 5))]) == Span(0.0, 255 * DAY_S, 0, 0)
    # the same rule as the training window's
    times = [*_days(-365), *dense, *_days(227)]
    assert (bulk(times).first, bulk(times).last) == dense_window(times)
    with pytest.raises(ValueError, match="no records"):
        bulk([])
