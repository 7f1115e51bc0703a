"""Replay rate against one process and the streaming worker, measured in the same run.

Prints one JSON object. The replay side is what ``churnwatch replay`` does:
read the store in event-time order, rebuild the events, and send them through
the worker's timeline (fold, silence, tiers, rule scores, alert policy).
Baselines: the single-process replay as it was before issue 22 (one loop over
every lane), and ``churnwatch demo --events M`` on the same machine: broker,
worker and SQL store end to end (issue 7; ``--stream-events 0`` skips it).
Then the lanes split over 1 and ``--workers`` processes and over a Dask
``LocalCluster`` of that many worker processes (its start-up not counted);
each gives exactly the baseline's result.

    python -m bench.replay --events 200000 --stream-events 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from churnwatch import native, store
from churnwatch.alerts.config import load_playbook, load_policy
from churnwatch.events import from_payload, parse_object, payload_of
from churnwatch.models.rule import RuleScorer
from churnwatch.offline import api
from churnwatch.offline.parallel import combine, default_workers
from churnwatch.offline.replay import Replayed, replay_history
from churnwatch.settings import Settings
from churnwatch.sim.demo import run_demo
from churnwatch.sim.simulator import Simulation, customers_for, records


def load_store(db_url: str, count: int, days: int) -> int:
    """Simulate ``count`` valid events into a fresh store; return how many were stored."""
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    sim = Simulation(customers_for(count, days), now - timedelta(days=days), now, seed=7)
    batch, stored = [], 0
    with engine.begin() as conn:
        for record in records(sim, bad_share=0.0, limit=count):
            obj = orjson.loads(record.value)
            event = parse_object(record.topic, obj)
            batch.append(
                {
                    "event_id": event.event_id,
                    "customer_id": event.customer_id,
                    "topic": record.topic,
                    "type": event.type,
                    "ts": event.ts,
                    "payload": payload_of(event),
                    "source": "bench",
                    "stored_at": now,
                }
            )
            if len(batch) == 10_000:
                stored += len(store.append_events(conn, batch))
                batch.clear()
        stored += len(store.append_events(conn, batch))
    engine.dispose()
    return stored


def _rate(replayed: Replayed, seconds: float) -> dict:
    return {
        "events": replayed.replayed,
        "alerts": len(replayed.alerts),
        "seconds": round(seconds, 1),
        "events_per_s": round(replayed.replayed / seconds),
        "us_per_event": round(seconds / replayed.replayed * 1e6, 1),
    }


def replay_rate(db_url: str) -> tuple[dict, Replayed]:
    """The single-process replay as before issue 22, in the canonical order to compare."""
    engine = store.make_engine(db_url)
    started = time.perf_counter()
    with engine.connect() as conn:
        events = (from_payload(p) for p in store.read_events(conn))
        replayed = replay_history(
            events, RuleScorer(), load_policy(), load_playbook(), partitions=Settings().partitions
        )
    seconds = time.perf_counter() - started
    engine.dispose()
    return _rate(replayed, seconds), combine([replayed])


def split_rate(db_url: str, expected: Replayed, **how: Any) -> dict:
    """``api.replay`` with ``how`` (workers, dask); its result must equal ``expected``."""
    engine = store.make_engine(db_url)
    started = time.perf_counter()
    replayed = api.replay(engine, scorer=RuleScorer(), partitions=Settings().partitions, **how)
    seconds = time.perf_counter() - started
    engine.dispose()
    if replayed != expected:
        raise SystemExit(f"replay with {how} differs from the single-process replay")
    return _rate(replayed, seconds)


def dask_rate(db_url: str, expected: Replayed, workers: int) -> dict:
    """``split_rate`` on a local Dask cluster of ``workers`` single-threaded processes."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        return split_rate(db_url, expected, dask=cluster.scheduler_address)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to replay")
    parser.add_argument("--days", type=int, default=365, help="days of simulated history")
    parser.add_argument("--stream-events", type=int, default=20_000, help="events to stream")
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="processes (default: the cores)"
    )
    parser.add_argument(
        "--single-only",
        action="store_true",
        help="only the single-process replay: compiled against pure (CHURNWATCH_PURE=1)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        started = time.perf_counter()
        stored = load_store(db_url, args.events, args.days)
        load_s = time.perf_counter() - started
        before, expected = replay_rate(db_url)
        if args.single_only:
            single = {"stored_events": stored, "build": native.BUILD, "single_process": before}
            print(orjson.dumps(single).decode())
            return
        one = split_rate(db_url, expected, workers=1)
        split = split_rate(db_url, expected, workers=args.workers)
        dask = dask_rate(db_url, expected, args.workers)
        out: dict[str, Any] = {
            "stored_events": stored,
            "store_load_s": round(load_s, 1),
            "build": native.BUILD,
            "workers": args.workers,
            "single_process_before": before,
            "replay_1_worker": one,
            f"replay_{args.workers}_workers": split,
            "replay_dask": dask,
        }
        if args.stream_events:
            # the demo's own defaults: embedded broker, a fresh SQLite store
            stream = run_demo(Settings.from_env(), events=args.stream_events, seed=7).to_dict()
            out["streaming"] = {
                "events": stream["events_in"],
                "events_per_s": stream["events_per_s"],
            }
            out["replay_vs_streaming"] = round(split["events_per_s"] / stream["events_per_s"], 1)
    best = max(one["events_per_s"], split["events_per_s"], dask["events_per_s"])
    out["vs_single_process_before"] = round(best / before["events_per_s"], 2)
    # issue 10's name for the headline figure
    out["events_per_s"] = best
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
