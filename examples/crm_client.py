"""An example CRM: takes win-back tasks from ``winback-tasks`` and reports outcomes.

    python examples/crm_client.py --broker 127.0.0.1:9092 [--accept-share 0.5]
        [--contact-hours 6] [--idle-exit 5] [--group crm-example] [--play-truth]

A real CRM would put each task in its ``owner_queue`` and let an agent call or
write; this one "works" every task at once: it reports ``contacted``
``--contact-hours`` after the task, then ``accepted`` (share
``--accept-share``, decided by the task id so a rerun says the same) or
``declined`` a day later. Outcomes carry event time, keyed by customer. It
stops after ``--idle-exit`` seconds without a new task (0: never) and prints
one JSON line: tasks seen and outcomes sent by status.

Plain kafka-python, to show that nothing but the topics and their record shapes
(docs/contract.md) is needed to integrate.

``--play-truth`` (used by ``churnwatch demo``, and needing churnwatch installed)
plays the simulated customers' side too: a customer whom the action truly wins
back (``churnwatch.sim.winback_truth``: the action's uplift for the reason and
tier, over the natural return the simulator already plays) buys again two days
after the contact, as a purchase on ``purchases``. Held-out cases never reach a
CRM, so their customers come back at their natural rate only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections import Counter
from datetime import datetime, timedelta

from kafka import KafkaConsumer, KafkaProducer


def _draw(task_id: str, salt: bytes) -> float:
    """A uniform number in [0, 1) fixed by the task id: a rerun decides alike."""
    return int.from_bytes(hashlib.sha256(salt + task_id.encode()).digest()[:4], "big") / 2**32


def outcomes_for(task: dict, accept_share: float, contact_hours: float) -> list[dict]:
    """The reports this CRM sends for ``task``."""
    raised = datetime.fromisoformat(task["ts"])
    contacted = raised + timedelta(hours=contact_hours)
    accepted = _draw(task["task_id"], b"") < accept_share
    return [
        {"task_id": task["task_id"], "status": "contacted", "ts": contacted.isoformat()},
        {
            "task_id": task["task_id"],
            "status": "accepted" if accepted else "declined",
            "ts": (contacted + timedelta(days=1)).isoformat(),
            "note": "offer taken" if accepted else "not interested",
        },
    ]


def won_back_by_contact(task: dict) -> dict | None:
    """The purchase of a customer the task's action truly wins back, else ``None``.

    The simulator already plays each customer's natural return; the contact adds
    the rest of its true uplift: of those who would not have come back, the share
    ``uplift / (1 - natural)``. A harmful action cannot take purchases back, so it
    adds none.
    """
    from churnwatch.sim import winback_truth

    reason, tier, action = task["reason"], task["value_tier"], task["action"]
    try:
        gain = winback_truth.uplift(reason, tier, action)
    except KeyError:  # an action the simulator knows no effect of
        return None
    natural = winback_truth.NATURAL[reason][tier]
    if gain <= 0 or _draw(task["task_id"], b"returns") >= gain / (1.0 - natural):
        return None
    when = datetime.fromisoformat(task["ts"]) + timedelta(days=2)
    return {
        "event_id": f"winback-{task['task_id']}",
        "customer_id": task["customer_id"],
        "ts": when.isoformat(),
        "type": "purchase",
        "amount": 40.0,
        "currency": "EUR",
        "order_id": f"winback-{task['task_id']}",
        "channel": "web",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True, help="Kafka bootstrap host:port")
    parser.add_argument("--group", default="crm-example", help="consumer group")
    parser.add_argument("--accept-share", type=float, default=0.5)
    parser.add_argument("--contact-hours", type=float, default=6.0)
    parser.add_argument("--idle-exit", type=float, default=0.0, help="0: run until stopped")
    parser.add_argument(
        "--play-truth",
        action="store_true",
        help="also play the simulated customers a contact truly wins back (a purchase)",
    )
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
                    comeback = won_back_by_contact(task) if args.play_truth else None
                    if comeback is not None:
                        producer.send("purchases", key=task["customer_id"], value=comeback)
                        sent["purchases played"] += 1
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
