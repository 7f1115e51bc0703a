"""Training on the histories people have: nine months of purchases, the defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from churnwatch import store
from churnwatch.events import from_payload
from churnwatch.models.dataset import MIN_WARM_UP_DAYS, cutoffs, snapshots, warm_up_for
from churnwatch.models.trained_scorer import load_scorer
from churnwatch.models.training import TrainingError, train
from churnwatch.offline.training import train_from_store
from churnwatch.sim.simulator import Simulation, customers_for
from tests.builders import T0, monthly_buyers, store_rows

END = datetime(2026, 6, 1, tzinfo=UTC)
DAY_S = 86400.0


def test_warm_up_shrinks_to_what_the_history_allows() -> None:
    def warm_up(days: float) -> float:
        return warm_up_for(0.0, days * DAY_S, 90.0)

    assert warm_up(365) == 90.0  # a year keeps a full horizon
    assert warm_up(273) == 273 - 180 - MIN_WARM_UP_DAYS  # nine months give some up
    assert warm_up(200) == MIN_WARM_UP_DAYS  # never below four weeks


def test_nine_months_of_purchases_alone_train_at_the_defaults(tmp_path: Path) -> None:
    days = 273
    sim = Simulation(customers_for(30_000, days), END - timedelta(days=days), END, seed=4)
    events = [e for e in (from_payload(p) for p in sim.events()) if e.type == "purchase"]
    engine = store.make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade(engine)
    with engine.begin() as conn:
        store.append_events(conn, store_rows(events, END))

    card, folder = train_from_store(engine, tmp_path / "models")  # horizon 90, every 7 days

    first, last = events[0].epoch_s, events[-1].epoch_s
    warm_up = warm_up_for(first, last, 90.0)
    at = cutoffs(first, last, every_days=7, horizon_days=90.0, warm_up_days=warm_up)
    settled = list(snapshots(events, at, horizon_days=90.0))
    assert card.warm_up_days == warm_up < 90.0
    assert card.validation.startswith("customer-grouped folds")
    # the saved model learned from every settled snapshot, after validation
    assert card.n_refit == len(settled)
    assert f"refitted on all {len(settled):,} settled snapshots" in card.validation
    # grouped folds learn from every earlier cutoff and judge on the latest quarter
    assert card.n_train + card.n_valid == len(settled)
    assert set(card.metrics) == {"model", "rfm_baseline", "bg_nbd_baseline"}
    assert card.metrics["model"]["roc_auc"] > 0.6, card.metrics
    assert {"p_alive", "expected_purchases_90d", "clv_90d"} <= set(card.features)
    saved = orjson.loads((folder / "card.json").read_bytes())
    assert saved["validation"] == card.validation and saved["clv"] == card.clv

    # the saved model scores with its customer-value columns
    scorer = load_scorer(folder)
    assert scorer.clv is not None
    assert len(scorer.values([s.features for s in settled[:20]])) == 20


def test_a_long_history_keeps_the_time_split_and_refits_on_everything() -> None:
    days = 400
    sim = Simulation(customers_for(30_000, days), END - timedelta(days=days), END, seed=4)
    events = [from_payload(p) for p in sim.events()]
    first, last = events[0].epoch_s, events[-1].epoch_s
    at = cutoffs(first, last, every_days=7, horizon_days=90.0, warm_up_days=90.0)
    settled = list(snapshots(events, at, horizon_days=90.0))
    trained = train(settled, horizon_days=90.0)
    assert trained.validation.startswith("time split")
    assert trained.train_cutoffs[1] + 90 * DAY_S <= trained.valid_cutoffs[0]
    assert trained.n_train + trained.n_valid < trained.n_refit == len(settled)


def test_monthly_buyers_cut_six_months_in_train(tmp_path: Path) -> None:
    """``train --to`` six months into a subscription-like history.

    The purchase rhythm (``interval_cv_365d``, ``rhythm_z``) needs three purchase
    days, which monthly buyers reach only at the latest cutoffs learned from: the
    calibration fold that learns from the earlier two thirds of the rows saw it
    empty, and the trees' binning failed on it with a ValueError.
    """
    engine = store.make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade(engine)
    with engine.begin() as conn:
        store.append_events(conn, store_rows(monthly_buyers(150, 365, seed=1), T0))

    card, _ = train_from_store(engine, tmp_path / "models", until=T0 + timedelta(days=180))

    assert card.validation.startswith("customer-grouped folds")
    assert card.trained_to == (T0 + timedelta(days=180)).isoformat()
    assert {"recency_days", "frequency_90d"} <= set(card.features)


def test_too_few_churners_to_calibrate_is_a_reason_not_a_traceback() -> None:
    # twenty customers over six months: a fold sees fewer churners than calibration's 3 folds
    sim = Simulation(customers_for(600, 180), END - timedelta(days=180), END, seed=0)
    events = [from_payload(p) for p in sim.events()]
    first, last = events[0].epoch_s, events[-1].epoch_s
    at = cutoffs(first, last, horizon_days=90.0, warm_up_days=warm_up_for(first, last, 90.0))
    with pytest.raises(TrainingError, match=r"^only \d churned among the training snapshots"):
        train(list(snapshots(events, at, horizon_days=90.0)), horizon_days=90.0)
