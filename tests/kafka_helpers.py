"""Helpers for tests that run the real worker against the embedded broker."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import orjson
from kafka import KafkaConsumer, TopicPartition


def read_topic(
    bootstrap: str, topic: str, expected: int | None, timeout_s: float = 60, quiet_s: float = 0.5
) -> list:
    """Read ``topic`` from the beginning (all partitions).

    Reads until ``expected`` records have come (then polls ``quiet_s`` longer, as
    any extra record would be a defect too), or with ``expected=None`` until
    nothing new arrives for ``quiet_s``. Does not trust the broker's end offsets.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list = []
        deadline = time.monotonic() + timeout_s
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            if expected is not None and len(out) >= expected:
                break
            if expected is None and time.monotonic() - last_new > quiet_s:
                break
            for batch in consumer.poll(timeout_ms=200).values():
                out.extend(batch)
                last_new = time.monotonic()
        quiet_until = time.monotonic() + quiet_s
        while time.monotonic() < quiet_until:
            for batch in consumer.poll(timeout_ms=100).values():
                out.extend(batch)
        return out
    finally:
        consumer.close()


def wait_for(condition: Callable[[], bool], what: str, log: Path, timeout_s: float = 120) -> None:
    """Wait for the worker to reach ``condition``; fail with its log if it never does.

    This is a liveness bound on a real process, not a speed assertion.
    """
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
            raise AssertionError(f"timed out waiting for {what}; worker log:\n{tail}")
        time.sleep(0.2)


def values(records: list) -> list[dict]:
    """Decoded JSON values of consumed records."""
    return [orjson.loads(r.value) for r in records]


#: the web token of the workers tests start with their web server on
TEST_TOKEN = "test-token-0123456789abcdef"


def partitions_of(port: int) -> list[int]:
    """The input partitions the worker serving on ``port`` holds (``[]`` until it serves)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/worker", headers={"Authorization": f"Bearer {TEST_TOKEN}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as r:
            return orjson.loads(r.read())["partitions"]
    except OSError:
        return []
