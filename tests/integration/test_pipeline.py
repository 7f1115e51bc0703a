"""A batch through validation, store, fold and alerts — no broker needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.engine.pipeline import Pipeline
from churnwatch.features.row import feature_row
from churnwatch.features.state import CustomerState
from churnwatch.records import RawRecord
from churnwatch.streams.feed import CaseFilter, list_cases
from churnwatch.streams.outbox import pending
from churnwatch.topics import REKEYED
from churnwatch.winback.recording import Recorded, record_outcomes

NOW = datetime(2026, 6, 1, tzinfo=UTC)
T0 = NOW - timedelta(days=200)


def purchase(eid: str, day: float, amount: float = 50.0, cid: str = "c1") -> dict:
    return {
        "event_id": eid,
        "customer_id": cid,
        "ts": (T0 + timedelta(days=day)).isoformat(),
        "type": "purchase",
        "amount": amount,
        "currency": "EUR",
        "order_id": eid,
        "channel": "online",
    }


def login_event(eid: str, day: float, cid: str = "c1") -> dict:
    return {
        "event_id": eid,
        "customer_id": cid,
        "type": "login",
        "ts": (T0 + timedelta(days=day)).isoformat(),
    }


def rec(
    obj: object,
    offset: int,
    topic: str = "purchases",
    key: bytes | None = b"c1",
    partition: int = 0,
) -> RawRecord:
    value = obj if isinstance(obj, bytes) else orjson.dumps(obj)
    return RawRecord(topic=topic, partition=partition, offset=offset, key=key, value=value)


def processor(engine: sa.Engine) -> Pipeline:
    return Pipeline(engine, max_future_s=3600, allowed_lateness_s=7 * 86400, clock=lambda: NOW)


def test_bad_records_are_dead_lettered_and_their_neighbours_kept(engine: sa.Engine) -> None:
    batch = [
        rec(purchase("e1", 0), 0),
        rec(b"{oops", 1),
        rec([1, 2], 2),
        rec({k: v for k, v in purchase("e2", 1).items() if k != "customer_id"}, 3),
        rec({**purchase("e3", 2), "amount": "ten"}, 4),
        rec({**purchase("e4", 3), "amount": -1}, 5),
        rec({**purchase("e5", 4), "type": "gift"}, 6),
        rec({**purchase("e6", 5), "ts": (NOW + timedelta(days=30)).isoformat()}, 7),
        rec({**purchase("e1", 6), "amount": 999.0}, 8),  # reuses e1's id
        rec(b"\xff\x00binary", 9),
        rec(purchase("e7", 7), 10),
    ]
    result = processor(engine).process(batch)
    assert result.stored == 2
    errors = {d.offset: d.error for d in result.dead_letters}
    assert sorted(errors) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert errors[1].startswith("not valid JSON")
    assert errors[2] == "value must be a JSON object, got an array"
    assert errors[3] == "customer_id: Field required"
    assert errors[4].startswith("amount: Input should be a valid number")
    assert errors[5].startswith("amount: Input should be greater than 0")
    assert errors[6].startswith("unknown type 'gift' on topic purchases")
    assert "in the future" in errors[7]
    assert errors[8] == "duplicate event_id 'e1': already stored from purchases/0/0"
    letter = next(d for d in result.dead_letters if d.offset == 9)
    assert letter.raw_encoding == "base64" and letter.source_topic == "purchases"
    assert next(d for d in result.dead_letters if d.offset == 1).raw == "{oops"
    assert store.count_rows(engine, store.events) == 2
    row = feature_row(CustomerState.from_dict(result.states["c1"]["features"]))
    assert (row["frequency_365d"], row["monetary_365d"]) == (2, 100.0)


def test_redelivery_is_a_no_op_and_a_reused_id_is_reported(engine: sa.Engine) -> None:
    proc = processor(engine)
    batch = [rec(purchase("e1", 0), 0), rec(purchase("e2", 1), 1)]
    first = proc.process(batch)
    assert first.stored == 2
    again = proc.process(batch)
    assert (again.stored, again.redelivered, again.dead_letters, again.states) == (0, 2, [], {})
    clash = proc.process([rec({**purchase("e2", 3), "amount": 7.0}, 5)])
    assert clash.stored == 0
    assert clash.dead_letters[0].error == (
        "duplicate event_id 'e2': already stored from purchases/0/1"
    )
    assert store.count_rows(engine, store.events) == 2


def test_state_and_alerts_follow_the_rule(engine: sa.Engine) -> None:
    proc = processor(engine)
    login = login_event("l1", 60)
    complaint = {
        "event_id": "k1",
        "customer_id": "c1",
        "type": "complaint_opened",
        "ts": (T0 + timedelta(days=100)).isoformat(),
        "complaint_id": "k1",
        "category": "communication",
        "severity": 3,
    }
    # one batch per event: each is scored as of the customer's newest event
    results = [
        proc.process([rec(purchase("e1", 0, 40.0), 0)]),
    ]
    for event, topic in ((login, "engagement"), (complaint, "complaints")):
        results.append(proc.process([rec(event, 0, topic)]))
    result = results[-1]
    # Day 60: c1 turns cooling (a lone purchase: 60 days at most) before the
    # login of that moment counts: 60/90*0.7 = 0.4667 -> watch, raised by the
    # silence; the login's own score is the same level, so no second alert.
    # Day 90: lapsed, 0.7 -> high, raised by the silence when the complaint of
    # day 100 arrives, which then scores 0.7 + 0.3 * 1/(0+1) = 1.0 -> critical.
    alerts = [a for r in results for a in r.alerts]
    assert [(a["risk_level"], a["score"], a["reason"], a["trigger"]) for a in alerts] == [
        ("watch", 0.4667, "needs_changed", "cooling@2026-01-12T00:00:00+00:00"),
        ("high", 0.7, "needs_changed", "lapsed@2026-02-11T00:00:00+00:00"),
        ("critical", 1.0, "communication", "k1"),
    ]
    assert result.states["c1"]["alert"][:2] == [alerts[2]["alert_id"], "critical"]
    # cases: the watch alert's expired before the high one opened the second case,
    # which the critical one escalated; each task carries its alert's case
    first, second = alerts[0]["alert_id"], alerts[1]["alert_id"]
    assert [a["case_id"] for a in alerts] == [first, second, second]
    # no profile yet: the channel of the purchase is the one segment known, on alert and task
    known = {"region": None, "industry": None, "channel": "online", "segment": None}
    assert all(a["segments"] == known for a in alerts)
    assert result.states["c1"]["alert"][-1] == second
    with engine.connect() as conn:
        rows = conn.execute(sa.select(store.alerts.c.alert_id, store.alerts.c.value_tier)).all()
        states = store.load_states(conn)
    assert {r.alert_id for r in rows} == {a["alert_id"] for a in alerts}
    assert {r.value_tier for r in rows} == {"potential"}  # a lone buyer is the median
    # one playbook task per alert: communication for a potential customer
    tasks = [t for r in results for t in r.tasks]
    assert [(t["alert_id"], t["owner_queue"]) for t in tasks] == [
        (alerts[0]["alert_id"], "personalisation"),
        # the default playbook holds out one case in ten: the second case is one, by the
        # hash of its customer, case and salt, so both its tasks are the control's
        (alerts[1]["alert_id"], "holdout"),
        (alerts[2]["alert_id"], "holdout"),
    ]
    assert [(t["action"], t["channel"]) for t in tasks[1:]] == [("holdout", "none")] * 2
    assert store.count_rows(engine, store.winback_tasks) == 3
    # stored, and never offered to the CRM: the outbox holds only the first case's task
    assert [t["task_id"] for t in pending(engine, [0, 1, 2, 3]).tasks] == [tasks[0]["task_id"]]
    assert [t["case_id"] for t in tasks] == [first, second, second]
    assert all(t["segments"] == known for t in tasks)
    with engine.connect() as conn:
        cases = list_cases(conn, CaseFilter(status="all"))["cases"]
    assert [(c["case_id"], c["alert_id"], c["alerts_in_case"]) for c in cases] == [
        (second, alerts[2]["alert_id"], 2),
        (first, first, 1),
    ]
    # the watch alert of day 60 expired 30 days later, just before the high one;
    # the critical one escalated the high one
    assert results[-1].endings == [
        {"alert_id": alerts[0]["alert_id"], "status": "expired", "ts": "2026-02-11T00:00:00+00:00"},
        {"alert_id": alerts[1]["alert_id"], "status": "escalated", "ts": alerts[2]["ts"]},
    ]
    assert states["c1"] == result.states["c1"]
    # a purchase re-arms the customer
    later = proc.process([rec(purchase("e2", 101), 1)])
    assert later.states["c1"]["alert"][0] is None and later.alerts == []
    assert later.endings == [
        {"alert_id": alerts[2]["alert_id"], "status": "won_back", "ts": purchase("e2", 101)["ts"]}
    ]


def test_misrouted_records_are_rekeyed_once(engine: sa.Engine) -> None:
    proc = processor(engine)
    wrong_key = rec(purchase("e1", 0), 3, key=b"someone-else")
    result = proc.process([wrong_key, rec(purchase("e2", 0, cid="c2"), 4, key=None)])
    assert [(cid, r.offset) for cid, r in result.misrouted] == [("c1", 3), ("c2", 4)]
    assert result.stored == 0
    forwarded = RawRecord(
        topic=REKEYED,
        partition=1,
        offset=0,
        key=b"c1",
        value=wrong_key.value,
        origin_topic="purchases",
        origin="purchases/0/3",
    )
    done = proc.process([forwarded])
    assert done.stored == 1 and done.misrouted == []
    with engine.connect() as conn:
        assert store.sources_of(conn, ["e1"]) == {"e1": "purchases/0/3"}
        topic = conn.execute(sa.select(store.events.c.topic)).scalar_one()
    assert topic == "purchases"


def test_too_late_events_are_dead_lettered_and_not_stored(engine: sa.Engine) -> None:
    proc = processor(engine)
    proc.process([rec(purchase("e1", 100), 0)])
    late = proc.process(
        [rec(purchase("e2", 93), 1), rec(purchase("e3", 92.9), 2), rec(purchase("e4", 50), 3)]
    )
    assert late.stored == 1  # e2: exactly 7 days behind
    assert [d.offset for d in late.dead_letters] == [2, 3]
    assert late.dead_letters[0].error == (
        "too late: ts 2026-02-13T21:36:00+00:00 is 170.4 h before the newest event of "
        "customer 'c1' (2026-02-21T00:00:00+00:00); allowed lateness 168.0 h"
    )
    with engine.connect() as conn:
        ids = conn.execute(sa.select(store.events.c.event_id)).scalars().all()
    assert sorted(ids) == ["e1", "e2"]


def test_silent_customers_age_in_stream_time(engine: sa.Engine) -> None:
    proc = processor(engine)
    # c1 buys every 10 days until day 20; c2 keeps the stream moving until day 78
    for i, day in enumerate((0, 10, 20)):
        proc.process([rec(purchase(f"a{i}", day), i)])
    results = [
        proc.process([rec(purchase(f"b{i}", day, cid="c2"), 100 + i, key=b"c2")])
        for i, day in enumerate(range(21, 81, 3))
    ]
    moves = [
        (c["to_value"], c["ts"][:10])
        for r in results
        for c in r.changes
        if c["customer_id"] == "c1" and c["field"] == "lifecycle_stage"
    ]
    # new ends on day 30; a 10-day gap makes c1 cooling after 20 idle days, at risk
    # after 30: each move is made by the first of c2's events at or after it
    assert moves == [
        ("active", "2025-12-13"),
        ("cooling", "2025-12-23"),
        ("at_risk", "2026-01-02"),
    ]
    assert proc.committer.records["c1"].stage == "at_risk"
    # rescored at each move; at risk after 30 idle days -> 0.2333, below every threshold
    assert [a for r in results for a in r.alerts if a["customer_id"] == "c1"] == []
    with engine.connect() as conn:
        stored = (
            conn.execute(
                sa.select(store.customer_changes.c.to_value)
                .where(store.customer_changes.c.customer_id == "c1")
                .where(store.customer_changes.c.field == "lifecycle_stage")
                .order_by(store.customer_changes.c.ts)
            )
            .scalars()
            .all()
        )
        stage = conn.execute(
            sa.select(store.customer_state.c.lifecycle_stage).where(
                store.customer_state.c.customer_id == "c1"
            )
        ).scalar_one()
    assert stored == ["new", "active", "cooling", "at_risk"] and stage == "at_risk"

    # a restarted worker rebuilds its wake-ups and tiers from the stored rows
    fresh = processor(engine)
    assert fresh.reload() == 2
    lane, reloaded = proc.committer.lanes[0], fresh.committer.lanes[0]
    assert reloaded.stream_time == lane.stream_time == (T0 + timedelta(days=78)).timestamp()
    assert len(reloaded.population) == 2
    # nothing is due for c1 until it lapses on day 110
    quiet = fresh.process([rec(purchase("b100", 109, cid="c2"), 200, key=b"c2")])
    assert [c for c in quiet.changes if c["customer_id"] == "c1"] == []
    lapsed = fresh.process([rec(purchase("b101", 111, cid="c2"), 201, key=b"c2")])
    assert [(c["customer_id"], c["to_value"], c["ts"][:10]) for c in lapsed.changes] == [
        ("c1", "lapsed", "2026-03-03")
    ]


def test_a_reload_reads_standings_and_rows_saved_before_them_alike(engine: sa.Engine) -> None:
    proc = processor(engine)
    proc.process([rec(purchase("e1", 0), 0), rec(purchase("e2", 5), 1)])
    proc.process([rec(purchase("b1", 30, cid="c2"), 2, key=b"c2")])
    fresh = processor(engine)
    assert fresh.reload() == 2
    assert fresh.committer.records == {}  # records are read when a batch needs them
    with engine.begin() as conn:  # as rows saved before migration 0011 are
        conn.execute(sa.update(store.customer_state).values(dict.fromkeys(store.STANDING_COLUMNS)))
    old = processor(engine)
    assert old.reload() == 2

    def lane(p: Pipeline) -> tuple:
        t = p.committer.lanes[0]
        scores = {cid: t.population.value_score(cid) for cid in ("c1", "c2")}
        return t.stream_time, scores, t._scheduled  # the wake-ups, exactly

    assert lane(fresh) == lane(old)
    # the running lane ranks against its snapshot of the day, a restarted one afresh
    assert lane(fresh)[::2] == lane(proc)[::2] and lane(proc)[2] != {}


def test_a_customer_missing_from_the_hot_copy_is_read_from_the_store(engine: sa.Engine) -> None:
    processor(engine).process([rec(purchase("e1", 0), 0), rec(purchase("e2", 5), 1)])
    cold = processor(engine)  # say, a batch arrives before the rebalance reload ran
    result = cold.process([rec(purchase("e3", 10), 2)])
    state = CustomerState.from_dict(result.states["c1"]["features"])
    assert (state.purchase_count, state.first_purchase_s) == (3, (T0).timestamp())
    assert cold.committer.records["c1"].row() == result.states["c1"]


def test_a_batch_that_fails_to_commit_changes_nothing_and_its_retry_counts_once(
    engine: sa.Engine, monkeypatch
) -> None:
    proc = processor(engine)
    proc.process([rec(purchase("e1", 0), 0)])
    before = proc.committer.records["c1"].row()
    real_add_changes = store.add_changes
    failures = iter([True])

    def flaky(conn, rows):  # the store fails once, after the state rows were written
        if next(failures, False):
            raise sa.exc.OperationalError("INSERT", {}, Exception("connection lost"))
        return real_add_changes(conn, rows)

    monkeypatch.setattr(store, "add_changes", flaky)
    batch = [rec(purchase("e2", 40), 1)]  # 40 idle days: the stage changes too
    with pytest.raises(sa.exc.OperationalError):
        proc.process(batch)
    assert store.count_rows(engine, store.events) == 1
    with engine.connect() as conn:
        assert store.load_states(conn)["c1"] == before
    again = proc.process(batch)
    assert again.stored == 1
    assert CustomerState.from_dict(again.states["c1"]["features"]).purchase_count == 2
    with engine.connect() as conn:
        stored = store.load_states(conn)["c1"]
    assert stored == proc.committer.records["c1"].row() == again.states["c1"]


def test_a_late_event_never_publishes_a_silence_alert_twice(engine: sa.Engine) -> None:
    proc = Pipeline(engine, max_future_s=3600, allowed_lateness_s=365 * 86400, clock=lambda: NOW)
    for i, day in enumerate((0, 10, 20)):
        proc.process([rec(purchase(f"a{i}", day), i)])
    first = proc.process([rec(purchase("b1", 115, cid="c2"), 100, key=b"c2")])
    # lapsed 90 days after the last purchase: 0.7 -> a high alert, triggered by the move
    assert [(a["customer_id"], a["risk_level"], a["trigger"][:17]) for a in first.alerts] == [
        ("c1", "high", "lapsed@2026-03-03")
    ]
    # A login from day 30 arrives late: as of day 30 c1 was active, so silence
    # re-derives the same moves and the same alert, which must not go out again.
    login = login_event("late", 30)
    late = proc.process([rec(login, 3, topic="engagement")])
    assert late.states["c1"]["lifecycle_stage"] == "active" and late.alerts == []
    # the next event in stream time wakes c1 again
    again = proc.process([rec(purchase("b2", 116, cid="c2"), 101, key=b"c2")])
    assert again.alerts == []
    assert [c["to_value"] for c in again.changes if c["customer_id"] == "c1"] == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.alerts)).scalar() == 1


def _alerted(engine: sa.Engine) -> tuple[Pipeline, dict, dict]:
    """c1 bought on day 0 and is alerted (watch) by a login on day 60."""
    proc = processor(engine)
    proc.process([rec(purchase("e1", 0), 0)])
    login = login_event("l1", 60)
    result = proc.process([rec(login, 1, topic="engagement")])
    (alert,), (task,) = result.alerts, result.tasks
    return proc, alert, task


def _statuses(engine: sa.Engine, alert_id: str) -> tuple[tuple, tuple]:
    """(status, ended_at) of the alert and of its task."""
    out = []
    with engine.connect() as conn:
        for table in (store.alerts, store.winback_tasks):
            query = sa.select(table.c.status, table.c.ended_at).where(table.c.alert_id == alert_id)
            out.append(tuple(conn.execute(query).one()))
    return out[0], out[1]


def outcome(task_id: str, status: str, day: float, offset: int) -> RawRecord:
    value = {"task_id": task_id, "status": status, "ts": (T0 + timedelta(days=day)).isoformat()}
    return rec(value, offset, topic="winback-outcomes", key=None)


def crm(engine: sa.Engine, records: list[RawRecord]) -> Recorded:
    """CRM reports recorded at the test's clock."""
    return record_outcomes(engine, records, clock=lambda: NOW)


