"""Event → alert latency at a fixed offered load (issue 10).

Produces simulated records at ``--rate`` per second to a running worker and
measures, for every alert raised by an event (not by silence), the time from
the producer's timestamp on the triggering record to the timestamp of the
alert's record on ``churn-alerts``, both as Kafka records carry them
(CreateTime, one clock: everything runs on this machine). Prints one JSON
object as its last line with p50/p95/p99 in milliseconds and the worker
settings that shape them (``CHURNWATCH_FETCH_MAX_WAIT_MS``, ``CHURNWATCH_LOOP``,
``CHURNWATCH_ORDER_IDLE_S`` choose them), and ``waited_share``: the share of
records the event-time merge let go only once a topic of their partition had
been idle ``CHURNWATCH_ORDER_IDLE_S`` (read from the worker's ``/metrics``).

    python -m bench.latency --rate 1000 --events 30000
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import urllib.request

import orjson
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import rig, year_of
from churnwatch import store
from churnwatch.events import INPUT_TOPICS
from churnwatch.sim.broker import free_port
from churnwatch.sim.demo import worker_process
from churnwatch.sim.producing import produce
from churnwatch.sim.simulator import records
from churnwatch.topics import CHURN_ALERTS
from tests.kafka_helpers import read_topic


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0-100) of ascending values."""
    rank = max(1, round(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


#: the bench worker's own web token, for its ``/metrics``
TOKEN = "bench-latency-metrics"


def counters(port: int) -> dict[str, float]:
    """The worker's counters now, by sample name (``churnwatch_events_stored_total`` ...)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        if family.type == "counter"
        for sample in family.samples
        if not sample.labels
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="records per second offered")
    parser.add_argument("--events", type=int, default=30_000, help="records to produce")
    args = parser.parse_args()
    sim = year_of(args.events, seed=13)
    with rig() as r:
        engine, bootstrap, log = r.engine, r.broker.bootstrap, r.log
        settings = dataclasses.replace(r.settings, web_port=free_port(), web_token=TOKEN)
        with worker_process(settings, bootstrap, log):
            time.sleep(10)  # past the group join: measure the stream, not the start
            produce(records(sim, limit=args.events, bad_share=0.0), bootstrap, rate=args.rate)
            deadline = time.monotonic() + 300
            while store.count_rows(engine, store.events) < args.events:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the worker fell behind for good; see {log}")
                time.sleep(0.2)
            time.sleep(2)  # the last alerts' sends
            counted = counters(settings.web_port)
        alerts = read_topic(bootstrap, CHURN_ALERTS, None, quiet_s=1.0)
        sent_at: dict[str, int] = {}
        for topic in INPUT_TOPICS:
            for record in read_topic(bootstrap, topic, None, quiet_s=1.0):
                sent_at[orjson.loads(record.value)["event_id"]] = record.timestamp
    latencies = sorted(
        float(record.timestamp - sent_at[trigger])
        for record in alerts
        if (trigger := orjson.loads(record.value).get("trigger")) in sent_at
    )
    print(
        orjson.dumps(
            {
                "rate": args.rate,
                "events": args.events,
                "alerts": len(alerts),
                "alerts_by_event": len(latencies),
                "p50_ms": percentile(latencies, 50),
                "p95_ms": percentile(latencies, 95),
                "p99_ms": percentile(latencies, 99),
                "max_ms": latencies[-1],
                "waited_share": round(
                    counted["churnwatch_order_waited_total"]
                    / counted["churnwatch_events_stored_total"],
                    4,
                ),
                "config": {
                    "fetch_max_wait_ms": settings.fetch_max_wait_ms,
                    "loop": settings.loop,
                    "order_idle_s": settings.order_idle_s,
                    "batch_size": settings.batch_size,
                    "batch_within_s": settings.batch_within_s,
                },
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
