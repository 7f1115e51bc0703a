"""Training: better than RFM on held-out time, deterministic, saved and listed."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import orjson
import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.engine.model_source import ModelSource
from churnwatch.events import from_payload
from churnwatch.models import registry
from churnwatch.models.candidate_names import CANDIDATES
from churnwatch.models.dataset import cutoffs, snapshots
from churnwatch.models.trained_scorer import ModelScorer, RFMScorer, load_scorer
from churnwatch.models.training import TrainingError, feature_frame, train
from churnwatch.offline.ground_truth import alert_evidence, pipeline_alerts, roc_on_truth
from churnwatch.sim.simulator import Simulation, customers_for
from tests.builders import store_rows

END = datetime(2026, 6, 1, tzinfo=UTC)


@cache
def history() -> tuple:
    """Twelve months of a simulated population, as parsed events."""
    sim = Simulation(customers_for(100_000, 365), END - timedelta(days=365), END, seed=9)
    return tuple(from_payload(e) for e in sim.events())


def snaps_of(events) -> list:
    return list(snapshots(events, cutoffs(events[0].epoch_s, events[-1].epoch_s, every_days=7)))


@cache
def trained_once():
    """The model on the whole simulated history (trained once for several tests)."""
    return train(snaps_of(history()), horizon_days=90)


def test_the_champion_is_the_best_candidate_and_the_learned_model_beats_rfm() -> None:
    trained = trained_once()
    assert set(trained.metrics) == set(CANDIDATES)  # profiles give tenure too
    best = max(m["roc_auc"] for m in trained.metrics.values())
    assert trained.metrics[trained.champion]["roc_auc"] == best
    assert trained.candidate == trained.champion and trained.fitted[trained.champion].model is (
        trained.model
    )
    # every metric has its interval, around the figure itself
    for name, metrics in trained.metrics.items():
        low, high = trained.intervals[name]["roc_auc"]
        assert low <= metrics["roc_auc"] <= high and high - low < 0.1, (name, low, high)
    model, baseline = trained.metrics["learned_btyd"], trained.metrics["rfm"]
    assert model["roc_auc"] > baseline["roc_auc"] + 0.02, trained.metrics
    assert model["precision_top_10pct"] > baseline["precision_top_10pct"]
    assert model["brier"] < baseline["brier"]
    # validation lies strictly after every training label window
    assert trained.train_cutoffs[1] + 90 * 86400 <= trained.valid_cutoffs[0]


def test_training_is_deterministic_and_survives_a_round_trip(tmp_path: Path) -> None:
    snaps = snaps_of(history())
    first, second = trained_once(), train(snaps, horizon_days=90)
    frame = feature_frame([s.features for s in snaps[-500:]], first.clv_model)
    frame = frame[list(first.features)]
    scores = first.model.predict_proba(frame)[:, 1]
    assert np.array_equal(scores, second.model.predict_proba(frame)[:, 1])
    card = registry.make_card(
        first, horizon_days=90, trained_from=None, trained_to=END, seed=0, now=END
    )
    folder = registry.save(tmp_path, first, card)
    model, loaded = registry.load(folder)
    assert loaded == card and loaded.version.startswith(f"{first.candidate}-20260601T000000-")
    assert np.array_equal(model.predict_proba(frame)[:, 1], scores)
    assert (folder / "calibration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_history_of_purchases_alone_trains() -> None:
    purchases = [e for e in history() if e.type == "purchase"]
    learned = train(snaps_of(purchases), horizon_days=90, candidate="learned")
    # it trains and ranks better than chance; on this simulation, whose churn all
    # falls late in the year, it does not beat RFM without the other streams
    assert learned.metrics["learned"]["roc_auc"] > 0.58
    assert learned.candidate == "learned" != learned.champion
    assert "satisfaction_mean" not in learned.features  # never observed: left out
    assert "frequency_90d" in learned.features


def test_histories_that_cannot_train_say_why() -> None:
    with pytest.raises(TrainingError, match="no snapshots"):
        train([], horizon_days=90)
    # a short history trains in customer-grouped folds, but one cutoff cannot validate
    short = [e for e in history() if e.epoch_s < (END - timedelta(days=180)).timestamp()]
    snaps = list(snapshots(short, cutoffs(short[0].epoch_s, short[-1].epoch_s)))
    with pytest.raises(TrainingError, match="only 1 cutoff"):
        train(snaps, horizon_days=90)


def test_registry_lists_versions_and_promotes_the_current_one(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        assert store.current_model(conn) is None
        store.register_model(conn, "gbm-a", "/m/a", {"version": "gbm-a"})
        store.register_model(conn, "gbm-b", "/m/b", {"version": "gbm-b"})
        store.promote_model(conn, "gbm-b")
        assert store.current_model(conn) == ("gbm-b", "/m/b")
        store.promote_model(conn, "gbm-a")
        assert store.current_model(conn) == ("gbm-a", "/m/a")
        with pytest.raises(LookupError, match="no model 'gbm-x'"):
            store.promote_model(conn, "gbm-x")


def test_train_command_on_a_stored_history(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    rows = store_rows(history(), END)
    with engine.begin() as conn:
        store.append_events(conn, rows)

    def train_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "churnwatch", "train", "--models-dir", "models", *args],
            env={**os.environ, "CHURNWATCH_DB_URL": db_url},
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )

    out = train_cli("--promote", "--json")
    assert out.returncode == 0, out.stderr
    card = orjson.loads(out.stdout)
    assert card["horizon_days"] == 90 and card["candidate"] == card["champion"]
    assert card["metrics"][card["champion"]]["roc_auc"] > 0.6
    folder = tmp_path / "models" / card["version"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "calibration.png",
        "card.json",
        "model.joblib",
    ]
    with engine.connect() as conn:
        assert store.current_model(conn) == (card["version"], str(folder.resolve()))

    # a window with too little history is refused with a reason, not a traceback
    out = train_cli("--from", "2026-05-01")
    assert out.returncode == 2 and "cannot train:" in out.stderr


def _scorer_and_rows(tmp_path: Path):
    trained = trained_once()
    card = registry.make_card(
        trained, horizon_days=90, trained_from=None, trained_to=END, seed=0, now=END
    )
    folder = registry.save(tmp_path, trained, card)
    rows = [s.features for s in snaps_of(history())[-400:]]
    return ModelScorer(trained.model, card), load_scorer(folder), rows


def test_model_scores_in_one_batch_equal_one_by_one_and_survive_a_round_trip(
    tmp_path: Path,
) -> None:
    scorer, loaded, rows = _scorer_and_rows(tmp_path)
    batch = scorer.values(rows)
    assert batch == [scorer.values([row])[0] for row in rows[:50]] + batch[50:]
    assert loaded.values(rows) == batch and loaded.version == scorer.version
    assert all(0.0 <= v <= 1.0 for v in batch)


def test_reason_codes_are_contributions_against_the_reference_customer(tmp_path: Path) -> None:
    scorer, _, rows = _scorer_and_rows(tmp_path)
    values = scorer.values(rows)
    risky = sorted(range(len(rows)), key=lambda i: values[i])[-20:]
    picked = [rows[i] for i in risky]
    codes = scorer.reason_codes(picked, [values[i] for i in risky])
    reference = trained_once().reference
    checked = 0
    for row, row_codes in zip(picked, codes, strict=True):
        assert 0 < len(row_codes) <= 5
        gains = [c["contribution"] for c in row_codes]
        assert gains == sorted(gains, reverse=True) and min(gains) > 0
        orjson.dumps(row_codes)  # plain JSON values only
        for code in row_codes:
            name = code["indicator"]
            if name == "last_complaint_category" or code["scale"] != "calibrated":
                continue  # a category, or a flat calibration step ranked by the trees' score
            assert code["value"] == (None if row[name] is None else round(row[name], 4))
            # the contribution is the score drop when this one value is the reference's
            swapped = {**row, name: reference[name]}
            drop = scorer.values([row])[0] - scorer.values([swapped])[0]
            assert abs(code["contribution"] - drop) <= 1.5e-4, code  # three roundings
            checked += 1
    assert checked >= 20


def test_on_ground_truth_the_model_ranks_leavers_and_names_their_reason(tmp_path: Path) -> None:
    """Judged on another population, where each churner's date and reason are known."""
    trained = trained_once()
    card = registry.make_card(
        trained, horizon_days=90, trained_from=None, trained_to=END, seed=0, now=END
    )
    scorers = {
        "model": ModelScorer(trained.model, card),
        "rfm": RFMScorer(trained.fitted["rfm"].model),
    }
    sim = Simulation(customers_for(40_000, 365), END - timedelta(days=365), END, seed=10)
    payloads = list(sim.events())
    events = [from_payload(p) for p in payloads]
    truth = {t.customer_id: t for t in sim.truth()}
    auc = roc_on_truth(events, truth, scorers)
    assert auc["model"] > auc["rfm"] + 0.03, auc

    alerts = pipeline_alerts(payloads, scorers["model"], f"sqlite:///{tmp_path / 'gt.db'}", now=END)
    assert {a["model_version"] for a in alerts} == {card.version}
    found = alert_evidence(alerts, truth)
    assert found["caught_share"] > 0.1 and found["median_lead_days"] > 7, found
    assert found["reason_accuracy"] > 0.5, found  # chance is 0.25


