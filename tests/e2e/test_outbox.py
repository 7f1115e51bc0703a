"""The outbox: alerts and tasks stored but never sent reach their topics on a take-over."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.alerts.config import load_playbook
from churnwatch.alerts.policy import build_alert
from churnwatch.engine.commit import _alert_row
from churnwatch.engine.customer import CustomerRecord
from churnwatch.features.state import CustomerState
from churnwatch.models.scoring import Score
from churnwatch.settings import Settings
from churnwatch.sim.broker import EmbeddedBroker
from churnwatch.sim.demo import worker_process
from churnwatch.streams import outbox
from churnwatch.topics import CHURN_ALERTS, WINBACK_TASKS, ensure_topics, partition_of
from churnwatch.winback.tasks import build_task
from tests.kafka_helpers import read_topic, values, wait_for

PARTITIONS = 4
AT = datetime(2026, 6, 1, 8, 30, tzinfo=UTC)


def _customer_in(partition: int) -> str:
    return next(f"c{i}" for i in range(1000) if partition_of(f"c{i}", PARTITIONS) == partition)


def _raise(conn: sa.Connection, customer_id: str, trigger: str) -> tuple[dict, dict]:
    """Store an alert and its task as a batch does; return the records the worker sends."""
    score = Score(0.81, "competitor", [{"indicator": "days_since_purchase", "value": 40.0}], "r")
    case = f"case-{customer_id}-{trigger}"
    alert = build_alert(customer_id, trigger, AT, "high", score, "potential", "at_risk", case, {})
    task = build_task(alert, load_playbook())
    store.add_alerts(conn, [_alert_row(alert)])
    store.add_tasks(conn, [task])
    store.save_states(
        conn,
        [
            {
                "customer_id": customer_id,
                "partition": partition_of(customer_id, PARTITIONS),
                "state": CustomerRecord(CustomerState(customer_id)).row(),
                "lifecycle_stage": "at_risk",
                "value_tier": "potential",
            }
        ],
    )
    return alert, task


def test_pending_is_what_was_not_sent_in_the_owned_partitions(engine: sa.Engine) -> None:
    ours, theirs, sent = _customer_in(0), _customer_in(1), _customer_in(0) + "x"
    with engine.begin() as conn:
        alert, task = _raise(conn, ours, "e1")
        _raise(conn, theirs, "e2")
        done_alert, done_task = _raise(conn, sent, "e3")
    outbox.mark_sent(engine, [done_alert["alert_id"]], [done_task["task_id"]])
    owned = [p for p in range(PARTITIONS) if p != partition_of(theirs, PARTITIONS)]
    unsent = outbox.pending(engine, owned)
    # exactly the records the worker would have sent, field for field
    assert unsent.alerts == [alert] and unsent.tasks == [task]
    outbox.mark_sent(engine, [alert["alert_id"]], [task["task_id"]])
    assert outbox.pending(engine, owned) == outbox.Pending()
    assert outbox.pending(engine, range(PARTITIONS)).alerts[0]["customer_id"] == theirs


@pytest.mark.kafka
def test_a_worker_taking_over_sends_what_its_predecessor_stored(
    kafka_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    with engine.begin() as conn:
        alert, task = _raise(conn, _customer_in(2), "e1")
        sent_alert, sent_task = _raise(conn, _customer_in(3), "e2")
    outbox.mark_sent(engine, [sent_alert["alert_id"]], [sent_task["task_id"]])
    ensure_topics(kafka_broker.bootstrap, PARTITIONS)
    settings = Settings(
        broker=kafka_broker.bootstrap, db_url=db_url, partitions=PARTITIONS, web_port=0
    )
    log = tmp_path / "worker.log"

    def marked() -> bool:
        with engine.connect() as conn:
            query = sa.select(sa.func.count()).where(store.alerts.c.published_at.is_(None))
            return conn.execute(query).scalar_one() == 0

    with worker_process(settings, kafka_broker.bootstrap, log):
        wait_for(marked, "the unsent alert sent and marked", log)
    assert values(read_topic(kafka_broker.bootstrap, CHURN_ALERTS, 1)) == [alert]
    assert values(read_topic(kafka_broker.bootstrap, WINBACK_TASKS, 1)) == [task]
    with engine.connect() as conn:
        unsent_tasks = conn.execute(
            sa.select(sa.func.count()).where(store.winback_tasks.c.published_at.is_(None))
        ).scalar_one()
    assert unsent_tasks == 0
