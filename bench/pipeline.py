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
- scale-out (``--workers 1,2``): that many worker processes in one consumer
  group, each count on a fresh broker and store with the same records. Timed
  from the moment the group has settled (every worker holds partitions, all
  of them are held) to the last record accounted for, over the records stored
  after that moment, so that the group's joins are left out for every count
  alike; ``scale`` is each count's rate over the first count's.

    python -m bench.pipeline --events 50000 [--db-url postgresql+psycopg://…]
    python -m bench.pipeline --events 50000 --workers 1,2 --db-url postgresql+psycopg://…
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.harness import Rig, cpu_seconds, descendants, rig, year_of
from churnwatch import native, store
from churnwatch.events import INPUT_TOPICS
from churnwatch.sim.broker import free_port
from churnwatch.sim.demo import TopicCounter, worker_process
from churnwatch.sim.producing import produce
from churnwatch.sim.simulator import SimRecord, records
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


def _faust_floor_seconds(bootstrap: str, expected: int) -> tuple[float, float]:
    """Wall and CPU seconds a bare Faust agent takes over ``expected`` records, first
    batch to last."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "seconds"
        command = [sys.executable, "-m", "bench.faust_floor", "--broker", bootstrap]
        command += ["--events", str(expected), "--out", str(out)]
        subprocess.run(command, check=True, timeout=600, capture_output=True)
        wall, cpu = out.read_text().split()
        return float(wall), float(cpu)


class CpuMeter:
    """CPU seconds of the worker, its fold process and the broker between two readings."""

    def __init__(self, worker: int, broker: int | None) -> None:
        self.worker, self.broker = worker, broker
        self.start = self.reading()

    def reading(self) -> dict[str, float]:
        """CPU seconds so far, per part: ``worker``, ``fold`` (its children), ``broker``."""
        parts = {
            "worker": cpu_seconds(self.worker),
            "fold": sum(cpu_seconds(child) for child in descendants(self.worker)),
        }
        if self.broker is not None:
            parts["broker"] = cpu_seconds(self.broker)
        return parts

    def per_event_us(self, events: int) -> dict[str, float]:
        """Microseconds of CPU per event of each part since this meter started."""
        now = self.reading()
        return {part: round((now[part] - self.start[part]) / events * 1e6, 1) for part in now}


def _first_stored(engine: sa.Engine, log: Path) -> None:
    """Wait until the worker has stored its first batch."""
    deadline = time.monotonic() + 300
    while not store.count_rows(engine, store.events):
        if time.monotonic() > deadline:
            raise SystemExit(f"the worker stored nothing; see {log}")
        time.sleep(0.05)


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


def _held_partitions(port: int, token: str) -> list[int]:
    """The input partitions the worker serving on ``port`` holds (``[]`` until it serves)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/worker", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as reply:
            return list(orjson.loads(reply.read())["partitions"])
    except OSError:
        return []


@contextlib.contextmanager
def _group(r: Rig, workers: int) -> Iterator[list[tuple[int, str]]]:
    """``workers`` worker processes in one group, each serving its web API on a port."""
    token = secrets.token_urlsafe(16)
    ports = [free_port() for _ in range(workers)]
    with contextlib.ExitStack() as stack:
        for i, port in enumerate(ports):
            settings = replace(r.settings, web_port=port, web_token=token)
            log = r.folder / f"worker-{i}.log"
            stack.enter_context(worker_process(settings, r.broker.bootstrap, log))
        yield [(port, token) for port in ports]


def _scale_out_rate(
    r: Rig, recs: list[SimRecord], workers: int, dead: TopicCounter
) -> dict[str, float]:
    """Events/s of ``workers`` workers in one group after it settled, over pre-produced ``recs``."""
    produced = produce(recs, r.broker.bootstrap).total()
    with _group(r, workers) as serving:
        deadline = time.monotonic() + 300
        while True:
            held = [_held_partitions(port, token) for port, token in serving]
            if all(held) and sorted(p for h in held for p in h) == list(range(PARTITIONS)):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the group did not settle: {held}; see {r.folder}")
            time.sleep(0.1)
        settled_at = time.time()
        done_before = store.count_rows(r.engine, store.events) + dead.count
        _pipeline_seconds(r.engine, dead, produced, r.log)
        with r.engine.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(store.events.c.stored_at))).scalar_one()
    seconds = last.timestamp() - settled_at
    return {
        "workers": workers,
        "after_settling": produced - done_before,
        "seconds": round(seconds, 2),
        "events_per_s": round((produced - done_before) / seconds),
    }


