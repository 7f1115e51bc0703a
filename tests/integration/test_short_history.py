"""Training on the histories people have: nine months of purchases, the defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from churnwatch import store
from churnwatch.events import from_payload
from churnwatch.models.candidate_names import CANDIDATES
from churnwatch.models.dataset import MIN_WARM_UP_DAYS, cutoffs, snapshots, warm_up_for
from churnwatch.models.trained_scorer import load_scorer
from churnwatch.models.training import TrainingError, train
from churnwatch.offline.training import train_from_store
from churnwatch.sim.simulator import Simulation, customers_for
from tests.builders import T0, ev, monthly_buyers, store_rows

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
    # purchases alone: no profile, so no tenure baseline
    assert set(card.metrics) == set(CANDIDATES) - {"tenure"}
    assert card.metrics[card.champion]["roc_auc"] > 0.6, card.metrics
    assert card.candidate == card.champion
    assert card.clv is not None
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
    # the champion is saved, and it reads the purchases (which candidate wins is the data's)
    assert card.candidate == card.champion and "frequency_90d" in card.features


def test_too_few_churners_to_calibrate_is_a_reason_not_a_traceback() -> None:
    # twenty customers over six months: a fold sees fewer churners than calibration's 3 folds
    sim = Simulation(customers_for(600, 180), END - timedelta(days=180), END, seed=0)
    events = [from_payload(p) for p in sim.events()]
    first, last = events[0].epoch_s, events[-1].epoch_s
    at = cutoffs(first, last, horizon_days=90.0, warm_up_days=warm_up_for(first, last, 90.0))
    with pytest.raises(TrainingError, match=r"^only \d churned among the training snapshots"):
        train(list(snapshots(events, at, horizon_days=90.0)), horizon_days=90.0)


def _train_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "churnwatch", "train", "--models-dir", "models", *args],
        env={**os.environ, "CHURNWATCH_DB_URL": f"sqlite:///{tmp_path / 'store.db'}"},
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )


def _seconds(event) -> str:
    return event.ts.isoformat(timespec="seconds")


def _with_late_copies(tmp_path: Path) -> tuple[list, list]:
    """Monthly buyers over 240 days from T0, and 40 late copies of their first purchases.

    The copies are dated 400 days back, as the simulator's too-late records are;
    both are stored in ``tmp_path/store.db``.
    """
    real = monthly_buyers(150, 240, seed=1)
    late = [
        ev((e.epoch_s - T0.timestamp()) / DAY_S - 400, "purchase", e.customer_id, amount=20.0)
        for e in real[:40]
    ]
    engine = store.make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade(engine)
    with engine.begin() as conn:
        store.append_events(conn, store_rows([*late, *real], T0))
    return real, late


def test_train_learns_where_a_history_with_stray_records_is_dense(tmp_path: Path) -> None:
    real, late = _with_late_copies(tmp_path)
    # from the first to the last event, the warm-up would end among the late copies alone
    first, last = late[0].epoch_s, real[-1].epoch_s
    assert cutoffs(first, last, warm_up_days=warm_up_for(first, last, 90.0))[0] < T0.timestamp()

    out = _train_cli(tmp_path)

    assert out.returncode == 0, out.stderr
    start, end = _seconds(real[0]), _seconds(real[-1])
    window = (
        f"{start} to {end}, where the stored history is dense: 40 earlier and 0 later of "
        f"{len(real) + 40:,} events left out (the stored ones span {_seconds(late[0])} to {end})"
    )
    assert f"window: {window}\n" in out.stdout
    (folder,) = (tmp_path / "models").iterdir()
    card = orjson.loads((folder / "card.json").read_bytes())
    assert card["window"] == window
    assert (card["trained_from"], card["trained_to"]) == (
        real[0].ts.isoformat(),
        real[-1].ts.isoformat(),
    )
    assert datetime.fromisoformat(card["train_cutoffs"][0]) >= T0 + timedelta(days=28)

    # given bounds win: the late copies are learned from, and fail; the hint is the dense part
    out = _train_cli(tmp_path, "--from", "2024-11-01", "--to", "2025-12-31")
    assert out.returncode == 2
    assert out.stderr.startswith("cannot train: no snapshots: ")
    assert out.stderr.endswith(
        " or --from 2026-01-01 --to 2026-08-29 (where the stored history is dense)\n"
    )


def test_train_refuses_options_that_cannot_train_in_one_line(tmp_path: Path) -> None:
    refused = {
        ("--from", "2026-05-01", "--to", "2026-04-01"): "--from 2026-05-01T00:00:00+00:00 is "
        "not before --to 2026-04-01T00:00:00+00:00: give a --from earlier than the --to",
        ("--horizon-days", "0"): "--horizon-days must be more than 0 (got 0): the days after "
        "a cutoff in which a purchase means the customer stayed, e.g. 90",
        ("--horizon-days", "-30"): "--horizon-days must be more than 0 (got -30): the days "
        "after a cutoff in which a purchase means the customer stayed, e.g. 90",
        ("--every-days", "0"): "--every-days must be 1 at least (got 0)",
    }
    for args, why in refused.items():
        out = _train_cli(tmp_path, *args)
        assert (out.returncode, out.stderr, out.stdout) == (2, f"cannot train: {why}\n", "")


def test_a_window_that_cannot_train_says_what_to_try(tmp_path: Path) -> None:
    real, _ = _with_late_copies(tmp_path)
    engine = store.make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    until = T0 + timedelta(days=100)
    with pytest.raises(TrainingError) as caught:
        train_from_store(engine, tmp_path / "models", until=until)
    last = max((e for e in real if e.ts <= until), key=lambda e: e.ts)
    assert str(caught.value) == (
        "no snapshots: the history holds no customer active at any cutoff; "
        f"the window {_seconds(real[0])} to {_seconds(last)} holds 100 days: 0 cutoff(s) every "
        "7 day(s) after a 28-day warm-up, 0 snapshots; try --horizon-days 50 or --every-days 1 "
        "or --from 2026-01-01 --to 2026-08-29 (where the stored history is dense)"
    )

    # everyone buys once: every snapshot is churned, and a longer horizon is the advice
    once = [ev(day / 4, "purchase", f"o{day}", amount=5.0) for day in range(800)]
    engine = store.make_engine(f"sqlite:///{tmp_path / 'once.db'}")
    store.upgrade(engine)
    with engine.begin() as conn:
        store.append_events(conn, store_rows(once, T0))
    with pytest.raises(
        TrainingError,
        match=r"are all churned: .*\(100% churned\); try "
        r"--horizon-days 180$",
    ):
        train_from_store(engine, tmp_path / "models")
