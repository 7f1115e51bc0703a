"""The win-back views on SQLite and PostgreSQL, on a seeded store, to exact values."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import orjson
import sqlalchemy as sa

from churnwatch import store
from churnwatch.winback.outcomes import Outcome
from churnwatch.winback.report import fetch, measured_rates, settled_cases
from tests.builders import T0, ev, store_rows

#: the columns of the ``winback_effectiveness`` view, in order
EFFECTIVENESS = (
    "reason",
    "action",
    "value_tier",
    "tasks",
    "settled",
    "contacted",
    "won_back",
    "return_rate",
    "hours_to_contact",
    "satisfaction_after",
)


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


def test_effectiveness_and_failures_to_exact_values(engine: sa.Engine) -> None:
    seed(engine)
    report = fetch(engine)
    assert report["winback_effectiveness"] == [
        {
            "reason": "competitor",
            "action": "targeted offer",
            "value_tier": "high",
            "tasks": 4,
            "settled": 3,
            "contacted": 2,
            "won_back": 1,
            "return_rate": 0.3333,
            "hours_to_contact": 30.0,
            "satisfaction_after": 4.5,
        }
    ]
    failures = {
        (r["contact_delay"], r["crm_last_status"]): r["tasks"] for r in report["winback_failures"]
    }
    assert failures == {("1-3 days", "declined"): 1, ("not contacted", "no report"): 1}
    # the return rate equals a direct count over the tasks table
    with engine.connect() as conn:
        statuses = [r.status for r in conn.execute(sa.select(store.winback_tasks.c.status))]
    settled = [s for s in statuses if s in ("won_back", "lost", "expired")]
    assert round(settled.count("won_back") / len(settled), 4) == 0.3333


def test_winback_report_command_prints_json(engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
    seed(engine)
    done = subprocess.run(
        [sys.executable, "-m", "churnwatch", "winback", "report", "--json"],
        env={**os.environ, "CHURNWATCH_DB_URL": db_url},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    printed = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert printed == orjson.loads(orjson.dumps(fetch(engine), default=str))


def test_winback_report_through_a_pipe_prints_whole_cells(
    engine: sa.Engine, db_url: str, tmp_path: Path
) -> None:
    seed(engine)
    done = subprocess.run(
        [sys.executable, "-m", "churnwatch", "winback", "report"],
        # a narrow terminal would squash the cells: through a pipe they stay whole
        env={**os.environ, "CHURNWATCH_DB_URL": db_url, "COLUMNS": "40"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "settled cases: 3, held out: 0, reported contacted: 2"
    assert lines[1:4] == ["winback_effectiveness", "", "| " + " | ".join(EFFECTIVENESS) + " |"]
    assert lines[5] == (
        "| competitor | targeted offer | high | 4 | 3 | 2 | 1 | 0.3333 | 30.0 | 4.5 |"
    )
    assert "…" not in done.stdout


#: Newcombe's interval of 1/3 - 1/4, by hand (z = 1.96, z² = 3.8416). Wilson of 1/3:
#: centre (0.3333 + 0.6403) / 2.2805 = 0.4269, half 1.96 √(0.0741 + 0.1067) / 2.2805
#: = 0.3654: (0.0615, 0.7923). Wilson of 1/4: centre (0.25 + 0.4802) / 1.9604 = 0.3725,
#: half 1.96 √(0.0469 + 0.0600) / 1.9604 = 0.3269: (0.0456, 0.6994). Then
#: low = 0.0833 - √((0.3333 - 0.0615)² + (0.6994 - 0.25)²) = 0.0833 - 0.5252 and
#: high = 0.0833 + √((0.7923 - 0.3333)² + (0.25 - 0.0456)²) = 0.0833 + 0.5025
UPLIFT_LOW, UPLIFT_HIGH = -0.4419, 0.5858


def held_out(n: int, cid: str) -> dict:
    """A held-out case's task: no contact, the control group."""
    return {**task(n, cid), "task_id": f"h{n}", "alert_id": f"b{n}", "action": "holdout"}


def test_uplift_against_the_control_group_to_exact_values(engine: sa.Engine) -> None:
    seed(engine)
    # four held-out competitor cases of the high tier: one came back by itself
    with engine.begin() as conn:
        store.add_tasks(conn, [held_out(n, f"d{n}") for n in range(1, 5)])
        store.end_alerts(
            conn,
            [{"alert_id": "b1", "status": "won_back", "ts": iso(9)}]
            + [{"alert_id": f"b{n}", "status": "expired", "ts": iso(30)} for n in (2, 3, 4)],
        )
    report = fetch(engine, min_customers=3)
    # t1 won back, t2 declined (lost) and t3 expired: 1 of 3 treated; 1 of 4 held out
    assert report["contacts"] == {"settled": 7, "held_out": 4, "contacted": 2}
    (cell,) = report["uplift_by_action"]
    assert cell == {
        "reason": "competitor",
        "action": "targeted offer",
        "treated": 3,
        "treated_returned": 1,
        "control": 4,
        "control_returned": 1,
        "return_rate": 0.3333,
        "control_rate": 0.25,
        "uplift": 0.0833,
        "uplift_low": UPLIFT_LOW,
        "uplift_high": UPLIFT_HIGH,
        "evidence": "enough",
    }
    # by contact delay: t1 within a day, t2 after two, t3 never; each against all four
    delays = {r["delay"]: (r["treated"], r["treated_returned"]) for r in report["uplift_by_delay"]}
    assert delays == {"< 24 h": (1, 1), "1-3 days": (1, 0), "not contacted": (1, 0)}
    (pick,) = report["recommended_actions"]
    assert (pick["reason"], pick["tier"], pick["action"]) == (
        "competitor",
        "high",
        "targeted offer",
    )
    assert pick["why"].startswith("uplift +8.3% (95 % CI")
    # replay --capacity's rate for the tier: the uplift shrunk toward the prior by the
    # evidence, n = 3 x 4 / 7: (1.714 x 0.0833 + 50 x 0.2) / (1.714 + 50) = 0.1961
    with engine.connect() as conn:
        cases = settled_cases(conn)
    rate, source = measured_rates(cases, prior=0.2, min_customers=3)["high"]
    assert round(rate, 4) == 0.1961
    assert source.startswith("measured uplift +8.3% (95 % CI -44.2% to +58.6%; 3 contacted")
    assert measured_rates(cases, prior=0.2) == {}  # too few: the prior stays
    # below the minimum, the cell says so and nothing is recommended
    few = fetch(engine)
    assert few["uplift_by_action"][0]["evidence"] == (
        "not enough evidence (3 treated, 4 control; needs 30 each)"
    )
    assert few["recommended_actions"] == []