def _scale_out(args: argparse.Namespace) -> None:
    counts = [int(n) for n in args.workers.split(",")]
    recs = list(records(year_of(args.events, seed=7), limit=args.events, bad_share=0.01))
    runs = []
    for workers in counts:
        with _fresh_database(args.db_url) as url, rig(url) as r:
            dead = TopicCounter(r.broker.bootstrap, DEAD_LETTERS)
            dead.start()
            try:
                runs.append(_scale_out_rate(r, recs, workers, dead))
            finally:
                dead.stop()
    first = runs[0]["events_per_s"]
    for run in runs:
        run["scale"] = round(run["events_per_s"] / first, 3)
    summary = {
        "events": len(recs),
        "store": _dialect(args.db_url),
        "build": native.BUILD,
        "runs": runs,
    }
    print(orjson.dumps(summary).decode())


@contextlib.contextmanager
def _fresh_database(server_url: str | None) -> Iterator[str | None]:
    """A new, empty PostgreSQL database on the server of ``server_url`` for one run.

    Every group size starts from an empty store; ``None`` (SQLite) gets a new
    file from :func:`~bench.harness.rig` anyway.
    """
    if server_url is None:
        yield None
        return
    url = sa.make_url(server_url)
    name = f"churnwatch_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _dialect(db_url: str | None) -> str:
    return sa.make_url(db_url).get_backend_name() if db_url else "sqlite"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="records to process")
    parser.add_argument("--db-url", help="the worker's store (default: a fresh SQLite file)")
    parser.add_argument(
        "--workers",
        help="compare worker groups of these sizes, e.g. 1,2 (default: one worker "
        "against the bare consumer and the bare Faust agent)",
    )
    args = parser.parse_args()
    if args.workers:
        _scale_out(args)
        return
    sim = year_of(args.events, seed=7)
    with rig(args.db_url) as r:
        engine, bootstrap = r.engine, r.broker.bootstrap
        before = store.count_rows(engine, store.events)
        if before:
            raise SystemExit(f"{args.db_url} already holds {before} events: use an empty store")
        records_ = records(sim, limit=args.events, bad_share=0.01)
        produced = produce(records_, bootstrap).total()
        baseline_s = asyncio.run(_bare_consumer(bootstrap, produced))
        floor_s, floor_cpu_s = _faust_floor_seconds(bootstrap, produced)
        dead = TopicCounter(bootstrap, DEAD_LETTERS)
        dead.start()
        try:
            with worker_process(r.settings, bootstrap, r.log) as worker:
                _first_stored(engine, r.log)
                meter = CpuMeter(worker.pid, r.broker.pid)
                counted_before = store.count_rows(engine, store.events) + dead.count
                pipeline_s = _pipeline_seconds(engine, dead, produced, r.log)
                cpu_us = meter.per_event_us(produced - counted_before)
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
                # the worker inherits this process's environment, so its build too
                "build": native.BUILD,
                "seconds": round(pipeline_s, 2),
                "events_per_s": round(events_per_s),
                "baseline_seconds": round(baseline_s, 2),
                "baseline_events_per_s": round(baseline_per_s),
                "ratio": round(events_per_s / baseline_per_s, 4),
                "faust_floor_events_per_s": round(floor_per_s),
                "faust_floor_ratio": round(events_per_s / floor_per_s, 4),
                # where the CPU goes, per event: the worker's processes and the broker,
                # from its first stored batch to the last; the bare agent's own process
                "cpu_us_per_event": cpu_us,
                "faust_floor_cpu_us_per_event": round(floor_cpu_s / produced * 1e6, 1),
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
