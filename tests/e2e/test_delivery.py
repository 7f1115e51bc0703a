"""The outbox proves delivery: the broker cut off between the commit and the sends.

Every stored alert, task and change ends up on its topic, and at no time is a
record marked sent that the broker did not confirm.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.alerts.config import HOLDOUT
from churnwatch.features.state import KEEP_DAYS
from churnwatch.settings import Settings
from churnwatch.sim.demo import worker_process
from churnwatch.sim.producing import produce
from churnwatch.topics import CHURN_ALERTS, CUSTOMER_CHANGES, WINBACK_TASKS, ensure_topics
from tests.e2e.test_faults import PARTITIONS, _simulated
from tests.fault_proxy import broker_behind_proxy
from tests.kafka_helpers import read_topic, values, wait_for

pytestmark = pytest.mark.kafka
SEND_TIMEOUT_S = 3.0


def _ids(engine: sa.Engine, table: sa.Table, key: str, *, sent: bool | None = None) -> set[str]:
    query = sa.select(table.c[key])
    if table is store.winback_tasks:  # a held-out case's task is never sent
        query = query.where(table.c.action != HOLDOUT)
    if sent is not None:
        query = query.where(
            table.c.published_at.is_not(None) if sent else table.c.published_at.is_(None)
        )
    with engine.connect() as conn:
        return set(conn.execute(query).scalars())


def test_sends_that_failed_are_not_marked_and_go_out_later(tmp_path: Path) -> None:
    recs, _ = _simulated(6000, seed=53)
    broker, proxy = broker_behind_proxy(tmp_path / "broker.log")
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    log = tmp_path / "worker.log"
    settings = Settings(
        broker=broker.bootstrap,
        db_url=db_url,
        partitions=PARTITIONS,
        web_port=0,
        allowed_lateness_s=KEEP_DAYS * 86400.0,
        send_timeout_s=SEND_TIMEOUT_S,
    )
    tables = (
        (store.alerts, "alert_id", CHURN_ALERTS),
        (store.winback_tasks, "task_id", WINBACK_TASKS),
        (store.customer_changes, "change_id", CUSTOMER_CHANGES),
    )
    with broker:
        ensure_topics(broker.bootstrap, PARTITIONS)
        with worker_process(settings, broker.bootstrap, log) as worker:
            produce(recs, broker.bootstrap)
            changes = store.customer_changes
            wait_for(lambda: bool(_ids(engine, changes, "change_id")), "a first change", log)
            # the worker folds what it has fetched, commits, and its sends fail
            proxy.cut()
            time.sleep(SEND_TIMEOUT_S * 3)
            assert worker.poll() is None, "the worker died without its broker"
            unsent = _ids(engine, changes, "change_id", sent=False)
            assert unsent, "no change was committed while the broker was away"
            assert "was not delivered" in log.read_text()
            marked_in_outage = _ids(engine, changes, "change_id", sent=True)
            proxy.restore()

            def all_marked() -> bool:
                return all(not _ids(engine, t, key, sent=False) for t, key, _ in tables)

            wait_for(all_marked, "every record sent and marked after the outage", log, 180)
            assert worker.poll() is None
        on_topic = {
            topic: {v[key] for v in values(read_topic(broker.bootstrap, topic, None, quiet_s=2))}
            for _, key, topic in tables
        }
    proxy.close()
    for table, key, topic in tables:
        stored = _ids(engine, table, key)
        assert stored and stored <= on_topic[topic], topic  # nothing stored is missing
    # what was marked during the outage had been confirmed before it
    assert marked_in_outage <= on_topic[CUSTOMER_CHANGES]
    assert unsent <= on_topic[CUSTOMER_CHANGES]
