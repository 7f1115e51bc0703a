"""What the compiled and the pure build must agree on, printed as one JSON line.

``python -m tests.native_probe`` replays a simulated history through the lanes and
prints the build that ran, the alerts, tasks and changes it raised, and every
customer's folded state and feature row. tests/integration/test_native_parity.py
runs it once per build and compares the outputs byte for byte.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from churnwatch import native
from churnwatch.alerts.config import load_playbook, load_policy
from churnwatch.events import from_payload
from churnwatch.features.row import feature_row
from churnwatch.features.state import CustomerState, apply
from churnwatch.models.rule import RuleScorer
from churnwatch.offline.replay import replay_history
from churnwatch.sim.simulator import Simulation, records

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def outcome(customers: int = 150, events: int = 12_000) -> dict:
    """The replay's outcome and the fold's states over a simulated history."""
    sim = Simulation(customers, NOW - timedelta(days=400), NOW, seed=31, churn_share=0.5)
    history = [from_payload(orjson.loads(r.value)) for r in records(sim, bad_share=0, limit=events)]
    history.sort(key=lambda e: (e.epoch_s, e.event_id))
    replayed = replay_history(history, RuleScorer(), load_policy(), load_playbook(), partitions=4)
    states: dict[str, CustomerState] = {}
    for event in history:
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


if __name__ == "__main__":
    print(orjson.dumps(outcome(), option=orjson.OPT_SORT_KEYS).decode())
