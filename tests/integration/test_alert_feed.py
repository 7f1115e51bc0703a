"""What the live page and its API read and write, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.engine.customer import CustomerRecord
from churnwatch.features.state import CustomerState, apply
from churnwatch.streams.feed import (
    UNASSIGNED,
    AlertFilter,
    BadParameter,
    CaseFilter,
    FeedCursor,
    acknowledge,
    alerts_since,
    assign,
    case_view,
    customer_view,
    list_alerts,
    list_cases,
    list_tasks,
)
from tests.builders import ev, store_rows

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _alert(aid: str, tier: str, reason: str, created: datetime) -> dict:
    return {
        "alert_id": aid,
        "customer_id": f"cust-{aid}",
        "ts": created - timedelta(days=1),
        "score": 0.7,
        "risk_level": "high",
        "value_tier": tier,
        "reason": reason,
        "reason_codes": [{"indicator": "days_since_purchase", "value": 40.0}],
        "model_version": "rule",
        "created_at": created,
    }


@pytest.fixture
def feed_engine(engine: sa.Engine) -> sa.Engine:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(store.alerts),
            [
                _alert("a1", "high", "competitor", T0),
                _alert("a2", "general", "competitor", T0 + timedelta(seconds=1)),
                _alert("a3", "high", "communication", T0 + timedelta(seconds=2)),
            ],
        )
    return engine


def test_filters_newest_first_and_limits(feed_engine: sa.Engine) -> None:
    with feed_engine.connect() as conn:
        ids = [a["alert_id"] for a in list_alerts(conn, AlertFilter())]
        high = list_alerts(conn, AlertFilter(tiers=("high",)))
        both = list_alerts(conn, AlertFilter(tiers=("high",), reasons=("competitor",)))
        one = list_alerts(conn, AlertFilter(limit=1))
    assert ids == ["a3", "a2", "a1"]
    assert [a["alert_id"] for a in high] == ["a3", "a1"]
    assert [a["alert_id"] for a in both] == ["a1"]
    assert [a["alert_id"] for a in one] == ["a3"]
    assert high[0]["created_at"] == T0 + timedelta(seconds=2)  # aware, on both stores
    assert high[0]["reason_codes"] == [{"indicator": "days_since_purchase", "value": 40.0}]
    with pytest.raises(BadParameter, match="limit: must lie between 1 and 1000"):
        AlertFilter(limit=0)


def test_the_first_acknowledgement_is_kept(feed_engine: sa.Engine) -> None:
    with feed_engine.begin() as conn:
        first = acknowledge(conn, "a2", "ann", T0 + timedelta(hours=1))
        again = acknowledge(conn, "a2", "bob", T0 + timedelta(hours=2))
        assert acknowledge(conn, "nope", "ann", T0) is None
    assert first == again
    assert first == {
        "alert_id": "a2",
        "acknowledged_at": T0 + timedelta(hours=1),
        "acknowledged_by": "ann",
    }
    with feed_engine.connect() as conn:
        acked = list_alerts(conn, AlertFilter(status="acknowledged"))
        not_acked = list_alerts(conn, AlertFilter(status="unacknowledged"))
    assert [a["alert_id"] for a in acked] == ["a2"]
    assert [a["alert_id"] for a in not_acked] == ["a3", "a1"]


def test_the_cursor_hands_each_alert_out_once_even_when_commits_cross(
    feed_engine: sa.Engine,
) -> None:
    cursor = FeedCursor(since=T0, overlap=timedelta(seconds=30))
    with feed_engine.connect() as conn:
        first = cursor.take(alerts_since(conn, cursor.poll_from, AlertFilter()))
    assert [a["alert_id"] for a in first] == ["a1", "a2", "a3"]
    # another worker commits an alert stamped before the newest one seen
    with feed_engine.begin() as conn:
        late = _alert("a0", "high", "competitor", T0 - timedelta(seconds=5))
        conn.execute(sa.insert(store.alerts), [late])
    with feed_engine.connect() as conn:
        second = cursor.take(alerts_since(conn, cursor.poll_from, AlertFilter()))
        third = cursor.take(alerts_since(conn, cursor.poll_from, AlertFilter()))
    assert [a["alert_id"] for a in second] == ["a0"]
    assert third == []
    assert cursor.since == T0 + timedelta(seconds=2)


def test_customer_view_reads_the_stored_state(engine: sa.Engine) -> None:
    state = CustomerState("c1")
    history = [
        ev(1, "purchase", amount=20.0),
        ev(3, "purchase", amount=30.0),
        ev(4, "complaint_opened", complaint_id="k1", category="price", severity=2),
    ]
    for event in history:
        apply(state, event)
    record = CustomerRecord(state, stage="active", value_tier="potential", score=0.25)
    with engine.begin() as conn:
        store.append_events(conn, store_rows(history, T0))
        store.save_states(
            conn,
            [
                {
                    "customer_id": "c1",
                    "partition": 0,
                    "state": record.row(),
                    "lifecycle_stage": "active",
                    "value_tier": "potential",
                    "score": 0.25,
                    "scored_at": T0,
                }
            ],
        )
    with engine.connect() as conn:
        view = customer_view(conn, "c1")
        assert customer_view(conn, "nobody") is None
    assert view is not None
    assert (view["lifecycle_stage"], view["value_tier"], view["score"]) == (
        "active",
        "potential",
        0.25,
    )
    assert view["scored_at"] == T0
    assert view["features"]["frequency_365d"] == 2
    assert view["features"]["monetary_365d"] == 50.0
    assert view["alerts"] == []
    # the recent events, newest first, and what gives the reasons their points now
    assert [(e["type"], e["payload"].get("amount")) for e in view["events"]] == [
        ("complaint_opened", None),
        ("purchase", 30.0),
        ("purchase", 20.0),
    ]
    assert view["events"][0]["ts"] == history[2].ts
    assert view["evidence"] == [
        {
            "reason": "competitor",
            "text": "price complaints in 90 days",
            "feature": "complaints_90d_price",
            "value": 1,
            "points": 2.0,
        }
    ]


def _case_alert(aid: str, case: str, level: str, day: int, **fields: object) -> dict:
    customer = f"cust-{case[0]}"
    return {
        **_alert(aid, "high", "competitor", T0 + timedelta(days=day)),
        "case_id": case,
        "customer_id": customer,
        "risk_level": level,
        "status": "open",
        "ended_at": None,
        "segments": {"region": "south" if case[0] == "y" else "north", "channel": "online"},
        **fields,
    }


@pytest.fixture
def case_engine(engine: sa.Engine) -> sa.Engine:
    ended = {"ended_at": T0 + timedelta(days=9)}
    rows = [
        # x: watch escalated to high, still open: one case of two alerts
        _case_alert("x1", "x1", "watch", 1, status="escalated", value_at_risk=10.0, **ended),
        _case_alert("x2", "x1", "high", 2, value_at_risk=50.0, reason="service_quality"),
        # y: a case won back, then a new one open
        _case_alert("y1", "y1", "critical", 1, status="won_back", value_at_risk=90.0, **ended),
        _case_alert("y2", "y2", "watch", 20, value_at_risk=80.0, value_tier="general"),
        # z: expired
        _case_alert("z1", "z1", "high", 3, status="expired", value_at_risk=70.0, **ended),
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(store.alerts), rows)
    return engine


def test_cases_one_row_per_case_open_by_default_with_counts(case_engine: sa.Engine) -> None:
    with case_engine.connect() as conn:
        opened = list_cases(conn, CaseFilter())
        closed = list_cases(conn, CaseFilter(status="closed"))
        every = list_cases(conn, CaseFilter(status="all"))
        high = list_cases(conn, CaseFilter(levels=("high",), status="all"))
        found = list_cases(conn, CaseFilter(search="cust-y", status="all"))
        won = list_cases(conn, CaseFilter(status="won_back"))
        south = list_cases(conn, CaseFilter(status="all", segments=(("region", "south"),)))
        either = list_cases(conn, CaseFilter(segments=(("region", "south"), ("region", "north"))))
        x = case_view(conn, "x1")
        assert case_view(conn, "nope") is None
    # y2 (80) before x (50), most value at risk first; x's row is its latest alert
    assert [(c["case_id"], c["alert_id"]) for c in opened["cases"]] == [("y2", "y2"), ("x1", "x2")]
    x_row = opened["cases"][1]
    assert (x_row["risk_level"], x_row["reason"], x_row["alerts_in_case"]) == (
        "high",
        "service_quality",
        2,
    )
    assert x_row["opened_at"] == T0 + timedelta(days=1) - timedelta(days=1)
    assert opened["counts"] == {
        "value_tier": {"general": 1, "high": 1},
        "reason": {"competitor": 1, "service_quality": 1},
        "risk_level": {"high": 1, "watch": 1},
        "region": {"north": 1, "south": 1},
        "industry": {},
        "channel": {"online": 2},
        "segment": {},
        "owner": {UNASSIGNED: 2},
        "status": {"open": 2, "won_back": 1, "expired": 1},
    }
    assert opened["cases"][0]["segments"] == {"region": "south", "channel": "online"}
    assert [c["case_id"] for c in closed["cases"]] == ["y1", "z1"]
    assert [c["case_id"] for c in every["cases"]] == ["y1", "y2", "z1", "x1"]
    assert [c["case_id"] for c in high["cases"]] == ["z1", "x1"]
    assert [c["case_id"] for c in found["cases"]] == ["y1", "y2"]
    assert found["counts"]["status"] == {"open": 1, "won_back": 1}
    assert [c["case_id"] for c in won["cases"]] == ["y1"]
    assert [c["case_id"] for c in south["cases"]] == ["y1", "y2"]
    assert [c["case_id"] for c in either["cases"]] == ["y2", "x1"]
    assert x is not None and [a["alert_id"] for a in x["alerts"]] == ["x1", "x2"]
    assert x["owner"] is None
    assert (x["status"], x["customer_id"]) == ("open", "cust-x")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"status": "bogus"}, "status: unknown value 'bogus'; one of open, closed, all"),
        ({"tiers": ("nosuch",)}, "tier: unknown value 'nosuch'; one of high, potential, general"),
        ({"levels": ("severe",)}, "level: unknown value 'severe'"),
        ({"reasons": ("price",)}, "reason: unknown value 'price'"),
        ({"segments": (("planet", "mars"),)}, "segment dimension: unknown value 'planet'"),
        ({"limit": 0}, "limit: must lie between 1 and 1000"),
    ],
)
def test_a_case_filter_refuses_what_no_case_can_have(given: dict, message: str) -> None:
    with pytest.raises(BadParameter, match=message):
        CaseFilter(**given)


@pytest.mark.parametrize(
    ("given", "parameter"),
    [
        ({"status": "bogus"}, "status"),
        ({"tiers": ("high", "nosuch")}, "tier"),
        ({"reasons": ("price",)}, "reason"),
        ({"limit": 1001}, "limit"),
    ],
)
def test_an_alert_filter_refuses_what_no_alert_can_have(given: dict, parameter: str) -> None:
    with pytest.raises(BadParameter) as refused:
        AlertFilter(**given)
    assert refused.value.parameter == parameter
    assert str(refused.value).startswith(f"{parameter}: ")


def test_a_task_list_refuses_an_unknown_status(feed_engine: sa.Engine) -> None:
    with feed_engine.connect() as conn, pytest.raises(BadParameter) as refused:
        list_tasks(conn, "bogus")
    assert refused.value.parameter == "status" and "in_progress" in refused.value.allowed


def test_a_case_is_assigned_kept_through_escalation_and_filtered_by_owner(
    case_engine: sa.Engine,
) -> None:
    later = T0 + timedelta(hours=1)
    with case_engine.begin() as conn:
        given = assign(conn, "x1", " ann ", "lead", T0)
        assign(conn, "y2", "bob", "lead", T0)
        assign(conn, "y2", "ann", "lead", later)  # reassigned
        assert assign(conn, "nope", "ann", "lead", T0) is None
        with pytest.raises(ValueError, match="at most 200 characters"):
            assign(conn, "x1", "a" * 201, "lead", T0)
        with pytest.raises(ValueError, match="names no one"):
            assign(conn, "x1", UNASSIGNED, "lead", T0)
    assert given == {"case_id": "x1", "owner": "ann", "assigned_by": "lead", "assigned_at": T0}
    with case_engine.connect() as conn:
        anns = list_cases(conn, CaseFilter(owners=("ann",)))
        nobody = list_cases(conn, CaseFilter(status="all", owners=(UNASSIGNED,)))
        assert case_view(conn, "y2")["owner"] == "ann"  # type: ignore[index]
    assert [(c["case_id"], c["owner"]) for c in anns["cases"]] == [("y2", "ann"), ("x1", "ann")]
    assert anns["counts"]["owner"] == {"ann": 2}
    assert [c["case_id"] for c in nobody["cases"]] == ["y1", "z1"]
    with case_engine.begin() as conn:
        assert assign(conn, "x1", "", "lead", later)["owner"] is None  # type: ignore[index]
        counts = list_cases(conn, CaseFilter())["counts"]["owner"]
    assert counts == {"ann": 1, UNASSIGNED: 1}
