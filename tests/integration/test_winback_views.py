"""The win-back views on SQLite and PostgreSQL, on a seeded store, to exact values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import sqlalchemy as sa

from churnwatch import store
from churnwatch.winback.report import fetch, measured_rates, settled_cases
from tests.winback_seed import seed, seed_holdouts

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


def test_uplift_against_the_control_group_to_exact_values(engine: sa.Engine) -> None:
    seed(engine)
    seed_holdouts(engine)  # 1 of 4 came back by itself
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
    # one action, one reason: over every reason it is the same cell
    (every,) = report["uplift_per_action"]
    assert {k: v for k, v in every.items() if k != "action"} == {
        k: v for k, v in cell.items() if k not in ("reason", "action")
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
