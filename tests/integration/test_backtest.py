"""Replay parity with the worker's pipeline, and the backtest's metrics on a known history."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa

from churnwatch.alerts.config import load_playbook, load_policy
from churnwatch.engine.pipeline import Pipeline
from churnwatch.events import TOPIC_OF_TYPE, from_payload
from churnwatch.features.state import DAY_S
from churnwatch.models.rule import RuleScorer
from churnwatch.offline.backtest import Backtest, recommend, with_watch
from churnwatch.offline.replay import replay_history
from churnwatch.records import RawRecord
from churnwatch.sim.simulator import Simulation, records
from tests.builders import at, ev

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _simulated(count: int) -> list:
    sim = Simulation(60, NOW - timedelta(days=240), NOW, seed=11, churn_share=0.5)
    events = [from_payload(orjson.loads(r.value)) for r in records(sim, bad_share=0, limit=count)]
    return sorted(events, key=lambda e: (e.epoch_s, e.event_id))


def _fields(alert: dict) -> tuple:
    return (
        alert["alert_id"],
        alert["customer_id"],
        alert["ts"],
        alert["score"],
        alert["risk_level"],
        alert["value_tier"],
        alert["reason"],
        alert["reason_codes"],
        alert["trigger"],
    )


def test_replay_raises_exactly_the_alerts_of_the_pipeline_however_it_was_batched(
    engine: sa.Engine,
) -> None:
    events = _simulated(4000)
    replayed = replay_history(
        events, RuleScorer(), load_policy(), load_playbook(), partitions=4, chunk=997
    )
    assert len(replayed.alerts) > 20  # a history that alerts, or the test proves nothing

    processor = Pipeline(
        engine,
        max_future_s=DAY_S,
        allowed_lateness_s=365 * DAY_S,
        clock=lambda: NOW,
        partitions=4,
    )
    rng = random.Random(3)
    streamed, i = [], 0
    while i < len(events):  # batches of 1 to 300 events, as a consumer would take them
        size = rng.randint(1, 300)
        batch = [
            RawRecord(
                TOPIC_OF_TYPE[e.type],
                0,
                i + k,
                e.customer_id.encode(),
                orjson.dumps(e.model_dump(mode="json")),
            )
            for k, e in enumerate(events[i : i + size])
        ]
        rng.shuffle(batch)  # order inside a batch must not matter either
        streamed += processor.process(batch).alerts
        i += size
    # each partition's lane raises its alerts in order; lanes interleave by batch
    assert sorted(map(_fields, streamed)) == sorted(map(_fields, replayed.alerts))


def _history() -> list:
    """a buys every 10 days until day 20, complains and stops; b buys every 10 days."""
    events = [ev(day, "purchase", cid="a", amount=50) for day in (0, 10, 20)]
    events += [
        *(
            ev(
                day,
                "complaint_opened",
                cid="a",
                complaint_id=f"k{day}",
                category="price",
                severity=2,
            )
            for day in (30, 31, 32)
        ),
        ev(55, "login", cid="a"),
    ]
    events += [ev(day, "purchase", cid="b", amount=20) for day in range(0, 301, 10)]
    return sorted(events, key=lambda e: (e.epoch_s, e.event_id))


def test_backtest_metrics_on_a_known_history() -> None:
    policy = load_policy()
    replayed = replay_history(_history(), RuleScorer(), policy, load_playbook(), partitions=1)
    first_a = min(a["ts"] for a in replayed.alerts if a["customer_id"] == "a")
    test = Backtest(replayed, start=at(0), end=at(300), horizon_days=90)
    # a's one churn: 90 days after its last purchase (day 20), worth its year's spend
    assert [(c.last_purchase, c.at, c.value) for c in test.churns] == [(at(20), at(110), 150.0)]
    fired = test.simulate(policy)
    assert [(f.at, f.level) for f in fired] == [
        (datetime.fromisoformat(a["ts"]).timestamp(), a["risk_level"]) for a in replayed.alerts
    ]
    metrics = test.measure(fired)
    lead = (at(110) - datetime.fromisoformat(first_a).timestamp()) / DAY_S
    assert (metrics.churns, metrics.caught, metrics.recall) == (1, 1, 1.0)
    assert metrics.value_caught == metrics.value_at_risk == 150.0
    assert metrics.median_lead_days == pytest.approx(lead)
    # b always bought again within 90 days: its alerts, if any, were wrong
    wrong = [f for f in fired if test.trace.customers[f.customer] == "b" and f.at <= at(210)]
    right = [f for f in fired if test.trace.customers[f.customer] == "a"]
    assert metrics.judged == len(wrong) + len(right)
    assert metrics.precision == pytest.approx(len(right) / metrics.judged)
    assert metrics.alerts_per_week == pytest.approx(len(fired) / 300 * 7)


def test_recommend_catches_most_value_within_capacity() -> None:
    policy = load_policy()
    replayed = replay_history(_history(), RuleScorer(), policy, load_playbook(), partitions=1)
    test = Backtest(replayed, start=at(0), end=at(300), horizon_days=90)
    sweep = test.sweep(policy)
    lots = recommend(sweep, capacity_per_day=100)
    # with room for every alert, each tier takes a threshold whose alerts catch a
    best = sum(max(m.value_caught for _, m in rows) for rows in sweep.values())
    assert lots.fits and lots.value_caught == best >= 150.0
    none = recommend(sweep, capacity_per_day=1e-6)
    assert not none.fits
    assert none.alerts_per_day == min(
        sum(m.alerts_per_day for _, m in combo) for combo in itertools.product(*sweep.values())
    )
    moved = with_watch(policy, "general", 0.3)
    assert moved.thresholds["general"].model_dump() == {"watch": 0.3, "high": 0.5, "critical": 0.7}
