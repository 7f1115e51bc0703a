"""Training snapshots: exact features as of each cutoff, labels after it, no leakage."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.events import from_payload
from churnwatch.features.row import feature_row
from churnwatch.features.state import DAY_S, apply
from churnwatch.models.dataset import cutoffs, dense_window, snapshots
from tests.builders import at, ev, store_rows

HISTORY = [
    ev(0, "purchase", cid="a", amount=10),
    ev(0.5, "purchase", cid="b", amount=20),
    ev(20, "complaint_opened", cid="b", complaint_id="k", category="price", severity=2),
    ev(30, "purchase", cid="a", amount=15),
    ev(40, "login", cid="c"),  # never buys: never a snapshot
    ev(95, "purchase", cid="a", amount=5),
    ev(130, "purchase", cid="b", amount=7),  # 129.5 days after b's last: b churned at 60
]


def fold_until(events, customer: str, t: float):
    state = None
    for event in events:
        if event.customer_id == customer and event.epoch_s <= t:
            state = apply(state, event)
    return state


def test_cutoffs_are_midnights_whose_label_window_has_closed() -> None:
    assert cutoffs(at(0.5), at(200), every_days=30, horizon_days=90, warm_up_days=10) == [
        at(11),
        at(41),
        at(71),
        at(101),
    ]
    assert cutoffs(at(0), at(50), horizon_days=90) == []


def test_features_labels_and_who_is_included() -> None:
    got = {(s.customer_id, s.cutoff_s): s for s in snapshots(HISTORY, [at(30), at(60)])}
    # day 30 counts the purchase at exactly day 30 (ts <= T); c never bought
    assert set(got) == {("a", at(30)), ("b", at(30)), ("a", at(60)), ("b", at(60))}
    for (cid, t), snap in got.items():
        assert snap.features == feature_row(fold_until(HISTORY, cid, t), t)
    assert got[("a", at(30))].features["frequency_30d"] == 1  # day 0 is exactly T - 30 d
    # a buys again on day 95 (within 90 days of 30 and of 60); b only on day 130
    assert {key: s.churned for key, s in got.items()} == {
        ("a", at(30)): False,
        ("b", at(30)): True,
        ("a", at(60)): False,
        ("b", at(60)): False,
    }


def test_later_events_never_change_a_cutoffs_features() -> None:
    later = [
        ev(61, "purchase", cid="a", amount=999),
        ev(62, "complaint_opened", cid="b", complaint_id="z", category="other", severity=3),
    ]
    merged = sorted(HISTORY + later, key=lambda e: e.epoch_s)
    before = {(s.customer_id, s.cutoff_s): s.features for s in snapshots(HISTORY, [at(60)])}
    after = {(s.customer_id, s.cutoff_s): s.features for s in snapshots(merged, [at(60)])}
    assert before == after


def test_snapshots_from_the_store_equal_those_from_memory(engine: sa.Engine) -> None:
    rows = store_rows(reversed(HISTORY))  # stored out of order: read back in event time
    with engine.begin() as conn:
        store.append_events(conn, rows)
    with engine.connect() as conn:
        stored = [from_payload(p) for p in store.read_events(conn)]
    assert [e.event_id for e in stored] == [e.event_id for e in HISTORY]
    assert list(snapshots(stored, [at(30), at(60)])) == list(snapshots(HISTORY, [at(30), at(60)]))


def test_simulated_churners_are_labelled_churned_after_their_churn_date() -> None:
    from datetime import UTC, datetime, timedelta

    from churnwatch.sim.simulator import Simulation

    end = datetime(2026, 6, 1, tzinfo=UTC)
    sim = Simulation(300, end - timedelta(days=365), end, seed=4)
    events = [from_payload(e) for e in sim.events()]
    cuts = cutoffs(events[0].epoch_s, events[-1].epoch_s)
    snaps = list(snapshots(events, cuts))
    truth = {t.customer_id: t for t in sim.truth()}
    # a 90-day warm-up and a 90-day label window leave days 91..275: 14 fortnights
    assert len(cuts) == 14 and len(snaps) > 1000
    after_churn = [
        s
        for s in snaps
        if truth[s.customer_id].churn_date
        and s.cutoff_s >= datetime.fromisoformat(truth[s.customer_id].churn_date).timestamp()
    ]
    assert after_churn and all(s.churned for s in after_churn)
    loyal = [s for s in snaps if not truth[s.customer_id].churns]
    # loyal customers of the lowest tier buy about monthly: most come back in 90 days
    assert sum(s.churned for s in loyal) / len(loyal) < 0.2


def _bulk(days: int, per_day: int, seed: int = 0) -> list[float]:
    """``per_day`` events a day at random times, on weekdays only, from T0."""
    rng = random.Random(seed)
    return sorted(
        at(day + rng.random()) for day in range(days) if day % 7 < 5 for _ in range(per_day)
    )


def test_the_dense_window_leaves_stray_times_out() -> None:
    bulk = _bulk(220, 50)
    # late copies dated 400 days back, a 1970 default date, one record 20 days after
    late = [t - 400 * DAY_S for t in bulk[:66]]
    stray = [*late, 0.0, bulk[-1] + 20 * DAY_S]
    assert dense_window([*stray, *bulk]) == (bulk[0], bulk[-1])
    # without the stray times, or in any order, the same bulk
    assert (
        dense_window(bulk)
        == dense_window(list(reversed([*bulk, *stray])))
        == (
            bulk[0],
            bulk[-1],
        )
    )


def test_a_history_dense_throughout_keeps_every_time() -> None:
    # weekends off, a quiet fortnight, monthly billing days: each still dense
    quiet = [t for t in _bulk(300, 20) if not at(100) <= t < at(114)]
    billing = [at(day) for day in range(0, 360, 30) for _ in range(400)]
    quarterly = [at(day) for day in range(0, 720, 91) for _ in range(400)]
    for times in (quiet, billing, quarterly, _bulk(60, 1)):
        assert dense_window(times) == (times[0], times[-1])
    # no dense run holds half of the times: no bulk to tell apart from tails
    sparse = [at(day) for day in (0, 50, 100, 150, 200)]
    assert dense_window(sparse) == (sparse[0], sparse[-1])
    assert dense_window([at(3)]) == (at(3), at(3))
    with pytest.raises(ValueError, match="at least one time"):
        dense_window([])


def test_a_pulsed_history_leaves_a_stray_time_out() -> None:
    # everyone billed on the same day each quarter, and one mistyped date a year on
    quarterly = [at(day) for day in range(0, 720, 91) for _ in range(400)]
    assert dense_window([*quarterly, at(1100)]) == (quarterly[0], quarterly[-1])


def test_a_hole_of_months_keeps_the_part_holding_more_events() -> None:
    times = _bulk(220, 30)
    kept = [t for t in times if t < at(100) or t >= at(160)]
    assert dense_window(kept) == (kept[0], max(t for t in kept if t < at(100)))
