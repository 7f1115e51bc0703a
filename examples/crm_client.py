"""An example CRM: takes win-back tasks from ``winback-tasks`` and reports outcomes.

    python examples/crm_client.py --broker 127.0.0.1:9092 [--accept-share 0.5]
        [--contact-hours 6] [--idle-exit 5] [--group crm-example]

A real CRM would put each task in its ``owner_queue`` and let an agent call or
write; this one "works" every task at once: it reports ``contacted``
``--contact-hours`` after the task, then ``accepted`` (share
``--accept-share``, decided by the task id so a rerun says the same) or
``declined`` a day later. Outcomes carry event time, keyed by customer. It
stops after ``--idle-exit`` seconds without a new task (0: never) and prints
one JSON line: tasks seen and outcomes sent by status.

Plain kafka-python, to show that nothing but the topics and their record shapes
(docs/contract.md) is needed to integrate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections import Counter
from datetime import datetime, timedelta

from kafka import KafkaConsumer, KafkaProducer


def outcomes_for(task: dict, accept_share: float, contact_hours: float) -> list[dict]:
    """The reports this CRM sends for ``task``."""
    raised = datetime.fromisoformat(task["ts"])
    contacted = raised + timedelta(hours=contact_hours)
    digest = hashlib.sha256(task["task_id"].encode()).digest()
    accepted = int.from_bytes(digest[:4], "big") / 2**32 < accept_share
    return [
        {"task_id": task["task_id"], "status": "contacted", "ts": contacted.isoformat()},
        {
            "task_id": task["task_id"],
            "status": "accepted" if accepted else "declined",
            "ts": (contacted + timedelta(days=1)).isoformat(),
            "note": "offer taken" if accepted else "not interested",
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True, help="Kafka bootstrap host:port")
    parser.add_argument("--group", default="crm-example", help="consumer group")
    parser.add_argument("--accept-share", type=float, default=0.5)
    parser.add_argument("--contact-hours", type=float, default=6.0)
    parser.add_argument("--idle-exit", type=float, default=0.0, help="0: run until stopped")
    args = parser.parse_args()

    consumer = KafkaConsumer(
        "winback-tasks",
        bootstrap_servers=args.broker,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
        value_deserializer=json.loads,
    )
    producer = KafkaProducer(
        bootstrap_servers=args.broker,
        key_serializer=str.encode,
        value_serializer=lambda v: json.dumps(v).encode(),
    )
    seen, sent = 0, Counter()
    last_task = time.monotonic()
    try:
        while not args.idle_exit or time.monotonic() - last_task < args.idle_exit:
            batches = consumer.poll(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    seen += 1
                    last_task = time.monotonic()
                    task = record.value
                    for outcome in outcomes_for(task, args.accept_share, args.contact_hours):
                        producer.send("winback-outcomes", key=task["customer_id"], value=outcome)
                        sent[outcome["status"]] += 1
            if batches:
                producer.flush()
                consumer.commit()  # after the outcomes are out: at least once
    finally:
        producer.flush()
        producer.close()
        consumer.close()
    print(json.dumps({"tasks": seen, "outcomes": dict(sent)}))


if __name__ == "__main__":
    main()
