"""The analysts' API: import, rows as of a time and the backtest sweep as DataFrames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pytest

from churnwatch import store
from churnwatch.alerts.config import DEFAULT_POLICY, load_policy
from churnwatch.features.tier import TIERS
from churnwatch.models.rule import RuleScorer
from churnwatch.offline import api
from churnwatch.offline.replay import COLUMNS
from churnwatch.sim.simulator import Simulation, records

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _history(tmp_path: Path) -> tuple[Path, list[dict]]:
    sim = Simulation(60, NOW - timedelta(days=300), NOW, seed=11, churn_share=0.5)
    events = [orjson.loads(r.value) for r in records(sim, bad_share=0)]
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path, events


def test_the_api_imports_and_answers_with_dataframes(db_url: str, tmp_path: Path) -> None:
    path, events = _history(tmp_path)
    engine = api.open_store(db_url)
    summary = api.import_events(engine, path)
    assert (summary.rows, summary.stored, summary.rejected) == (len(events), len(events), 0)
    assert api.import_events(engine, path).stored == 0  # re-importing adds nothing
    assert store.count_rows(engine, store.events) == len(events)

    when = NOW - timedelta(days=30)
    scorer = RuleScorer()
    frame = api.rows_as_of(engine, when.isoformat(), scorer=scorer)
    plain = api.records_as_of(engine, when, scorer=scorer)
    assert list(frame.columns) == list(COLUMNS)
    customers = {e["customer_id"] for e in events if datetime.fromisoformat(e["ts"]) <= when}
    assert sorted(frame["customer_id"]) == sorted(customers) == [r["customer_id"] for r in plain]
    for row, record in zip(frame.to_dict("records"), plain, strict=True):
        for column in COLUMNS:
            value = record[column]
            if value is None:
                assert pd.isna(row[column]), column
            else:
                assert row[column] == value, column

    findings = api.backtest(
        engine, since=NOW - timedelta(days=200), capacity_per_day=2, scorer=scorer
    )
    sweep = api.sweep_frame(findings)
    assert len(sweep) == sum(len(points) for points in findings.sweep.values())
    assert set(sweep["tier"]) == set(findings.sweep)
    metrics = api.metrics_frame(findings)
    assert len(metrics) == 2 * (len(TIERS) + 1)
    every = metrics[(metrics["policy"] == "current") & (metrics["tier"] == "all")].iloc[0]
    assert every["alerts"] == findings.current_metrics["all"].alerts
    assert len(findings.alerts) >= findings.current_metrics["all"].alerts > 0
    assert findings.current.thresholds == load_policy(DEFAULT_POLICY).thresholds


def test_a_backtest_of_an_empty_store_says_so(tmp_path: Path) -> None:
    engine = api.open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(ValueError, match="holds no events"):
        api.backtest(engine, scorer=RuleScorer())


def test_without_a_promoted_model_the_api_scores_with_the_rule(tmp_path: Path) -> None:
    engine = api.open_store(f"sqlite:///{tmp_path / 's.db'}")
    assert (
        api.default_scorer(engine, models_dir=tmp_path / "models").version == RuleScorer().version
    )
