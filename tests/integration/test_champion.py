"""Champion and challengers: the served scorer never ranks worse than a known baseline.

A learned model is one candidate among baselines, judged on the same held-out
cutoffs with bootstrap intervals over customers. Where it loses, a baseline is
the champion, a promotion of the loser is refused in one line (``--force``
overrides), and whatever is promoted is what the worker, replay and the
notebook API all serve.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest

from churnwatch import store
from churnwatch.engine.model_source import ModelSource
from churnwatch.events import from_payload
from churnwatch.features.row import FEATURES
from churnwatch.models.candidates import refusal
from churnwatch.models.dataset import Snapshot
from churnwatch.models.registry import ModelIntegrityError
from churnwatch.models.training import train
from churnwatch.offline import api
from churnwatch.sim.simulator import Simulation, customers_for
from tests.builders import store_rows

END = datetime(2026, 6, 1, tzinfo=UTC)
DAY = 86400.0


def _shifting_snapshots(customers: int = 300, cutoffs: int = 24, seed: int = 3) -> list[Snapshot]:
    """Weekly snapshots whose churn follows satisfaction early and recency late.

    Before the held-out quarter, unhappy customers leave (and recency says
    little); at the held-out cutoffs, satisfaction is noise and recency
    decides. A learned model takes the strong early signal and loses to the
    recency baseline on the later cutoffs: a spurious signal that did not hold.
    """
    rng = np.random.default_rng(seed)
    names = [f.name for f in FEATURES]
    out = []
    start = END.timestamp() - cutoffs * 7 * DAY
    for week in range(cutoffs):
        late = week >= cutoffs * 3 // 4 - 1
        for i in range(customers):
            recency = float(rng.uniform(0, 89))
            satisfaction = float(rng.uniform(1, 5))
            if late:
                churn_p = 0.05 + 0.6 * recency / 89
            else:
                churn_p = 0.05 + 0.6 * (satisfaction < 2.2) + 0.05 * recency / 89
            features = dict.fromkeys(names)
            features.update(
                recency_days=recency,
                frequency_90d=int(rng.integers(1, 6)),
                monetary_90d=float(rng.uniform(10, 200)),
                satisfaction_mean=satisfaction,
                satisfaction_latest=satisfaction,
            )
            churned = bool(rng.random() < churn_p)
            out.append(Snapshot(f"c{i}", start + week * 7 * DAY, features, churned))
    return out


def test_a_learned_model_that_loses_to_a_baseline_is_not_the_champion_nor_promoted() -> None:
    snaps = _shifting_snapshots()
    trained = train(snaps, horizon_days=90)
    assert trained.champion == "recency", trained.metrics
    assert trained.candidate == "recency" and refusal("recency", trained.evidence) is None
    # asked for the learned model: it is saved, with the evidence that it loses
    learned = train(snaps, horizon_days=90, candidate="learned")
    evidence = learned.evidence
    assert evidence["against"] == "recency" and evidence["champion"] == "recency"
    low, high = evidence["interval"]
    assert low <= evidence["difference"] <= high < 0, evidence
    message = refusal("learned", evidence)
    assert message is not None and "\n" not in message
    assert message.startswith("learned ranks worse than the recency baseline on held-out data")
    assert message.endswith("promote the champion (recency) instead, or pass --force")


@pytest.fixture
def stored_history(tmp_path: Path) -> str:
    """A simulated year (profiles, purchases, complaints, engagement) in a SQLite store."""
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    sim = Simulation(customers_for(20_000, 365), END - timedelta(days=365), END, seed=12)
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    with engine.begin() as conn:
        store.append_events(conn, store_rows([from_payload(p) for p in sim.events()], END))
    engine.dispose()
    return db_url


def _churnwatch(db_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "churnwatch", *args],
        env={**os.environ, "CHURNWATCH_DB_URL": db_url, "CHURNWATCH_MODELS_DIR": "models"},
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


def _current(db_url: str) -> str | None:
    engine = store.make_engine(db_url)
    with engine.connect() as conn:
        current = store.current_model(conn)
    engine.dispose()
    return None if current is None else current[0]


def test_train_promotes_the_champion_refuses_a_loser_and_force_overrides(
    stored_history: str, tmp_path: Path
) -> None:
    out = _churnwatch(
        stored_history, tmp_path, "train", "--every-days", "14", "--promote", "--json"
    )
    assert out.returncode == 0, out.stderr
    champion = orjson.loads(out.stdout)
    assert champion["candidate"] == champion["champion"]
    assert _current(stored_history) == champion["version"]

    # tenure alone ranks far below the best baseline here: refused in one line
    out = _churnwatch(
        stored_history,
        tmp_path,
        "train",
        "--every-days",
        "14",
        "--candidate",
        "tenure",
        "--promote",
    )
    assert out.returncode == 3, out.stderr
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("error: tenure-") and "saved but not promoted" in line
    assert "tenure ranks worse than the" in line and line.endswith("or pass --force")
    assert _current(stored_history) == champion["version"]  # unchanged

    forced = _churnwatch(
        stored_history,
        tmp_path,
        *("train", "--every-days", "14", "--candidate", "tenure", "--promote", "--force"),
    )
    assert forced.returncode == 0, forced.stderr
    # through a pipe, the comparison is a whole Markdown table, intervals and all
    lines = forced.stdout.splitlines()
    assert "| candidate | roc_auc | pr_auc | brier | precision_top_10pct |" in lines
    champion_row = next(line for line in lines if "(champion)" in line)
    assert champion_row.startswith(f"| {champion['champion']} (champion) | ")
    assert champion_row.count("[") == 4  # an interval on every metric
    assert _current(stored_history).startswith("tenure-")  # type: ignore[union-attr]


def test_a_promoted_baseline_scores_alike_in_the_worker_replay_and_the_api(
    stored_history: str, tmp_path: Path
) -> None:
    out = _churnwatch(
        stored_history, tmp_path, "train", "--candidate", "purchase_model", "--promote"
    )
    assert out.returncode == 0, out.stderr  # the champion here: no refusal
    version = _current(stored_history)
    assert version is not None and version.startswith("purchase_model-")
    when = END - timedelta(days=30)

    engine = api.open_store(stored_history)
    promoted = api.default_scorer(engine, models_dir=tmp_path / "models")
    records = api.records_as_of(engine, when, scorer=promoted)
    assert {r["model_version"] for r in records} == {version}
    # the worker's model source loads the same promoted baseline
    served = ModelSource(engine, models_dir=tmp_path / "models")()
    assert served.version == version
    assert served.values(records) == [r["score"] for r in records]
    # and replay's rows as of the same time carry the same scores
    scores = tmp_path / "scores.csv"
    out = _churnwatch(
        stored_history, tmp_path, "replay", "--as-of", when.isoformat(), "--scores-out", str(scores)
    )
    assert out.returncode == 0, out.stderr
    with scores.open() as f:
        replayed = {row["customer_id"]: float(row["score"]) for row in csv.DictReader(f)}
    assert replayed == {r["customer_id"]: r["score"] for r in records}
    assert len(set(replayed.values())) > 100  # a real ranking, not a constant
    # with reasons as any scorer gives them: recency is what moves the purchase model
    risky = sorted(records, key=lambda r: r["score"])[-10:]
    codes = served.reason_codes(risky, [r["score"] for r in risky])
    assert sum(bool(c) for c in codes) >= 5, codes
    # (a rare buyer with one recent purchase is risky for how rarely they buy, which no
    # single indicator swapped to the reference customer's undoes: no code then)
    assert all(c[0]["indicator"] == "recency_days" for c in codes if c), codes
    engine.dispose()


def test_the_notebook_api_finds_the_promoted_model_from_any_folder_and_never_falls_back(
    stored_history: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _churnwatch(
        stored_history, tmp_path, "train", "--candidate", "purchase_model", "--promote"
    )
    assert out.returncode == 0, out.stderr
    version = _current(stored_history)
    engine = api.open_store(stored_history)
    # a notebook in another folder, with no models folder set: the store says where it is
    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("CHURNWATCH_MODELS_DIR", raising=False)
    assert api.default_scorer(engine).version == version
    # a models folder set to one that does not hold it: refused, not the rule
    monkeypatch.setenv("CHURNWATCH_MODELS_DIR", str(elsewhere))
    with pytest.raises(ModelIntegrityError, match="is not under"):
        api.default_scorer(engine)
    # an artifact changed since training: refused, not the rule
    monkeypatch.delenv("CHURNWATCH_MODELS_DIR")
    artifact = tmp_path / "models" / str(version) / "model.joblib"
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    with pytest.raises(ModelIntegrityError):
        api.default_scorer(engine)
    engine.dispose()
