"""``/health`` of a real worker: 503 while its store is cut off, 200 again after."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from churnwatch import store
from churnwatch.features.state import KEEP_DAYS
from churnwatch.settings import Settings
from churnwatch.sim.broker import EmbeddedBroker, free_port
from churnwatch.sim.demo import worker_process
from churnwatch.sim.producing import produce
from churnwatch.sim.simulator import Simulation, customers_for, records
from churnwatch.topics import ensure_topics
from tests.kafka_helpers import TEST_TOKEN, wait_for
from tests.parity import assert_stored_exactly_once
from tests.reference import REFERENCE

STALL_S = 3.0


def _get(port: int) -> tuple[int, dict] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return r.status, orjson.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())
    except OSError:
        return None


@pytest.mark.kafka
@pytest.mark.postgres
def test_health_turns_503_while_the_store_is_cut_off_and_200_after(
    kafka_broker: EmbeddedBroker, pg_url: str, pg_proxy, tmp_path: Path
) -> None:
    proxy, via_proxy = pg_proxy
    now = REFERENCE
    sim = Simulation(customers_for(3000, 365), now - timedelta(days=365), now, seed=5)
    recs = list(records(sim, limit=3000, bad_share=0.0))
    valid = [orjson.loads(r.value) for r in recs]
    ensure_topics(kafka_broker.bootstrap, 4)
    engine = store.make_engine(pg_url)
    store.upgrade(engine)
    port = free_port("127.0.0.1")
    settings = Settings(
        broker=kafka_broker.bootstrap,
        db_url=via_proxy,
        partitions=4,
        web_port=port,
        web_token=TEST_TOKEN,
        allowed_lateness_s=KEEP_DAYS * 86400.0,
        health_stall_s=STALL_S,
    )
    log = tmp_path / "worker.log"

    def stored() -> int:
        return store.count_rows(engine, store.events)

    def status() -> int | None:
        got = _get(port)
        return None if got is None else got[0]

    half = len(recs) // 2
    with worker_process(settings, kafka_broker.bootstrap, log) as worker:
        produce(recs[:half], kafka_broker.bootstrap)
        wait_for(lambda: stored() >= half, "the first half", log)
        wait_for(lambda: status() == 200, "a healthy worker", log)
        proxy.cut()
        produce(recs[half:], kafka_broker.bootstrap)
        wait_for(lambda: status() == 503, "/health to say 503", log)
        _, body = _get(port)  # type: ignore[misc]
        assert body["healthy"] is False and body["agent_running"] is True
        assert stored() < len(valid)
        proxy.restore()
        wait_for(lambda: stored() >= len(valid), "every event", log)
        wait_for(lambda: status() == 200, "healthy again", log)
        _, body = _get(port)  # type: ignore[misc]
        assert body["failed_steps_in_row"] == 0 and body["problems"] == []
        assert worker.poll() is None
    assert_stored_exactly_once(engine, valid)
