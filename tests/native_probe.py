"""What the compiled and the pure build must agree on, printed as one JSON line.

``python -m tests.native_probe`` replays a simulated history through the lanes and
prints the build that ran, the alerts, tasks and changes it raised, and every
customer's folded state and feature row. tests/integration/test_native_parity.py
runs it once per build and compares the outputs byte for byte.

It also gives the instruction counts the builds are compared by (docs/benchmarks.md):
``--events N`` sizes the history, and ``--simulate-only`` stops once the history is
simulated and decoded, so that the difference of the two counts is the replay alone.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import orjson

from churnwatch import native
from churnwatch.alerts.config import load_playbook, load_policy
from churnwatch.events import Event, from_payload
from churnwatch.features.row import feature_row
from churnwatch.features.state import CustomerState, apply
from churnwatch.models.rule import RuleScorer
from churnwatch.offline.replay import replay_history
from churnwatch.sim.simulator import Simulation, records

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def history(customers: int, events: int) -> list[Event]:
    """A simulated history, decoded and in event-time order."""
    sim = Simulation(customers, NOW - timedelta(days=400), NOW, seed=31, churn_share=0.5)
    decoded = [from_payload(orjson.loads(r.value)) for r in records(sim, bad_share=0, limit=events)]
    return sorted(decoded, key=lambda e: (e.epoch_s, e.event_id))


def outcome(events: list[Event]) -> dict:
    """The replay's outcome and the fold's states over ``events``."""
    replayed = replay_history(events, RuleScorer(), load_policy(), load_playbook(), partitions=4)
    states: dict[str, CustomerState] = {}
    for event in events:
        states[event.customer_id] = apply(states.get(event.customer_id), event)
    return {
        "build": native.BUILD,
        "events": replayed.replayed,
        "alerts": replayed.alerts,
        "tasks": replayed.tasks,
        "changes": replayed.changes,
        "states": {cid: state.to_dict() for cid, state in sorted(states.items())},
        "rows": {cid: feature_row(state) for cid, state in sorted(states.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=150)
    parser.add_argument("--events", type=int, default=12_000)
    parser.add_argument("--simulate-only", action="store_true", help="no replay: the baseline")
    args = parser.parse_args()
    events = history(args.customers, args.events)
    if args.simulate_only:
        print(orjson.dumps({"build": native.BUILD, "events": len(events)}).decode())
        return
    print(orjson.dumps(outcome(events), option=orjson.OPT_SORT_KEYS).decode())


if __name__ == "__main__":
    main()
