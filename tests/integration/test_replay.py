"""``replay --as-of``: every customer's row exactly as docs/contract.md defines it."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from churnwatch import store
from churnwatch.alerts.config import load_policy
from churnwatch.events import ENGAGEMENT, TOPIC_OF_TYPE
from churnwatch.features.state import DAY_S
from churnwatch.models.rule import RuleScorer
from churnwatch.offline.replay import COLUMNS, CONTRACT_COLUMNS, rows_as_of
from churnwatch.sim.broker import EmbeddedBroker
from tests.builders import at, ev, store_rows
from tests.kafka_helpers import read_topic

T = at(100.5)  # midday: the windows must follow T, not midnight


def _complaint(day: float, cid: str, kid: str, resolved: float | None = None, sat=None) -> list:
    out = [ev(day, "complaint_opened", cid=cid, complaint_id=kid, category="price", severity=1)]
    if resolved is not None:
        fields = {} if sat is None else {"satisfaction": sat}
        out.append(ev(resolved, "complaint_resolved", cid=cid, complaint_id=kid, **fields))
    return out


HISTORY = sorted(
    [
        ev(70.5, "purchase", cid="a", amount=10),  # exactly T - 30 d: out of 30 d
        ev(70.51, "purchase", cid="a", amount=20),
        ev(10.5, "purchase", cid="a", amount=40),  # exactly T - 90 d: out of 90 d
        ev(10.6, "purchase", cid="a", amount=80),
        ev(100.5, "purchase", cid="a", amount=5),  # exactly T: in
        ev(101, "purchase", cid="a", amount=999),  # after T: not counted
        ev(99, "refund", cid="a", amount=100),
        ev(70.5, "login", cid="a"),  # T - 30 d: out
        ev(100, "email_open", cid="a"),
        ev(99.9, "survey_response", cid="a", satisfaction=2),
        ev(10.5, "survey_response", cid="a", satisfaction=5),  # T - 90 d: out
        *_complaint(20, "b", "k1", resolved=30, sat=4),
        *_complaint(60, "b", "k2", resolved=100.6),  # resolved after T: still open
        *_complaint(95, "b", "k3"),
        ev(100.4, "support_contact", cid="b"),
        ev(5, "purchase", cid="c", amount=12),  # bought once, long ago
    ],
    key=lambda e: (e.epoch_s, e.event_id),
)


def contract_row(events: list, customer: str) -> dict:
    """docs/contract.md's definitions, computed straight from the events."""
    mine = [e for e in events if e.customer_id == customer and e.epoch_s <= T]

    def within(e, days: int) -> bool:
        return T - days * DAY_S < e.epoch_s <= T

    def spend(days: int) -> float:
        bought = sum(e.amount for e in mine if e.type == "purchase" and within(e, days))
        return bought - sum(e.amount for e in mine if e.type == "refund" and within(e, days))

    buys = [e.epoch_s for e in mine if e.type == "purchase"]
    ratings = [
        e.satisfaction
        for e in mine
        if e.type in ("survey_response", "complaint_resolved")
        and getattr(e, "satisfaction", None) is not None
        and within(e, 90)
    ]
    opened = {e.complaint_id for e in mine if e.type == "complaint_opened"}
    resolved = {e.complaint_id for e in mine if e.type == "complaint_resolved"}
    return {
        "recency_days": (T - max(buys)) / DAY_S if buys else None,
        "frequency_30d": sum(e.type == "purchase" and within(e, 30) for e in mine),
        "frequency_90d": sum(e.type == "purchase" and within(e, 90) for e in mine),
        "monetary_30d": pytest.approx(spend(30)),
        "monetary_90d": pytest.approx(spend(90)),
        "complaints_90d": sum(e.type == "complaint_opened" and within(e, 90) for e in mine),
        "open_complaints": len(opened - resolved),
        "satisfaction_mean": sum(ratings) / len(ratings) if ratings else None,
        "engagement_30d": sum(TOPIC_OF_TYPE[e.type] == ENGAGEMENT and within(e, 30) for e in mine),
    }


def test_rows_follow_the_contract_definitions_at_any_time_of_day() -> None:
    rows = {
        r["customer_id"]: r
        for r in rows_as_of(HISTORY, T, RuleScorer(), load_policy(), partitions=1)
    }
    assert sorted(rows) == ["a", "b", "c"]
    for cid, row in rows.items():
        expected = contract_row(HISTORY, cid)
        assert {k: row[k] for k in expected} == expected, cid
    a = rows["a"]
    assert (a["frequency_30d"], a["frequency_90d"], a["monetary_30d"]) == (2, 4, -75.0)
    assert (a["satisfaction_mean"], a["engagement_30d"]) == (2.0, 2)
    assert rows["b"]["open_complaints"] == 2
    # c last bought 95.5 days before T: lapsed, and scored 0.7 * 1 for it
    c = rows["c"]
    assert (c["lifecycle_stage"], c["score"], c["risk_level"]) == ("lapsed", 0.7, "high")
    assert all(set(r) == set(COLUMNS) for r in rows.values())


