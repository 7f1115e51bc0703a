"""The embedded tansu broker: starts, serves Kafka, stops, and dies with its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from kafka import KafkaAdminClient

from churnwatch.sim.broker import BrokerError, EmbeddedBroker, free_port, wait_for_kafka
from churnwatch.topics import ALL_TOPICS, TopicLayoutError, ensure_topics


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie counts as gone
        return stat.read().split()[2] != "Z"


def test_broker_serves_metadata_and_topics(kafka_broker: EmbeddedBroker) -> None:
    ensure_topics(kafka_broker.bootstrap, 3)
    ensure_topics(kafka_broker.bootstrap, 3)  # idempotent
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        assert set(ALL_TOPICS) <= set(admin.list_topics())
        info = admin.describe_topics(["purchases"])[0]
        assert len(info["partitions"]) == 3
    finally:
        admin.close()
    with pytest.raises(TopicLayoutError, match="purchases has 3 partitions"):
        ensure_topics(kafka_broker.bootstrap, 4)


def test_stop_frees_the_port() -> None:
    broker = EmbeddedBroker().start()
    port = broker.port
    broker.stop()
    with pytest.raises(BrokerError):
        wait_for_kafka(f"127.0.0.1:{port}", timeout_s=1)


def test_a_taken_port_is_reported() -> None:
    with EmbeddedBroker() as first, pytest.raises(BrokerError, match="is in use"):
        EmbeddedBroker(port=first.port).start(timeout_s=10)


def test_broker_dies_with_its_parent(tmp_path) -> None:
    port = free_port()
    script = (
        "import sys, time\n"
        "from churnwatch.sim.broker import EmbeddedBroker\n"
        f"b = EmbeddedBroker(port={port}).start()\n"
        "print(b._proc.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    broker_pid = int(parent.stdout.readline())
    assert _alive(broker_pid)
    parent.send_signal(signal.SIGKILL)  # no atexit, no cleanup: only PDEATHSIG can help
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(broker_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(broker_pid)