def test_crm_outcomes_move_tasks_and_alerts_and_bad_ones_are_dead_letters(
    engine: sa.Engine,
) -> None:
    _, _, task = _alerted(engine)
    tid = task["task_id"]
    first = crm(
        engine,
        [
            outcome(tid, "contacted", 61, 0),
            rec(b"{nope", 1, topic="winback-outcomes", key=None),
            rec({"task_id": tid, "status": "maybe", "ts": 1.8e12}, 2, "winback-outcomes", None),
            outcome("no-such-task", "done", 61, 3),
            outcome(tid, "done", 202, 5),  # two days after the clock
        ],
    )
    assert first.stored == 1
    errors = [d.error for d in first.dead_letters]
    assert errors[0].startswith("not valid JSON")
    assert errors[1].startswith("status: Input should be 'contacted', 'accepted'")
    assert errors[2] == "ts: 2026-06-03T00:00:00+00:00 is 48.0 h in the future (limit 24.0 h)"
    assert errors[3] == "unknown task_id 'no-such-task': no win-back task has it"
    assert {d.source_topic for d in first.dead_letters} == {"winback-outcomes"}
    assert _statuses(engine, task["alert_id"]) == (("in_progress", None), ("in_progress", None))
    # the same report again changes nothing; a decline ends task and alert as lost
    assert crm(engine, [outcome(tid, "contacted", 61, 0)]).stored == 0
    crm(engine, [outcome(tid, "declined", 62, 4)])
    (a_status, a_end), (t_status, t_end) = _statuses(engine, task["alert_id"])
    assert a_status == t_status == "lost"
    assert a_end.replace(tzinfo=UTC) == t_end.replace(tzinfo=UTC) == T0 + timedelta(days=62)
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(store.winback_outcomes)).scalar()
            == 2
        )