def test_replay_command_writes_the_csv(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    with engine.begin() as conn:
        store.append_events(conn, store_rows(HISTORY))
    out_file = tmp_path / "scores.csv"
    as_of = "2026-04-11T12:00:00+00:00"  # T
    command = [sys.executable, "-m", "churnwatch", "replay", "--as-of", as_of]

    def replay(*extra: object) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*command, "--scores-out", out_file, *extra],
            env={**os.environ, "CHURNWATCH_DB_URL": db_url},
            capture_output=True,
            text=True,
            timeout=120,
        )

    missing = replay("--model", tmp_path / "no-such-model")
    assert missing.returncode == 2 and not out_file.exists()
    assert f"cannot load model {tmp_path / 'no-such-model'}: " in missing.stderr
    done = replay()
    assert done.returncode == 0, done.stderr
    assert "3 customers as of 2026-04-11T12:00:00+00:00 scored by rule-v3" in done.stdout
    with out_file.open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames[: len(CONTRACT_COLUMNS)]) == CONTRACT_COLUMNS
        rows = {r["customer_id"]: r for r in reader}
    expected = {
        k: str(v)
        for k, v in rows_as_of(HISTORY, T, RuleScorer(), load_policy(), partitions=1)[0].items()
        if v is not None
    }
    assert {k: v for k, v in rows["a"].items() if v != ""} == expected
    assert rows["c"]["satisfaction_mean"] == ""  # empty, not "None"


def test_the_analyst_path_csv_to_threshold_report(tmp_path: Path) -> None:
    """The README's three commands: import a purchases CSV, backtest, read the report."""
    from churnwatch.sim.simulator import Simulation, records

    now = datetime(2026, 6, 1, tzinfo=UTC)
    sim = Simulation(80, now - timedelta(days=300), now, seed=5, churn_share=0.5)
    csv_path = tmp_path / "purchases.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Customer", "Date", "Total", "Order"])
        for r in records(sim, bad_share=0):
            e = orjson.loads(r.value)
            if e["type"] == "purchase":
                when = datetime.fromisoformat(e["ts"]).strftime("%d/%m/%Y %H:%M")
                writer.writerow([e["customer_id"], when, e["amount"], e["order_id"]])
    env = {**os.environ, "CHURNWATCH_DB_URL": f"sqlite:///{tmp_path / 'store.db'}"}

    def cli(*args: object) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "churnwatch", *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done

    loaded = cli(
        "import",
        csv_path,
        "--type",
        "purchase",
        "--set",
        "currency=EUR,channel=web",
        "--map",
        "customer_id=Customer,ts=Date,amount=Total,order_id=Order",
        "--date-format",
        "%d/%m/%Y %H:%M",
        "--json",
    )
    summary = orjson.loads(loaded.stdout)
    assert summary["rejected"] == 0 and summary["stored"] > 500
    report = tmp_path / "report"
    alerts = tmp_path / "alerts.jsonl"
    done = cli(
        "replay",
        "--from",
        "2025-10-01",
        "--capacity",
        "2/day",
        "--horizon-days",
        "60",
        "--report",
        report,
        "--alerts-out",
        alerts,
        "--json",
    )
    findings = orjson.loads(done.stdout.splitlines()[-1])
    assert findings["events"] == summary["stored"]
    assert findings["capacity_per_day"] == 2.0
    assert findings["recommended"]["all"]["alerts_per_day"] <= 2.0 or not findings["fits_capacity"]
    fired = [orjson.loads(line) for line in alerts.read_bytes().splitlines()]
    assert fired and all(a["model_version"] == "rule-v3" for a in fired)
    text = (report / "report.md").read_text()
    assert "## Current and recommended thresholds" in text and "[thresholds.general]" in text
    for png in ("precision_recall.png", "alert_volume.png", "lead_time.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.kafka
def test_publish_sends_each_stored_event_once_in_event_time_order(
    kafka_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    with engine.begin() as conn:
        store.append_events(conn, store_rows(reversed(HISTORY)))  # stored out of order
    env = {k: v for k, v in os.environ.items() if k != "CHURNWATCH_BROKER"}
    env["CHURNWATCH_DB_URL"] = db_url
    command = [sys.executable, "-m", "churnwatch", "replay", "--publish"]

    def run(extra_env: dict[str, str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            command, env={**env, **extra_env}, capture_output=True, text=True, timeout=120
        )

    no_broker = run({})
    assert no_broker.returncode == 2 and "--publish needs CHURNWATCH_BROKER" in no_broker.stderr
    done = run({"CHURNWATCH_BROKER": kafka_broker.bootstrap})
    assert done.returncode == 0, done.stderr
    assert f"published {len(HISTORY)} stored events" in done.stdout

    sent = []
    for topic in sorted({TOPIC_OF_TYPE[e.type] for e in HISTORY}):
        for record in read_topic(kafka_broker.bootstrap, topic, None, quiet_s=1.0):
            payload = orjson.loads(record.value)
            assert record.key == payload["customer_id"].encode()
            sent.append((topic, record.partition, record.offset, payload))
    assert sorted(p["event_id"] for *_, p in sent) == sorted(e.event_id for e in HISTORY)
    assert {p["event_id"]: t for t, _, _, p in sent} == {
        e.event_id: TOPIC_OF_TYPE[e.type] for e in HISTORY
    }
    by_partition: dict[tuple[str, int], list] = {}
    for topic, partition, _offset, payload in sorted(sent, key=lambda s: s[:3]):
        moment = datetime.fromisoformat(payload["ts"])
        by_partition.setdefault((topic, partition), []).append((moment, payload["event_id"]))
    for sequence in by_partition.values():
        assert sequence == sorted(sequence)  # event-time order within each partition
