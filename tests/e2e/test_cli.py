"""The command line as a user runs it: simulate to a file, and the demo."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from tests.cli_helpers import run_cli as _run


def test_help_lists_the_commands(tmp_path: Path) -> None:
    out = _run(["--help"], tmp_path)
    assert out.returncode == 0
    commands = ("broker", "worker", "simulate", "demo", "train", "replay", "import")
    for command in (*commands, "dashboard", "db", "topics", "winback"):
        assert command in out.stdout


def test_simulate_to_a_file_writes_events_and_ground_truth(tmp_path: Path) -> None:
    out = _run(
        ["simulate", "--events", "2000", "--out", "ev.jsonl", "--bad-share", "0.02"], tmp_path
    )
    assert out.returncode == 0, out.stderr
    lines = (tmp_path / "ev.jsonl").read_bytes().splitlines()
    assert len(lines) == 2000
    truth = [orjson.loads(x) for x in (tmp_path / "ev.truth.jsonl").read_bytes().splitlines()]
    assert truth and {"customer_id", "tier", "churns", "reason", "churn_date"} <= set(truth[0])
    assert "2000 records" in out.stdout


def test_simulate_rejects_a_bad_share(tmp_path: Path) -> None:
    out = _run(["simulate", "--out", "x.jsonl", "--bad-share", "1.5"], tmp_path)
    assert out.returncode != 0
    assert "--bad-share" in out.stderr


@pytest.mark.kafka
def test_the_worker_refuses_a_bad_policy_file_before_starting(tmp_path: Path) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text("cooldown_days = -1\n")
    out = _run(["worker"], tmp_path, CHURNWATCH_POLICY_FILE=str(bad))
    assert out.returncode == 2
    assert f"cannot use the alert policy: {bad}: invalid" in out.stderr
    assert "cooldown_days: Input should be greater than or equal to 0" in out.stderr
    assert "expire_days: Field required" in out.stderr


def test_demo_ends_by_itself_with_a_summary_that_adds_up(tmp_path: Path) -> None:
    out = _run(["demo", "--events", "3000", "--json"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = orjson.loads(out.stdout.strip().splitlines()[-1])
    assert set(summary) == {
        "events_in",
        "events_stored",
        "dead_letters",
        "alerts",
        "winback_tasks",
        "won_back",
        "seconds",
        "events_per_s",
    }
    assert summary["events_in"] == 3000
    assert summary["events_stored"] + summary["dead_letters"] == 3000
    assert summary["dead_letters"] > 0 and summary["alerts"] > 0
    assert summary["winback_tasks"] == summary["alerts"]  # one task per alert
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'churnwatch-data' / 'demo.db'}")
    with engine.connect() as conn:
        won = conn.execute(sa.text("SELECT count(*) FROM winback_tasks WHERE status = 'won_back'"))
        assert summary["won_back"] == won.scalar_one()
    engine.dispose()
    assert (tmp_path / "churnwatch-data" / "demo.db").exists()


def test_db_upgrade_reports_the_revision_and_hides_the_password(
    tmp_path: Path, db_url: str
) -> None:
    out = _run(["db", "upgrade"], tmp_path, CHURNWATCH_DB_URL=db_url)
    assert out.returncode == 0, out.stderr
    shown = sa.make_url(db_url).render_as_string(hide_password=True)
    assert out.stdout.strip() == f"{shown} is at schema revision 0013"
    unreachable = "postgresql+psycopg://churn:secret@127.0.0.1:1/none"
    refused = _run(["db", "upgrade"], tmp_path, CHURNWATCH_DB_URL=unreachable)
    assert refused.returncode == 1
    assert "cannot upgrade postgresql+psycopg://churn:***@127.0.0.1:1/none" in refused.stderr
    assert "secret" not in refused.stderr


@pytest.mark.kafka
def test_topics_create_then_exists_then_a_layout_mismatch(tmp_path: Path, kafka_broker) -> None:
    bootstrap = kafka_broker.bootstrap
    first = _run(["topics", "create", "--partitions", "3"], tmp_path, CHURNWATCH_BROKER=bootstrap)
    assert first.returncode == 0, first.stderr
    assert "10 created, 3 partitions each, replication factor 1" in first.stdout
    assert " created  customers" in first.stdout
    again = _run(["topics", "create", "--partitions", "3"], tmp_path, CHURNWATCH_BROKER=bootstrap)
    assert again.returncode == 0 and "0 created" in again.stdout
    assert "  exists  purchases" in again.stdout
    other = _run(["topics", "create", "--partitions", "4"], tmp_path, CHURNWATCH_BROKER=bootstrap)
    assert other.returncode == 2
    assert re.search(r"topic \S+ has 3 partitions but churnwatch is set to 4", other.stderr)
    no_broker = _run(["topics", "create"], tmp_path)
    assert no_broker.returncode == 2 and "set CHURNWATCH_BROKER" in no_broker.stderr
