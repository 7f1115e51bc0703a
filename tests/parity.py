"""What "nothing lost, nothing counted twice" means, checked against the plain fold."""

from __future__ import annotations

import sqlalchemy as sa

from churnwatch import store
from churnwatch.events import from_payload
from churnwatch.features.lifecycle import STAGES
from churnwatch.features.row import feature_row
from churnwatch.features.state import CustomerState, apply


def plain_fold(events: list[dict]) -> dict[str, CustomerState]:
    """The fold without Kafka or SQL, in event-time order: what replay computes."""
    states: dict[str, CustomerState] = {}
    for obj in sorted(events, key=lambda e: (e["ts"], e["event_id"])):
        event = from_payload(obj)
        states[event.customer_id] = apply(states.get(event.customer_id), event)
    return states


def assert_same_features(stored: dict[str, dict], expected: dict[str, CustomerState]) -> None:
    """Identical state and feature rows for every customer."""
    assert set(stored) == set(expected)
    for cid, want in expected.items():
        got = CustomerState.from_dict(stored[cid]["features"])
        assert got.to_dict() == want.to_dict(), cid
        assert feature_row(got) == feature_row(want), cid
        assert stored[cid]["lifecycle_stage"] in STAGES


def assert_stored_exactly_once(engine: sa.Engine, valid: list[dict]) -> None:
    """Every valid event stored once, each customer's state the plain fold's, one task per alert."""
    with engine.connect() as conn:
        ids = conn.execute(sa.select(store.events.c.event_id)).scalars().all()
        states = store.load_states(conn)
        alert_ids = conn.execute(sa.select(store.alerts.c.alert_id)).scalars().all()
        task_alerts = conn.execute(sa.select(store.winback_tasks.c.alert_id)).scalars().all()
    assert sorted(ids) == sorted(e["event_id"] for e in valid)
    assert_same_features(states, plain_fold(valid))
    assert sorted(task_alerts) == sorted(alert_ids)
