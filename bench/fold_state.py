"""Fold rate and state size for a simulated population (issues 4 and 22).

Prints one JSON object. The baseline, measured in the same run over the same
parsed events, is the least a fold can do: one counter per customer. A sample of
customers is also folded over a year of history (the state's bound for typical
customers), event by event with a feature row after each as the worker does.

    python bench/fold_state.py --customers 100000 --days 60
    python bench/fold_state.py --customers 1000000 --days 14 --state-only
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta

import orjson

from churnwatch.events import TOPIC_OF_TYPE, from_payload, parse_object
from churnwatch.features.row import feature_row
from churnwatch.features.state import KEEP_DAYS, CustomerState, apply, kept_totals
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
    else:
        # a class compiled by mypyc (churnwatch.native) lists its fields in __mypyc_attrs__
        cls = type(obj)
        names = getattr(cls, "__slots__", None) or getattr(cls, "__mypyc_attrs__", ())
        size += sum(deep_size(getattr(obj, name, None), seen) for name in names)
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


def sizes(states: dict[str, CustomerState]) -> dict[str, int]:
    """Bytes per customer in memory and as stored JSON.

    Memory is measured as folded and again with every state's year totals added
    up (:func:`kept_totals`: the cache a feature row as of the newest day fills).
    """
    memory = deep_size(states)
    stored = sum(len(orjson.dumps(s.to_dict())) for s in states.values())
    for state in states.values():
        kept_totals(state)
    cached = deep_size(states)
    n = len(states)
    return {
        "memory_bytes_per_customer": round(memory / n),
        "memory_bytes_per_customer_with_year_totals": round(cached / n),
        "stored_json_bytes_per_customer": round(stored / n),
    }


def state_size(sim: Simulation, days: int) -> dict[str, object]:
    """Bytes per customer of a population folded event by event, never holding the events."""
    states: dict[str, CustomerState] = {}
    events = 0
    for obj in sim.events():
        event = from_payload(obj)
        states[event.customer_id] = apply(states.get(event.customer_id), event)
        events += 1
    return {"customers": len(states), "days": days, "events": events, **sizes(states)}


def year_sample(customers: int, end: datetime, seed: int) -> dict[str, object]:
    """A sample folded over 365 days with a row after every event, as the worker reads them."""
    sim = Simulation(customers, end - timedelta(days=KEEP_DAYS), end, seed=seed)
    events = [from_payload(o) for o in sim.events()]
    folded: dict[str, CustomerState] = {}
    started = time.perf_counter()
    for event in events:
        folded[event.customer_id] = apply(folded.get(event.customer_id), event)
    fold_s = time.perf_counter() - started
    read: dict[str, CustomerState] = {}
    started = time.perf_counter()
    for event in events:
        state = read[event.customer_id] = apply(read.get(event.customer_id), event)
        feature_row(state)
    both_s = time.perf_counter() - started
    return {
        "customers": len(folded),
        "days": KEEP_DAYS,
        "events": len(events),
        "apply_us_per_event": round(fold_s / len(events) * 1e6, 2),
        "apply_and_row_us_per_event": round(both_s / len(events) * 1e6, 2),
        **sizes(folded),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=60, help="history length to simulate")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--year-sample",
        type=int,
        default=2000,
        help="customers folded over 365 days for the year-long figures (0: none)",
    )
    parser.add_argument(
        "--state-only",
        action="store_true",
        help="fold straight from the simulator and measure only the state's size "
        "(for populations whose events do not fit in memory at once)",
    )
    args = parser.parse_args()

    end = datetime(2026, 6, 1, tzinfo=UTC)
    sim = Simulation(args.customers, end - timedelta(days=args.days), end, seed=args.seed)
    year = year_sample(args.year_sample, end, args.seed) if args.year_sample else None
    if args.state_only:
        print(orjson.dumps({**state_size(sim, args.days), "year_sample": year}).decode())
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
                **sizes(states),
                "year_sample": year,
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
