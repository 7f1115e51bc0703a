"""Replay rate against the streaming worker's rate, measured in the same run (issue 7).

Prints one JSON object. The replay side is what ``churnwatch replay`` does:
read the store in event-time order, rebuild the events, and send them through
the worker's timeline (fold, silence, tiers, rule scores, alert policy). The
baseline is ``churnwatch demo --events M`` on the same machine: broker, worker
and SQL store end to end.

    python bench/replay.py --events 1000000 --stream-events 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from churnwatch import store
from churnwatch.alerts.config import load_playbook, load_policy
from churnwatch.events import from_payload, parse_object, payload_of
from churnwatch.models.rule import RuleScorer
from churnwatch.offline.replay import replay_history
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


def replay_rate(db_url: str) -> dict:
    engine = store.make_engine(db_url)
    started = time.perf_counter()
    with engine.connect() as conn:
        events = (from_payload(p) for p in store.read_events(conn))
        replayed = replay_history(
            events, RuleScorer(), load_policy(), load_playbook(), partitions=Settings().partitions
        )
    seconds = time.perf_counter() - started
    return {
        "events": replayed.replayed,
        "alerts": len(replayed.alerts),
        "seconds": round(seconds, 1),
        "events_per_s": round(replayed.replayed / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to replay")
    parser.add_argument("--days", type=int, default=365, help="days of simulated history")
    parser.add_argument("--stream-events", type=int, default=20_000, help="events to stream")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        started = time.perf_counter()
        stored = load_store(db_url, args.events, args.days)
        load_s = time.perf_counter() - started
        replay = replay_rate(db_url)
        # the demo's own defaults: embedded broker, a fresh SQLite store
        stream = run_demo(Settings.from_env(), events=args.stream_events, seed=7).to_dict()
    print(
        orjson.dumps(
            {
                "stored_events": stored,
                "store_load_s": round(load_s, 1),
                "replay": replay,
                "streaming": {
                    "events": stream["events_in"],
                    "events_per_s": stream["events_per_s"],
                },
                "replay_vs_streaming": round(replay["events_per_s"] / stream["events_per_s"], 1),
                # issue 10's name for the headline figure
                "events_per_s": replay["events_per_s"],
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