def test_worked_on_but_no_purchase_before_expiry_is_lost_and_a_purchase_wins_back(
    engine: sa.Engine,
) -> None:
    proc, _, task = _alerted(engine)
    crm(engine, [outcome(task["task_id"], "done", 61, 0)])
    # a login 31 days after the alert: the alert expired on day 90, while in progress
    late_login = login_event("l2", 91)
    result = proc.process([rec(late_login, 2, topic="engagement")])
    assert result.endings[0]["status"] == "expired"
    assert [s for s, _ in _statuses(engine, task["alert_id"])] == ["lost", "lost"]

    engine2 = engine  # a second customer on the same store: bought back within the window
    proc2 = processor(engine2)
    proc2.process([rec(purchase("x1", 0, cid="c2"), 10, key=b"c2")])
    login = login_event("x2", 60, cid="c2")
    raised = proc2.process([rec(login, 11, topic="engagement", key=b"c2")])
    crm(engine, [outcome(raised.tasks[0]["task_id"], "contacted", 61, 12)])
    back = proc2.process([rec(purchase("x3", 70, cid="c2"), 13, key=b"c2")])
    assert back.endings == [
        {
            "alert_id": raised.alerts[0]["alert_id"],
            "status": "won_back",
            "ts": purchase("x3", 70)["ts"],
        }
    ]
    with engine.connect() as conn:
        status = conn.execute(
            sa.select(store.winback_tasks.c.status).where(store.winback_tasks.c.customer_id == "c2")
        ).scalar_one()
    assert status == "won_back"


def test_the_same_events_twice_add_no_alert_and_no_task(engine: sa.Engine) -> None:
    proc, alert, task = _alerted(engine)
    login = login_event("l1", 60)
    # redelivered from the same place, and sent again from elsewhere
    again = proc.process(
        [rec(purchase("e1", 0), 0), rec(login, 1, topic="engagement"), rec(login, 7, "engagement")]
    )
    assert again.alerts == [] and again.tasks == [] and again.redelivered == 2
    assert [d.error[:26] for d in again.dead_letters] == ["duplicate event_id 'l1': a"]
    restarted = processor(engine)  # a new worker on the same store
    restarted.reload()
    assert restarted.process([rec(login, 1, topic="engagement")]).alerts == []
    with engine.connect() as conn:
        alert_ids = conn.execute(sa.select(store.alerts.c.alert_id)).scalars().all()
        task_ids = conn.execute(sa.select(store.winback_tasks.c.task_id)).scalars().all()
    assert (alert_ids, task_ids) == ([alert["alert_id"]], [task["task_id"]])
