"""The event store on SQLite and PostgreSQL: idempotent appends, states, alerts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from churnwatch import store

TS = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _event(event_id: str, source: str = "purchases/0/1") -> dict:
    return {
        "event_id": event_id,
        "customer_id": "c1",
        "topic": "purchases",
        "type": "purchase",
        "ts": TS,
        "payload": {"event_id": event_id, "amount": 3.5},
        "source": source,
        "stored_at": TS,
    }


def test_append_is_idempotent_on_event_id(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        assert store.append_events(conn, [_event("a"), _event("b")]) == {"a", "b"}
    with engine.begin() as conn:
        assert store.append_events(conn, [_event("b"), _event("c")]) == {"c"}
        assert store.sources_of(conn, ["b"]) == {"b": "purchases/0/1"}
    assert store.count_rows(engine, store.events) == 3
    with engine.connect() as conn:
        row = conn.execute(sa.select(store.events).where(store.events.c.event_id == "a")).one()
    assert row.payload == {"event_id": "a", "amount": 3.5}
    # SQLite hands datetimes back naive; they were written in UTC
    assert (row.ts if row.ts.tzinfo else row.ts.replace(tzinfo=UTC)) == TS


def test_a_failed_transaction_stores_nothing(engine: sa.Engine) -> None:
    try:
        with engine.begin() as conn:
            store.append_events(conn, [_event("x")])
            raise RuntimeError("crash mid-batch")
    except RuntimeError:
        pass
    assert store.count_rows(engine, store.events) == 0


def test_states_upsert_and_load_by_partition(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        store.save_states(
            conn,
            [
                {"customer_id": "c1", "partition": 0, "state": {"n": 1}},
                {"customer_id": "c2", "partition": 1, "state": {"n": 2}},
            ],
        )
        store.save_states(conn, [{"customer_id": "c1", "partition": 0, "state": {"n": 5}}])
    with engine.connect() as conn:
        assert store.load_states(conn, [0]) == {"c1": {"n": 5}}
        assert store.load_states(conn) == {"c1": {"n": 5}, "c2": {"n": 2}}


def test_states_of_more_customers_than_one_query_carries_are_all_loaded(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store.states, "_IDS_PER_QUERY", 2)
    rows = [{"customer_id": f"c{i}", "partition": 0, "state": {"n": i}} for i in range(5)]
    with engine.begin() as conn:
        store.save_states(conn, rows)
    with engine.connect() as conn:
        loaded = store.load_states(conn, customer_ids=[f"c{i}" for i in (4, 0, 3, 1, 2, 9)])
    assert loaded == {f"c{i}": {"n": i} for i in range(5)}


def test_alerts_are_written_once(engine: sa.Engine) -> None:
    alert = {
        "alert_id": "a-1",
        "customer_id": "c1",
        "ts": TS,
        "score": 0.7,
        "risk_level": "high",
        "value_tier": "general",
        "reason": "needs_changed",
        "reason_codes": [{"indicator": "days_since_purchase", "value": 80.0}],
        "model_version": "rule-v1",
    }
    with engine.begin() as conn:
        assert store.add_alerts(conn, [alert]) == {"a-1"}
        assert store.add_alerts(conn, [alert]) == set()
    with engine.connect() as conn:
        row = conn.execute(sa.select(store.alerts)).one()
    assert row.status == "open"
    assert row.reason_codes == [{"indicator": "days_since_purchase", "value": 80.0}]


def test_tasks_once_and_an_alert_ends_once(engine: sa.Engine) -> None:
    alert = {
        "alert_id": "a-1",
        "customer_id": "c1",
        "ts": datetime(2026, 3, 1, tzinfo=UTC),
        "score": 0.7,
        "risk_level": "high",
        "value_tier": "general",
        "reason": "competitor",
        "reason_codes": [],
        "model_version": "rule-v3",
    }
    task = {
        "task_id": "t-1",
        "alert_id": "a-1",
        "customer_id": "c1",
        "ts": "2026-03-01T00:00:00+00:00",
        "action": "promotional coupon",
        "channel": "email",
        "priority": 3,
        "due_by": "2026-03-04T00:00:00+00:00",
        "owner_queue": "offers",
        "reason": "competitor",
        "value_tier": "general",
        "risk_level": "high",
    }
    with engine.begin() as conn:
        store.add_alerts(conn, [alert])
        assert store.add_tasks(conn, [task]) == {"t-1"}
        assert store.add_tasks(conn, [task]) == set()
        won = {"alert_id": "a-1", "status": "won_back", "ts": "2026-03-05T00:00:00+00:00"}
        store.end_alerts(conn, [won])
        store.end_alerts(conn, [{**won, "status": "expired", "ts": "2026-03-31T00:00:00+00:00"}])
    with engine.connect() as conn:
        a = conn.execute(sa.select(store.alerts)).one()
        t = conn.execute(sa.select(store.winback_tasks)).one()
    for row in (a, t):
        assert row.status == "won_back"
        assert row.ended_at.replace(tzinfo=UTC) == datetime(2026, 3, 5, tzinfo=UTC)
    assert t.due_by.replace(tzinfo=UTC) == datetime(2026, 3, 4, tzinfo=UTC) and t.priority == 3


def test_upgrade_twice_is_a_no_op(engine: sa.Engine) -> None:
    store.upgrade(engine)
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == "0013"
