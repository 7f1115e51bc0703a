"""A win-back history seeded by hand, shared by the win-back report and dashboard tests."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from churnwatch import store
from churnwatch.winback.outcomes import Outcome
from tests.builders import T0, ev, store_rows


def iso(day: float) -> str:
    return (T0 + timedelta(days=day)).isoformat()


def task(n: int, cid: str) -> dict:
    return {
        "task_id": f"t{n}",
        "alert_id": f"a{n}",
        "customer_id": cid,
        "ts": iso(0),
        "action": "targeted offer",
        "channel": "email",
        "priority": 2,
        "due_by": iso(2),
        "owner_queue": "offers",
        "reason": "competitor",
        "value_tier": "high",
        "risk_level": "high",
    }


def seed(engine: sa.Engine) -> None:
    """t1 won back (contacted after 12 h, rated 4 afterwards), t2 contacted after 48 h
    and declined, t3 expired uncontacted, t4 still open, t5 escalated (left out)."""
    with engine.begin() as conn:
        store.add_tasks(conn, [task(n, f"c{n}") for n in range(1, 6)])
        store.end_alerts(
            conn,
            [
                {"alert_id": "a1", "status": "won_back", "ts": iso(5)},
                {"alert_id": "a3", "status": "expired", "ts": iso(30)},
                {"alert_id": "a5", "status": "escalated", "ts": iso(1)},
            ],
        )
        outcomes = [
            Outcome(task_id="t1", status="contacted", ts=iso(0.5)),
            Outcome(task_id="t2", status="contacted", ts=iso(2)),
            Outcome(task_id="t2", status="declined", ts=iso(2.5)),
        ]
        store.add_outcomes(conn, outcomes)
        survey = "survey_response"
        store.append_events(
            conn,
            store_rows(
                [
                    ev(4, survey, cid="c1", satisfaction=2),  # before the return: not counted
                    ev(6, survey, cid="c1", satisfaction=4),
                    ev(7, "complaint_resolved", cid="c1", complaint_id="k", satisfaction=5),
                    ev(8, survey, cid="c2", satisfaction=1),  # not won back: not counted
                ]
            ),
        )


def held_out(n: int, cid: str) -> dict:
    """A held-out case's task: no contact, the control group."""
    return {**task(n, cid), "task_id": f"h{n}", "alert_id": f"b{n}", "action": "holdout"}


def seed_holdouts(engine: sa.Engine) -> None:
    """Four held-out competitor cases of the high tier: b1 came back by itself, b2-b4
    expired."""
    with engine.begin() as conn:
        store.add_tasks(conn, [held_out(n, f"d{n}") for n in range(1, 5)])
        store.end_alerts(
            conn,
            [{"alert_id": "b1", "status": "won_back", "ts": iso(9)}]
            + [{"alert_id": f"b{n}", "status": "expired", "ts": iso(30)} for n in (2, 3, 4)],
        )
