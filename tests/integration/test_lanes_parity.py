"""In process: one owner, two owners sharing a store, and replay raise the same alerts.

The subprocess parity test runs real workers; this one drives the same engine
(intake, commit, lanes) directly, for 1, 2 and 4 partitions, so that a change
that breaks lane independence fails in seconds.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from churnwatch import store
from churnwatch.alerts.config import load_playbook, load_policy
from churnwatch.engine.pipeline import Pipeline
from churnwatch.events import TOPIC_OF_TYPE, Event, from_payload
from churnwatch.features.state import DAY_S
from churnwatch.models.rule import RuleScorer
from churnwatch.offline.replay import replay_history
from churnwatch.records import ChurnAlert, RawRecord
from churnwatch.sim.simulator import Simulation, records
from churnwatch.topics import partition_of

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _events() -> list[Event]:
    sim = Simulation(80, NOW - timedelta(days=240), NOW, seed=23, churn_share=0.5)
    events = [from_payload(orjson.loads(r.value)) for r in records(sim, bad_share=0, limit=5000)]
    return sorted(events, key=lambda e: (e.epoch_s, e.event_id))


def _pipeline(db: Path | str, partitions: int, cache_customers: int = 100_000) -> Pipeline:
    engine = store.make_engine(db if isinstance(db, str) else f"sqlite:///{db}")
    store.upgrade(engine)
    return Pipeline(
        engine,
        max_future_s=DAY_S,
        allowed_lateness_s=365 * DAY_S,
        clock=lambda: NOW,
        partitions=partitions,
        cache_customers=cache_customers,
    )


def _raw(event: Event, partition: int, offset: int) -> RawRecord:
    value = orjson.dumps(event.model_dump(mode="json"))
    key = event.customer_id.encode()
    return RawRecord(TOPIC_OF_TYPE[event.type], partition, offset, key, value)


def _streamed(owners: list[Pipeline], events: list[Event], partitions: int) -> list[ChurnAlert]:
    """Every event to the owner of its partition, in random batches per partition."""
    by_partition: dict[int, list[Event]] = {}
    for event in events:
        by_partition.setdefault(partition_of(event.customer_id, partitions), []).append(event)
    owner_of = {p: owners[p % len(owners)] for p in range(partitions)}
    for index, owner in enumerate(owners):
        owner.reload([p for p in range(partitions) if p % len(owners) == index])
    rng = random.Random(partitions)
    cursors = dict.fromkeys(by_partition, 0)
    alerts: list[ChurnAlert] = []
    while cursors:
        partition = rng.choice(sorted(cursors))
        start = cursors[partition]
        batch = by_partition[partition][start : start + rng.randint(1, 250)]
        raws = [_raw(e, partition, start + k) for k, e in enumerate(batch)]
        alerts += owner_of[partition].process(raws).alerts
        cursors[partition] = start + len(batch)
        if cursors[partition] >= len(by_partition[partition]):
            del cursors[partition]
    return alerts


def _ids(alerts: list[ChurnAlert]) -> list[tuple[str, str, float, str]]:
    return sorted((a["alert_id"], a["customer_id"], a["score"], a["value_tier"]) for a in alerts)


@pytest.mark.parametrize("partitions", [1, 2, 4])
def test_one_owner_two_owners_and_replay_raise_the_same_alerts(
    tmp_path: Path, partitions: int
) -> None:
    events = _events()
    replayed = replay_history(
        events, RuleScorer(), load_policy(), load_playbook(), partitions=partitions
    )
    assert len(replayed.alerts) > 20  # a history that alerts, or the test proves nothing
    alone = _streamed([_pipeline(tmp_path / "one.db", partitions)], events, partitions)
    shared = tmp_path / "two.db"
    pair = [_pipeline(shared, partitions), _pipeline(shared, partitions)]
    together = _streamed(pair, events, partitions)
    assert _ids(alone) == _ids(together) == _ids(replayed.alerts)


@pytest.mark.parametrize("partitions", [1, 4])
def test_a_cache_of_ten_customers_raises_the_same_alerts(
    tmp_path: Path, db_url: str, partitions: int
) -> None:
    """Eighty customers through a cache of ten: evicted records and wake-ups come from the store.

    One owner on SQLite, two owners sharing the parametrized store (as the
    worker parity test runs them).
    """
    events = _events()
    replayed = replay_history(
        events, RuleScorer(), load_policy(), load_playbook(), partitions=partitions
    )
    alone = _pipeline(tmp_path / "one.db", partitions, cache_customers=10)
    pair = [_pipeline(db_url, partitions, cache_customers=10) for _ in range(2)]
    alerts_alone = _streamed([alone], events, partitions)
    assert _ids(alerts_alone) == _ids(_streamed(pair, events, partitions)) == _ids(replayed.alerts)
    assert len({e.customer_id for e in events}) == 80
    assert len(alone.committer.records) == len(alone.committer.versions) == 10
