"""Two workers sharing the partitions, one leaving mid-stream: nothing lost or doubled.

Real worker processes on the embedded broker and one PostgreSQL store, as in
a deployment (a SQLite file is not shared between machines).
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.alerts.config import HOLDOUT
from churnwatch.features.state import KEEP_DAYS
from churnwatch.settings import Settings
from churnwatch.sim.broker import EmbeddedBroker, free_port
from churnwatch.sim.demo import worker_process
from churnwatch.sim.producing import produce
from churnwatch.sim.simulator import Simulation, customers_for, records
from churnwatch.topics import CHURN_ALERTS, DEAD_LETTERS, WINBACK_TASKS, ensure_topics
from tests.kafka_helpers import TEST_TOKEN, partitions_of, read_topic, values, wait_for
from tests.parity import assert_stored_exactly_once
from tests.reference import REFERENCE

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
PARTITIONS = 4
EVENTS = 12_000


def test_two_workers_share_the_partitions_and_one_leaving_loses_nothing(
    kafka_broker: EmbeddedBroker, pg_url: str, tmp_path: Path
) -> None:
    now = REFERENCE
    sim = Simulation(customers_for(EVENTS, 365), now - timedelta(days=365), now, seed=31)
    recs = list(records(sim, limit=EVENTS, bad_share=0.0))
    valid = [orjson.loads(r.value) for r in recs]
    ensure_topics(kafka_broker.bootstrap, PARTITIONS)
    engine = store.make_engine(pg_url)
    store.upgrade(engine)
    ports = free_port(), free_port()

    def settings(port: int) -> Settings:
        return Settings(
            broker=kafka_broker.bootstrap,
            db_url=pg_url,
            partitions=PARTITIONS,
            web_port=port,
            web_token=TEST_TOKEN,
            allowed_lateness_s=KEEP_DAYS * 86400.0,
        )

    def stored() -> int:
        return store.count_rows(engine, store.events)

    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    half = len(recs) // 2
    with worker_process(settings(ports[0]), kafka_broker.bootstrap, log_a):
        with worker_process(settings(ports[1]), kafka_broker.bootstrap, log_b) as second:
            wait_for(
                lambda: (
                    sorted(partitions_of(ports[0]) + partitions_of(ports[1])) == [0, 1, 2, 3]
                    and bool(partitions_of(ports[0]))
                    and bool(partitions_of(ports[1]))
                ),
                "both workers holding partitions",
                log_b,
            )
            produce(recs[:half], kafka_broker.bootstrap)
            wait_for(lambda: stored() >= half, "the first half", log_b)
            # the second half flows while the second worker leaves
            # (about 6 s of it: the leave, which may take seconds, starts mid-stream)
            rest = threading.Thread(
                target=produce, args=(recs[half:], kafka_broker.bootstrap), kwargs={"rate": 1000}
            )
            rest.start()
            wait_for(lambda: stored() >= half + 1000, "the second half flowing", log_b)
            assert second.poll() is None
            # the worker leaves while records are still being produced and stored
            assert rest.is_alive() and stored() < len(valid), "the stream ended before the leave"
        rest.join()
        wait_for(lambda: partitions_of(ports[0]) == [0, 1, 2, 3], "the rebalance", log_a)
        wait_for(lambda: stored() >= len(valid), "every event", log_a)

    assert_stored_exactly_once(engine, valid)
    with engine.connect() as conn:
        alert_ids = conn.execute(sa.select(store.alerts.c.alert_id)).scalars().all()
    # nothing was taken for a duplicate from another worker
    assert read_topic(kafka_broker.bootstrap, DEAD_LETTERS, None) == []
    # every stored alert reaches the topic: what the leaving worker stored but
    # had not sent, the other sends on taking over (the outbox); at least once
    assert alert_ids
    published = [
        a["alert_id"] for a in values(read_topic(kafka_broker.bootstrap, CHURN_ALERTS, None))
    ]
    assert set(published) == set(alert_ids)
    tasks = [t["task_id"] for t in values(read_topic(kafka_broker.bootstrap, WINBACK_TASKS, None))]
    with engine.connect() as conn:
        contacted = store.winback_tasks.c.action != HOLDOUT  # held-out tasks are not sent
        query = sa.select(store.winback_tasks.c.task_id).where(contacted)
        task_ids = conn.execute(query).scalars().all()
    assert set(tasks) == set(task_ids)
    engine.dispose()