def test_the_model_source_follows_promotions_and_survives_a_bad_one(
    tmp_path: Path, engine: sa.Engine
) -> None:
    trained = trained_once()
    card = registry.make_card(
        trained, horizon_days=90, trained_from=None, trained_to=END, seed=0, now=END
    )
    folder = registry.save(tmp_path, trained, card)
    now = [0.0]
    source = ModelSource(engine, models_dir=tmp_path, check_every_s=5, clock=lambda: now[0])
    assert source().version == "rule-v3"  # nothing promoted: the rule
    with engine.begin() as conn:
        store.register_model(
            conn, card.version, str(folder), {"version": card.version}, registry.digest(folder)
        )
        store.promote_model(conn, card.version)
    now[0] = 4.9
    assert source().version == "rule-v3"  # not asked again yet
    now[0] = 5.0
    assert source().version == card.version
    with engine.begin() as conn:
        store.register_model(conn, "broken", str(tmp_path / "missing"), {"version": "broken"})
        store.promote_model(conn, "broken")
    now[0] = 10.0
    assert source().version == card.version  # logged; the previous model stays
    pinned = ModelSource(engine, models_dir=tmp_path, pinned=folder)
    assert pinned().version == card.version
    with pytest.raises(FileNotFoundError):
        ModelSource(engine, models_dir=tmp_path, pinned=tmp_path / "missing")
