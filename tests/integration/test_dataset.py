"""Training snapshots: exact features as of each cutoff, labels after it, no leakage."""

from __future__ import annotations

import sqlalchemy as sa

from churnwatch import store
from churnwatch.events import from_payload
from churnwatch.features.row import feature_row
from churnwatch.features.state import apply
from churnwatch.models.dataset import cutoffs, snapshots
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
