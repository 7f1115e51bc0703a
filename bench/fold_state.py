"""Fold rate and state size for a simulated population (issue 4).

Prints one JSON object. The baseline, measured in the same run over the same
parsed events, is the least a fold can do: one counter per customer.

    python bench/fold_state.py --customers 100000 --days 60
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta

import orjson

from churnwatch.events import TOPIC_OF_TYPE, from_payload, parse_object
from churnwatch.features.row import feature_row
from churnwatch.features.state import KEEP_DAYS, CustomerState, apply
from churnwatch.sim.simulator import Simulation


def deep_size(obj: object, seen: set[int] | None = None) -> int:
    """Bytes held by ``obj`` and everything it references (shared objects once)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set):
        size += sum(deep_size(item, seen) for item in obj)
    elif hasattr(obj, "__slots__"):
        size += sum(deep_size(getattr(obj, name), seen) for name in obj.__slots__)
    return size


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds) if seconds else 0.0


def densest_customer() -> CustomerState:
    """Three years of every event type every day: the most a state can hold."""
    kinds = {
        "purchase": {"amount": 12.5},
        "refund": {"amount": 3.0},
        "login": {},
        "email_open": {},
        "email_click": {},
        "campaign_participation": {},
        "member_event": {},
        "points_earned": {"points": 10},
        "points_redeemed": {"points": 5},
        "support_contact": {},
        "survey_response": {"satisfaction": 3, "nps": 7},
    }
    start = datetime(2024, 1, 1, tzinfo=UTC)
    purchase = {"currency": "EUR", "order_id": "o", "channel": "web"}
    state = None
    for day in range(3 * 365):
        ts = (start + timedelta(days=day, hours=12)).isoformat()
        cid = f"k{day}"
        kinds["complaint_opened"] = {"complaint_id": cid, "category": "price", "severity": 1}
        kinds["complaint_resolved"] = {"complaint_id": cid, "satisfaction": 4}
        for kind, fields in kinds.items():
            extra = purchase if kind in ("purchase", "refund") else {}
            obj = {"event_id": f"{kind}{day}", "customer_id": "dense", "ts": ts, "type": kind}
            event = parse_object(TOPIC_OF_TYPE[kind], {**obj, **extra, **fields})
            state = apply(state, event)
    return state


def state_size(sim: Simulation, days: int) -> dict:
    """Bytes per customer of a population folded event by event, never holding the events."""
    states: dict[str, CustomerState] = {}
    events = 0
    for obj in sim.events():
        event = from_payload(obj)
        states[event.customer_id] = apply(states.get(event.customer_id), event)
        events += 1
    memory = deep_size(states)
    stored = sum(len(orjson.dumps(s.to_dict())) for s in states.values())
    return {
        "customers": len(states),
        "days": days,
        "events": events,
        "memory_bytes_per_customer": round(memory / len(states)),
        "stored_json_bytes_per_customer": round(stored / len(states)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=60, help="history length to simulate")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--state-only",
        action="store_true",
        help="fold straight from the simulator and measure only the state's size "
        "(for populations whose events do not fit in memory at once)",
    )
    args = parser.parse_args()

    end = datetime(2026, 6, 1, tzinfo=UTC)
    sim = Simulation(args.customers, end - timedelta(days=args.days), end, seed=args.seed)
    if args.state_only:
        print(orjson.dumps(state_size(sim, args.days)).decode())
        return
    started = time.perf_counter()
    raw = [orjson.dumps(e) for e in sim.events()]
    simulate_s = time.perf_counter() - started

    started = time.perf_counter()
    events = [from_payload(o) for o in map(orjson.loads, raw)]
    decode_s = time.perf_counter() - started

    started = time.perf_counter()
    counts: dict[str, int] = {}
    for event in events:
        counts[event.customer_id] = counts.get(event.customer_id, 0) + 1
    baseline_s = time.perf_counter() - started

    started = time.perf_counter()
    states: dict[str, CustomerState] = {}
    for event in events:
        cid = event.customer_id
        states[cid] = apply(states.get(cid), event)
    fold_s = time.perf_counter() - started

    as_of = end.timestamp()
    started = time.perf_counter()
    for state in states.values():
        feature_row(state, as_of)
    rows_s = time.perf_counter() - started

    memory = deep_size(states)
    stored = sum(len(orjson.dumps(s.to_dict())) for s in states.values())
    dense = densest_customer()
    print(
        orjson.dumps(
            {
                "customers": len(states),
                "days": args.days,
                "events": len(events),
                "simulate_s": round(simulate_s, 2),
                "decode_events_per_s": _rate(len(events), decode_s),
                "baseline_count_events_per_s": _rate(len(events), baseline_s),
                "fold_events_per_s": _rate(len(events), fold_s),
                "fold_vs_baseline": round(fold_s / baseline_s, 1),
                "feature_rows_per_s": _rate(len(states), rows_s),
                "memory_bytes_per_customer": round(memory / len(states)),
                "stored_json_bytes_per_customer": round(stored / len(states)),
                "densest_customer": {
                    "days_of_history": 3 * 365,
                    "buckets": len(dense.buckets),
                    "bucket_limit": KEEP_DAYS,
                    "memory_bytes": deep_size(dense),
                    "stored_json_bytes": len(orjson.dumps(dense.to_dict())),
                },
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
