"""Stopping: the worker within its timeout when its broker is gone, the demo with its children.

Real processes throughout; the bounds are liveness bounds on them (Faust
alone takes about a minute to stop without its broker).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from churnwatch import store
from churnwatch.features.state import KEEP_DAYS
from churnwatch.settings import Settings
from churnwatch.sim.broker import EmbeddedBroker, free_port
from churnwatch.sim.demo import worker_process
from churnwatch.sim.producing import produce
from churnwatch.sim.simulator import Simulation, customers_for, records
from churnwatch.topics import ensure_topics
from tests.kafka_helpers import TEST_TOKEN, partitions_of, wait_for
from tests.reference import REFERENCE

pytestmark = pytest.mark.kafka
SHUTDOWN_TIMEOUT_S = 3.0
#: well below the minute Faust takes by itself, well above the timeout
STOPPED_WITHIN_S = 30.0


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie has exited; only its parent's wait is missing
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z")


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_sigterm_stops_the_worker_within_its_timeout_after_its_broker_has_gone(
    tmp_path: Path,
) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log")
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    now = REFERENCE
    sim = Simulation(customers_for(500, 365), now - timedelta(days=365), now, seed=3)
    recs = list(records(sim, limit=500, bad_share=0.0))
    log = tmp_path / "worker.log"
    with broker:
        ensure_topics(broker.bootstrap, 2)
        settings = Settings(
            broker=broker.bootstrap,
            db_url=db_url,
            partitions=2,
            web_port=0,
            allowed_lateness_s=KEEP_DAYS * 86400.0,
            shutdown_timeout_s=SHUTDOWN_TIMEOUT_S,
        )
        with worker_process(settings, broker.bootstrap, log) as worker:
            produce(recs, broker.bootstrap)
            wait_for(lambda: store.count_rows(engine, store.events) == len(recs), "events", log)
            broker.stop()
            time.sleep(1)  # let the worker notice
            started = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
            took = time.monotonic() - started
    assert took < STOPPED_WITHIN_S, log.read_text()[-3000:]
    assert worker.returncode in (0, 1)
    assert store.count_rows(engine, store.events) == len(recs)


def _start_demo(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CHURNWATCH_WEB_PORT": str(port),
        "CHURNWATCH_PARTITIONS": "2",
        "CHURNWATCH_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
        # the token the helpers ask with (the demo makes its own when none is set)
        "CHURNWATCH_WEB_TOKEN": TEST_TOKEN,
    }
    env.pop("CHURNWATCH_DB_URL", None)
    env.pop("CHURNWATCH_BROKER", None)
    log = (tmp_path / "demo.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "churnwatch", "demo", "--rate", "200"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=log,
    )


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_the_demo_stopped_by_a_signal_takes_its_worker_and_broker_along(
    tmp_path: Path, how: signal.Signals
) -> None:
    port = free_port("127.0.0.1")
    demo = _start_demo(tmp_path, port)
    log = tmp_path / "churnwatch-data" / "worker.log"
    try:
        wait_for(lambda: partitions_of(port) != [], "the demo's worker to serve", log)
        children = _children(demo.pid)
        assert len(children) == 3  # the broker, the worker and the example CRM
        demo.send_signal(how)
        demo.wait(timeout=60)
        deadline = time.monotonic() + STOPPED_WITHIN_S
        while not all(_gone(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(_gone(c) for c in children), (tmp_path / "demo.log").read_text()[-3000:]
        assert _port_free(port)
        if how == signal.SIGTERM:
            assert demo.returncode == 0
            assert b"stopped" in (tmp_path / "demo.log").read_bytes()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
