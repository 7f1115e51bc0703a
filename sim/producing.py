"""Writing simulated or replayed records to Kafka or to a JSONL file."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from churnwatch.events import TOPIC_OF_TYPE
from churnwatch.sim.simulator import SimRecord


def produce(
    records: Iterable[SimRecord],
    bootstrap: str,
    *,
    rate: float | None = None,
    on_record: Callable[[SimRecord], None] | None = None,
    client: Mapping[str, Any] | None = None,
) -> Counter[str]:
    """Send records to the broker, at most ``rate`` per second; count them by kind."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        batch_size=256 * 1024,
        acks=1,
        enable_idempotence=False,
        **(client or {}),
    )
    counts: Counter[str] = Counter()
    started = time.monotonic()
    try:
        for record in records:
            producer.send(record.topic, key=record.key, value=record.value)
            counts[record.kind] += 1
            if on_record is not None:
                on_record(record)
            if rate:
                ahead = counts.total() / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        producer.flush()
    finally:
        producer.close()
    return counts


def write_jsonl(records: Iterable[SimRecord], path: Path) -> Counter[str]:
    """Write each record's value as one line, byte for byte (bad records included).

    Every valid line is an event whose ``type`` names its topic, so the file
    can be imported as it is.
    """
    counts: Counter[str] = Counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for record in records:
            out.write(record.value + b"\n")
            counts[record.kind] += 1
    return counts


def publish_stored(
    payloads: Iterable[dict],
    bootstrap: str,
    *,
    rate: float | None = None,
    on_record: Callable[[SimRecord], None] | None = None,
    client: Mapping[str, Any] | None = None,
) -> int:
    """Send stored event payloads to their topics, keyed by customer; return the count.

    A worker on a fresh store folds them as new events; one on the store they
    came from takes them for redeliveries from elsewhere and dead-letters them.
    """
    records = (
        SimRecord(TOPIC_OF_TYPE[p["type"]], p["customer_id"].encode(), orjson.dumps(p), "valid")
        for p in payloads
    )
    return produce(records, bootstrap, rate=rate, on_record=on_record, client=client).total()
