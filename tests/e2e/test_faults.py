"""Faults around the real worker: the database or the broker going away, junk on every topic.

Each ends with every valid event stored exactly once and every customer's
state equal to the plain fold: nothing lost, nothing counted twice.
"""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnwatch import store
from churnwatch.events import INPUT_TOPICS
from churnwatch.features.state import KEEP_DAYS
from churnwatch.settings import Settings
from churnwatch.sim.broker import EmbeddedBroker
from churnwatch.sim.demo import TopicCounter, worker_process
from churnwatch.sim.producing import produce
from churnwatch.sim.simulator import SimRecord, Simulation, customers_for, records
from churnwatch.topics import DEAD_LETTERS, ensure_topics
from tests.fault_proxy import broker_behind_proxy
from tests.kafka_helpers import read_topic, values, wait_for
from tests.parity import assert_stored_exactly_once
from tests.reference import REFERENCE

pytestmark = pytest.mark.kafka
PARTITIONS = 4
OUTAGE_S = 6.0


def _simulated(count: int, seed: int) -> tuple[list[SimRecord], list[dict]]:
    now = REFERENCE
    sim = Simulation(customers_for(count, 365), now - timedelta(days=365), now, seed=seed)
    recs = list(records(sim, limit=count, bad_share=0.0))
    return recs, [orjson.loads(r.value) for r in recs]


def _settings(bootstrap: str, db_url: str) -> Settings:
    return Settings(
        broker=bootstrap,
        db_url=db_url,
        partitions=PARTITIONS,
        web_port=0,
        allowed_lateness_s=KEEP_DAYS * 86400.0,
    )


@pytest.mark.postgres
def test_postgresql_unreachable_for_a_while(
    kafka_broker: EmbeddedBroker, pg_url: str, pg_proxy, tmp_path: Path
) -> None:
    proxy, via_proxy = pg_proxy
    recs, valid = _simulated(9000, seed=41)
    ensure_topics(kafka_broker.bootstrap, PARTITIONS)
    engine = store.make_engine(pg_url)  # the test's own view, not through the proxy
    store.upgrade(engine)
    log = tmp_path / "worker.log"

    def stored() -> int:
        return store.count_rows(engine, store.events)

    third = len(recs) // 3
    with worker_process(
        _settings(kafka_broker.bootstrap, via_proxy), kafka_broker.bootstrap, log
    ) as worker:
        produce(recs[:third], kafka_broker.bootstrap)
        wait_for(lambda: stored() >= third, "the first third", log)
        proxy.cut()
        produce(recs[third : 2 * third], kafka_broker.bootstrap)
        wait_for(lambda: "store step failed; retrying" in log.read_text(), "a failed step", log)
        during = stored()
        time.sleep(2)  # while the database is away, nothing more is stored
        assert stored() == during and worker.poll() is None
        proxy.restore()
        produce(recs[2 * third :], kafka_broker.bootstrap)
        wait_for(lambda: stored() >= len(valid), "every event", log)
        assert worker.poll() is None
    assert during < len(valid)
    assert_stored_exactly_once(engine, valid)
    assert read_topic(kafka_broker.bootstrap, DEAD_LETTERS, None) == []


def test_broker_connection_dropped_and_restored(tmp_path: Path) -> None:
    recs, valid = _simulated(9000, seed=43)
    broker, proxy = broker_behind_proxy(tmp_path / "broker.log")
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    log = tmp_path / "worker.log"

    def stored() -> int:
        return store.count_rows(engine, store.events)

    half = len(recs) // 2
    with broker:
        ensure_topics(broker.bootstrap, PARTITIONS)
        with worker_process(_settings(broker.bootstrap, db_url), broker.bootstrap, log) as worker:
            produce(recs[:half], broker.bootstrap)
            wait_for(lambda: stored() >= half, "the first half", log)
            proxy.cut()
            time.sleep(OUTAGE_S)
            assert worker.poll() is None, "the worker died without its broker"
            assert "KafkaConnectionError" in log.read_text()  # it did lose the broker
            proxy.restore()
            produce(recs[half:], broker.bootstrap)
            wait_for(lambda: stored() >= len(valid), "every event after the outage", log, 180)
            assert worker.poll() is None
        dead = read_topic(broker.bootstrap, DEAD_LETTERS, None)
    proxy.close()
    assert_stored_exactly_once(engine, valid)
    assert dead == []


_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@st.composite
def _junk(draw: st.DrawFn, valid: list[dict]) -> SimRecord:
    """Bytes, any JSON, or a valid event with one field replaced by any JSON."""
    topic = draw(st.sampled_from(INPUT_TOPICS))
    kind = draw(st.sampled_from(["bytes", "json", "mutant"]))
    if kind == "bytes":
        value = draw(st.binary(max_size=64))
    elif kind == "json":
        value = orjson.dumps(draw(_json))
    else:
        event = dict(draw(st.sampled_from(valid)))
        event[draw(st.sampled_from(sorted(event)))] = draw(_json)
        event["event_id"] = f"junk-{draw(st.uuids())}"  # never an id a valid record has
        value = orjson.dumps(event)
    key = draw(st.none() | st.binary(max_size=8))
    return SimRecord(topic, key, value, "junk")


_VALID = _simulated(4000, seed=47)


@settings(
    max_examples=1,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(junk=st.lists(_junk(_VALID[1]), min_size=400, max_size=400))
def test_junk_on_every_input_topic(
    kafka_broker: EmbeddedBroker, tmp_path: Path, junk: list[SimRecord]
) -> None:
    recs, valid = _VALID
    mixed = [*recs[: len(recs) // 2], *junk, *recs[len(recs) // 2 :]]
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    ensure_topics(kafka_broker.bootstrap, PARTITIONS)
    log = tmp_path / "worker.log"
    dead = TopicCounter(kafka_broker.bootstrap, DEAD_LETTERS)
    dead.start()
    settings_ = _settings(kafka_broker.bootstrap, db_url)
    try:
        with worker_process(settings_, kafka_broker.bootstrap, log) as worker:
            produce(mixed, kafka_broker.bootstrap)
            wait_for(
                lambda: store.count_rows(engine, store.events) + dead.count >= len(mixed),
                "every record stored or dead-lettered",
                log,
            )
            assert worker.poll() is None, "the worker stopped on junk"
    finally:
        dead.stop()
    letters = values(read_topic(kafka_broker.bootstrap, DEAD_LETTERS, dead.count))
    with engine.connect() as conn:
        ids = set(conn.execute(sa.select(store.events.c.event_id)).scalars())
    valid_ids = {e["event_id"] for e in valid}
    assert valid_ids <= ids
    # a mutant that is still a valid event is stored like any other; the rest are letters
    stored_junk = ids - valid_ids
    assert all(i.startswith("junk-") for i in stored_junk)
    assert len(stored_junk) + len(letters) == len(junk)
    assert all(letter["error"] for letter in letters)
    raws = {r.value for r in junk}
    for letter in letters:
        base64_raw = letter.get("raw_encoding") == "base64"
        raw = base64.b64decode(letter["raw"]) if base64_raw else letter["raw"].encode()
        assert raw in raws
