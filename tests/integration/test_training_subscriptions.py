"""Training on a subscription history: recognised, judged on active subscribers, valued."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from churnwatch import store
from churnwatch.events import from_payload
from churnwatch.models.contractual import CONTRACTUAL
from churnwatch.models.dataset import population_rows
from churnwatch.models.trained_scorer import load_scorer
from churnwatch.models.value import customer_values
from churnwatch.offline.training import train_from_store
from churnwatch.sim.subscriptions import SubscriptionSimulation
from tests.builders import store_rows
from tests.reference import REFERENCE


def test_train_values_a_subscription_history_by_retention(tmp_path: Path) -> None:
    start = REFERENCE - timedelta(days=400)
    sim = SubscriptionSimulation(500, start, REFERENCE, seed=4)
    events = [from_payload(e) for e in sim.events()]
    engine = store.make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade(engine)
    with engine.begin() as conn:
        store.append_events(conn, store_rows(events, REFERENCE))

    card, folder = train_from_store(engine, tmp_path / "models", every_days=14)

    assert card.history_kind == CONTRACTUAL
    assert card.history_note.endswith(
        "pay at regular intervals (gaps' coefficient of variation "
        "at most 0.25), typically every 30 days"
    )
    assert card.clv is not None and card.clv["kind"] == CONTRACTUAL
    assert card.clv_note is not None and card.clv_note.startswith(
        "subscriptions, not independent purchases: customers are valued by retention by tenure"
    )
    # the value model's candidates are judged, not left out
    assert {"purchase_model", "learned_btyd"} <= set(card.metrics)

    # the worker's alerts carry values from it: subscribers who paid lately are worth money
    scorer = load_scorer(folder)
    recent = [r for r in population_rows(events, events[-1].epoch_s) if r["recency_days"] < 10]
    values = customer_values(recent, scorer.values(recent), scorer.clv)
    assert len(values) > 50
    assert all(v["p_alive"] == 1.0 and v["clv"] > 0 for v in values)
    assert all(v["clv_horizon_days"] == 90.0 for v in values)
