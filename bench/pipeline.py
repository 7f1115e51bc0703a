"""Worker throughput against a bare aiokafka consumer on the same broker (issue 10).

Prints one JSON object as its last line. Both sides read the same
pre-produced simulated records (1 % bad, as in the demo) from the same embedded
broker:

- baseline: one aiokafka consumer on every input partition that only decodes
  each value with orjson, from the first record to the last;
- Faust floor: a bare Faust agent (:mod:`bench.faust_floor`) that takes the
  same records in the worker's batches and only decodes them: the most a
  worker built on a Faust agent can do here;
- pipeline: the real worker process (validation, SQL store, features,
  scoring, alert policy, publishing), from its first stored batch to the last
  record accounted for (stored or dead-lettered); group join and start-up are
  left out, as the baseline has none.

    python -m bench.pipeline --events 50000 [--db-url postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.harness import rig, year_of
from churnwatch import store
from churnwatch.events import INPUT_TOPICS
from churnwatch.sim.demo import TopicCounter, worker_process
from churnwatch.sim.producing import produce
from churnwatch.sim.simulator import records
from churnwatch.topics import DEAD_LETTERS

PARTITIONS = 4


async def _bare_consumer(bootstrap: str, expected: int) -> float:
    """Seconds a decode-only consumer takes over ``expected`` records, first to last."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in INPUT_TOPICS for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen, first = 0, None
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for batch in batches.values():
                first = first or time.perf_counter()
                for message in batch:
                    # the bad records are decoded too, and fail
                    with contextlib.suppress(orjson.JSONDecodeError):
                        orjson.loads(message.value)
                seen += len(batch)
        return time.perf_counter() - (first or time.perf_counter())
    finally:
        await consumer.stop()


def _faust_floor_seconds(bootstrap: str, expected: int) -> float:
    """Seconds a bare Faust agent takes over ``expected`` records, first batch to last."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "seconds"
        command = [sys.executable, "-m", "bench.faust_floor", "--broker", bootstrap]
        command += ["--events", str(expected), "--out", str(out)]
        subprocess.run(command, check=True, timeout=600, capture_output=True)
        return float(out.read_text())


def _pipeline_seconds(engine: sa.Engine, dead: TopicCounter, total: int, log: Path) -> float:
    """Wait until every record is stored or dead-lettered; seconds first to last commit."""
    deadline = time.monotonic() + 600
    while store.count_rows(engine, store.events) + dead.count < total:
        if time.monotonic() > deadline:
            raise SystemExit(f"the worker did not finish; see {log}")
        time.sleep(0.2)
    with engine.connect() as conn:
        first, last = conn.execute(
            sa.select(sa.func.min(store.events.c.stored_at), sa.func.max(store.events.c.stored_at))
        ).one()
    return (last - first).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="records to process")
    parser.add_argument("--db-url", help="the worker's store (default: a fresh SQLite file)")
    args = parser.parse_args()
    sim = year_of(args.events, seed=7)
    with rig(args.db_url) as r:
        engine, bootstrap = r.engine, r.broker.bootstrap
        before = store.count_rows(engine, store.events)
        if before:
            raise SystemExit(f"{args.db_url} already holds {before} events: use an empty store")
        records_ = records(sim, limit=args.events, bad_share=0.01)
        produced = produce(records_, bootstrap).total()
        baseline_s = asyncio.run(_bare_consumer(bootstrap, produced))
        floor_s = _faust_floor_seconds(bootstrap, produced)
        dead = TopicCounter(bootstrap, DEAD_LETTERS)
        dead.start()
        try:
            with worker_process(r.settings, bootstrap, r.log):
                pipeline_s = _pipeline_seconds(engine, dead, produced, r.log)
        finally:
            dead.stop()
        stored = store.count_rows(engine, store.events)
    events_per_s = produced / pipeline_s
    baseline_per_s = produced / baseline_s
    floor_per_s = produced / floor_s
    print(
        orjson.dumps(
            {
                "events": produced,
                "stored": stored,
                "dead_letters": dead.count,
                "store": engine.dialect.name,
                "seconds": round(pipeline_s, 2),
                "events_per_s": round(events_per_s),
                "baseline_seconds": round(baseline_s, 2),
                "baseline_events_per_s": round(baseline_per_s),
                "ratio": round(events_per_s / baseline_per_s, 4),
                "faust_floor_events_per_s": round(floor_per_s),
                "faust_floor_ratio": round(events_per_s / floor_per_s, 4),
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
