"""Time from a partition assignment to the first committed batch, at N stored customers (issue 22).

Fills a fresh store with ``--customers`` ``customer_state`` rows: ``--sample``
simulated customers, each a year of history counted through the worker's
lanes, cloned under new ids (in bulk; each clone in its own id's partition).
Then does what a worker does on an assignment of every partition:
``Committer.reload`` and the first ``commit()`` of a ``--batch`` of logins by
stored customers. Prints one JSON object as its last line: the fill, the
reload and the first commit, in seconds, and the resident memory after each.

The baseline, in the same run on the same store (skipped above
``--baseline-max`` customers, where it would not fit in memory): the eager
assignment, every owned state read in one SELECT and rebuilt into a record,
the lanes restarted from those records.

    python -m bench.recovery --customers 1000000
    python -m bench.recovery --customers 1000000 --db-url postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.harness import PARTITIONS
from bench.soak import rss_mib
from churnwatch import store
from churnwatch.alerts.config import load_playbook, load_policy
from churnwatch.engine.commit import Committer, state_row
from churnwatch.engine.customer import CustomerRecord
from churnwatch.engine.lanes import Lanes
from churnwatch.events import TOPIC_OF_TYPE, Event, from_payload
from churnwatch.features.state import KEEP_DAYS
from churnwatch.models.rule import RuleScorer
from churnwatch.records import RawRecord
from churnwatch.settings import Settings
from churnwatch.sim.simulator import Simulation, records
from churnwatch.topics import partition_of

FILL_CHUNK = 5_000


def sample_records(customers: int, now: datetime) -> list[CustomerRecord]:
    """``customers`` simulated customers after a year, counted as the worker counts them."""
    sim = Simulation(customers, now - timedelta(days=365), now, seed=22)
    events = sorted(
        (from_payload(orjson.loads(r.value)) for r in records(sim)),
        key=lambda e: (e.epoch_s, e.event_id),
    )
    lanes = Lanes(load_policy(), load_playbook(), PARTITIONS)
    held: dict[str, CustomerRecord] = {}
    for start in range(0, len(events), 20_000):
        held.update(lanes.run(events[start : start + 20_000], held.get, RuleScorer()).touched)
    return list(held.values())


def _clone_id(index: int) -> str:
    return f"r{index:08d}"


def _clones(sample: list[CustomerRecord], count: int) -> Iterator[dict[str, Any]]:
    """``count`` state rows: the sample's rows over and over, each under a new id."""
    rows = [state_row(record, 0) for record in sample]
    for index in range(count):
        cid = _clone_id(index)
        row = rows[index % len(rows)]
        state = row["state"]
        yield {
            **row,
            "customer_id": cid,
            "partition": partition_of(cid, PARTITIONS),
            "state": {**state, "features": {**state["features"], "customer_id": cid}},
            "version": 1,
            "updated_at": row["scored_at"] or datetime.now(UTC),
        }


def fill(engine: Any, sample: list[CustomerRecord], count: int) -> None:
    """Insert ``count`` cloned state rows in bulk."""
    rows = _clones(sample, count)
    with engine.begin() as conn:
        while chunk := [row for _, row in zip(range(FILL_CHUNK), rows, strict=False)]:
            conn.execute(store.customer_state.insert(), chunk)


def first_batch(count: int, stored: int, at: datetime) -> list[tuple[RawRecord, Event]]:
    """``count`` logins at ``at`` by stored customers, as the intake accepts them."""
    rng = random.Random(22)
    accepted = []
    for offset, index in enumerate(rng.sample(range(stored), count)):
        cid = _clone_id(index)
        payload = {"event_id": f"first-{offset}", "customer_id": cid, "type": "login"}
        payload["ts"] = at.isoformat()
        raw = RawRecord(
            TOPIC_OF_TYPE["login"],
            partition_of(cid, PARTITIONS),
            offset,
            cid.encode(),
            orjson.dumps(payload),
        )
        accepted.append((raw, from_payload(payload)))
    return accepted


def _committer(engine: Any, cache: int) -> Committer:
    return Committer(
        engine,
        allowed_lateness_s=KEEP_DAYS * 86400.0,
        partitions=PARTITIONS,
        cache_customers=cache,
    )


def assign(engine: Any, cache: int, batch: list[tuple[RawRecord, Event]]) -> dict[str, float]:
    """Reload every partition, then the first commit: seconds and resident memory."""
    gc.collect()
    before = rss_mib_self()
    committer = _committer(engine, cache)
    started = time.perf_counter()
    count = committer.reload(list(range(PARTITIONS)))
    loaded = time.perf_counter()
    after_reload = rss_mib_self()
    committed = committer.commit(batch)
    done = time.perf_counter()
    assert committed.stored == len(batch), committed
    return {
        "customers": count,
        "reload_s": round(loaded - started, 3),
        "first_commit_s": round(done - loaded, 3),
        "assignment_to_commit_s": round(done - started, 3),
        "rss_growth_reload_mib": round(after_reload - before, 1),
        "rss_growth_mib": round(rss_mib_self() - before, 1),
    }


def eager(engine: Any) -> dict[str, float]:
    """The baseline: every owned state read in one SELECT, rebuilt, lanes restarted from it."""
    gc.collect()
    before = rss_mib_self()
    started = time.perf_counter()
    with engine.connect() as conn:
        rows = store.load_versioned_states(conn, list(range(PARTITIONS)))
    held = {cid: CustomerRecord.from_row(cid, row) for cid, (row, _) in rows.items()}
    Lanes(load_policy(), load_playbook(), PARTITIONS).restart(held.values())
    return {
        "customers": len(held),
        "reload_s": round(time.perf_counter() - started, 3),
        "rss_growth_reload_mib": round(rss_mib_self() - before, 1),
    }


def rss_mib_self() -> float:
    """This process's resident memory."""
    return rss_mib(os.getpid())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000, help="stored customers")
    parser.add_argument("--sample", type=int, default=2_000, help="simulated customers cloned")
    parser.add_argument("--batch", type=int, default=100, help="events in the first batch")
    parser.add_argument("--cache", type=int, default=Settings.cache_customers)
    parser.add_argument("--db-url", help="an empty store (default: a new SQLite file)")
    parser.add_argument("--baseline-max", type=int, default=200_000)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        engine = store.make_engine(args.db_url or f"sqlite:///{Path(tmp) / 'recovery.db'}")
        store.upgrade(engine)
        started = time.perf_counter()
        sample = sample_records(args.sample, now)
        simulated = time.perf_counter()
        fill(engine, sample, args.customers)
        filled = time.perf_counter()
        del sample
        batch = first_batch(args.batch, args.customers, now + timedelta(minutes=1))
        streamed = assign(engine, args.cache, batch)
        baseline = eager(engine) if args.customers <= args.baseline_max else None
        engine.dispose()
    out = {
        "store": engine.dialect.name,
        "customers": args.customers,
        "sample": args.sample,
        "batch": args.batch,
        "cache_customers": args.cache,
        "simulate_s": round(simulated - started, 1),
        "fill_s": round(filled - simulated, 1),
        "streamed": streamed,
        "eager_baseline": baseline,
    }
    if baseline is not None:
        out["reload_speedup"] = round(baseline["reload_s"] / streamed["reload_s"], 1)
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
