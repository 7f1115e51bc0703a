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
from churnwatch.winback.report import fetch
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
    assert lines[:3] == ["winback_effectiveness", "", "| " + " | ".join(EFFECTIVENESS) + " |"]
    assert lines[4] == (
        "| competitor | targeted offer | high | 4 | 3 | 2 | 1 | 0.3333 | 30.0 | 4.5 |"
    )
    assert "…" not in done.stdout
