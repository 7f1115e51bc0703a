"""One worker, two workers and replay raise exactly the same alerts.

Real worker processes on the embedded broker: group ``solo`` (one worker, a
SQLite store) and group ``pair`` (two workers sharing the partitions, one
PostgreSQL store) consume the same topics; then replay runs over the store.
The input topics are fetched in whatever interleaving the broker gives, so
the alerts agree only because each partition is counted in event-time order
(:mod:`churnwatch.streams.ordering`) in its own lane (:mod:`churnwatch.engine.lanes`).

That order is exact for records that are in the broker when their partition is
fetched. A record still on its way while the other topics of its partition have
been read up to their end is counted when it arrives, after later ones: a live
stream has no way to know it is coming (``docs/architecture.md``, "Event-time
order"). So the workers are paused while the history is produced, and then
count it as it lies in the broker.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.alerts.config import HOLDOUT, load_playbook, load_policy
from churnwatch.events import from_payload
from churnwatch.features.state import KEEP_DAYS
from churnwatch.models.rule import RuleScorer
from churnwatch.offline.replay import Replayed, replay_history
from churnwatch.settings import Settings
from churnwatch.sim.broker import EmbeddedBroker, free_port
from churnwatch.sim.demo import worker_process
from churnwatch.sim.producing import produce
from churnwatch.sim.simulator import Simulation, customers_for, records
from churnwatch.topics import ensure_topics, partition_of
from tests.kafka_helpers import TEST_TOKEN, partitions_of, wait_for
from tests.reference import REFERENCE

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
PARTITIONS = 4
EVENTS = 8_000
#: longer than any fetch waits at the broker (Faust's consumer asks for up to 1.5 s)
FETCH_WAIT_S = 2.0
FIELDS = ("alert_id", "customer_id", "score", "risk_level", "value_tier", "reason", "trigger")


def _canonical(codes: list[dict]) -> bytes:
    # PostgreSQL's JSONB keeps keys in its own order
    return orjson.dumps(codes, option=orjson.OPT_SORT_KEYS)


def _alerts(engine: sa.Engine) -> list[tuple]:
    columns = [store.alerts.c[name] for name in FIELDS]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*columns, store.alerts.c.ts, store.alerts.c.reason_codes))
        return sorted(
            (*row[: len(FIELDS)], store.aware(row.ts).isoformat(), _canonical(row.reason_codes))
            for row in rows
        )


def _counted_late(engine: sa.Engine) -> int:
    """Events stored (so counted) after a later event of their lane: 0 when in order."""
    e = store.events
    newest: dict[int, tuple[float, str]] = {}
    late = 0
    with engine.connect() as conn:
        rows = conn.execute(sa.select(e.c.event_id, e.c.customer_id, e.c.ts).order_by(e.c.seq))
        for event_id, customer_id, ts in rows:
            lane, key = (
                partition_of(customer_id, PARTITIONS),
                (store.aware(ts).timestamp(), event_id),
            )
            if key < newest.get(lane, key):
                late += 1
            else:
                newest[lane] = key
    return late


def _replay(engine: sa.Engine) -> Replayed:
    with engine.connect() as conn:
        events = [from_payload(p) for p in store.read_events(conn)]
    return replay_history(
        events, RuleScorer(), load_policy(), load_playbook(), partitions=PARTITIONS
    )


def _tasks(engine: sa.Engine) -> list[tuple[str, str, str]]:
    t = store.winback_tasks
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(t.c.task_id, t.c.case_id, t.c.action)).tuples())


def _replayed(engine: sa.Engine) -> list[tuple]:
    replayed = _replay(engine)
    return sorted(
        (
            *(a[name] for name in FIELDS),
            datetime.fromisoformat(a["ts"]).isoformat(),
            _canonical(a["reason_codes"]),
        )
        for a in replayed.alerts
    )


# a cache of ten customers reads nearly every record and wake-up from the store
@pytest.mark.parametrize("cache_customers", [Settings.cache_customers, 10])
def test_one_worker_two_workers_and_replay_raise_the_same_alerts(
    kafka_broker: EmbeddedBroker, pg_url: str, tmp_path: Path, cache_customers: int
) -> None:
    now = REFERENCE
    sim = Simulation(customers_for(EVENTS, 365), now - timedelta(days=365), now, seed=41)
    recs = list(records(sim, limit=EVENTS, bad_share=0.0))
    ensure_topics(kafka_broker.bootstrap, PARTITIONS)
    solo_url, pair_url = f"sqlite:///{tmp_path / 'solo.db'}", pg_url
    engines = {url: store.make_engine(url) for url in (solo_url, pair_url)}
    for engine in engines.values():
        store.upgrade(engine)
    ports = free_port(), free_port(), free_port()

    def settings(app_id: str, db_url: str, port: int) -> Settings:
        return Settings(
            broker=kafka_broker.bootstrap,
            db_url=db_url,
            app_id=app_id,
            partitions=PARTITIONS,
            web_port=port,
            web_token=TEST_TOKEN,
            allowed_lateness_s=KEEP_DAYS * 86400.0,
            cache_customers=cache_customers,
            # outlasts the pause while the history is produced, so no rebalance follows it
            session_timeout_s=10.0,
        )

    def stored(url: str) -> int:
        return store.count_rows(engines[url], store.events)

    log = tmp_path / "workers.log"
    procs = []
    with ExitStack() as workers:
        for app_id, url, port in (
            ("solo", solo_url, ports[0]),
            ("pair", pair_url, ports[1]),
            ("pair", pair_url, ports[2]),
        ):
            procs.append(
                workers.enter_context(
                    worker_process(settings(app_id, url, port), kafka_broker.bootstrap, log)
                )
            )
        # the pair settles its split before any event flows, so no rebalance
        # falls mid-stream (one that does lets held records go out of order)
        wait_for(
            lambda: (
                partitions_of(ports[0]) == [0, 1, 2, 3]
                and sorted(partitions_of(ports[1]) + partitions_of(ports[2])) == [0, 1, 2, 3]
                and bool(partitions_of(ports[1]))
                and bool(partitions_of(ports[2]))
            ),
            "the solo worker and the pair holding every partition",
            log,
        )
        # Paused, the workers fetch nothing while the history goes in; the fetches
        # already waiting at the broker come back empty before it starts.
        for proc in procs:
            os.kill(proc.pid, signal.SIGSTOP)
        try:
            time.sleep(FETCH_WAIT_S)
            produce(recs, kafka_broker.bootstrap)
        finally:
            for proc in procs:
                os.kill(proc.pid, signal.SIGCONT)
        # an event is stored when it is counted, in the transaction that stores
        # its alerts: once every event is in, held ones included, the alerts are final
        for url in engines:
            wait_for(lambda url=url: stored(url) == len(recs), f"every event in {url}", log)

    # the premise: every lane counted its events in event-time order, as replay does
    assert {url: _counted_late(engine) for url, engine in engines.items()} == dict.fromkeys(
        engines, 0
    )
    solo, pair = _alerts(engines[solo_url]), _alerts(engines[pair_url])
    assert len(solo) > 30  # a history that alerts, or the test proves nothing
    assert len({a[4] for a in solo}) > 1  # ranked tiers, not all one
    replayed = _replayed(engines[solo_url])
    assert _replayed(engines[pair_url]) == replayed  # the same events were stored
    assert sorted(set(solo) ^ set(replayed)) == []
    assert sorted(set(pair) ^ set(replayed)) == []
    # each case in the control group or given an action alike, by the workers and replay
    tasks = sorted(
        (t["task_id"], t["case_id"], t["action"]) for t in _replay(engines[solo_url]).tasks
    )
    assert _tasks(engines[solo_url]) == _tasks(engines[pair_url]) == tasks
    assert 0 < sum(action == HOLDOUT for _, _, action in tasks) < len(tasks)
    for engine in engines.values():
        engine.dispose()
