"""The real worker process on the embedded broker, with SQLite and PostgreSQL stores."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import groupby
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.alerts.config import HOLDOUT, load_playbook, load_policy
from churnwatch.alerts.policy import alert_id
from churnwatch.events import INPUT_TOPICS, from_payload
from churnwatch.features.row import feature_row
from churnwatch.features.state import KEEP_DAYS, apply
from churnwatch.models import registry
from churnwatch.models.dataset import cutoffs, snapshots
from churnwatch.models.rule import rule_score
from churnwatch.models.training import train
from churnwatch.settings import Settings
from churnwatch.sim.broker import EmbeddedBroker
from churnwatch.sim.demo import worker_process
from churnwatch.sim.producing import produce
from churnwatch.sim.simulator import BAD_KINDS, SimRecord, Simulation, customers_for, records
from churnwatch.topics import (
    CHURN_ALERTS,
    CUSTOMER_CHANGES,
    DEAD_LETTERS,
    WINBACK_TASKS,
    ensure_topics,
)
from churnwatch.winback.report import fetch
from tests.contract_helpers import assert_fit
from tests.kafka_helpers import read_topic, values, wait_for
from tests.parity import assert_same_features, plain_fold
from tests.reference import REFERENCE

pytestmark = pytest.mark.kafka
PARTITIONS = 4
#: The records of a year are produced before the worker starts, and Faust drains
#: one topic well ahead of another: the tests allow the most lateness there is.
LATENESS_S = KEEP_DAYS * 86400.0
POLICY = load_policy()


def _settings(broker: EmbeddedBroker, db_url: str, **extra: float) -> Settings:
    return Settings(
        broker=broker.bootstrap, db_url=db_url, partitions=PARTITIONS, web_port=0, **extra
    )


def _prepare(broker: EmbeddedBroker, db_url: str, tmp_path: Path) -> tuple[sa.Engine, Path]:
    """Topics and a migrated store for a worker run; returns the engine and log path."""
    ensure_topics(broker.bootstrap, PARTITIONS)
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    return engine, tmp_path / "worker.log"


def _simulated(events: int, seed: int, **options: float) -> tuple[list[SimRecord], list[dict]]:
    """``events`` simulated records over the last year, and the valid events among them."""
    now = REFERENCE
    sim = Simulation(customers_for(events, 365), now - timedelta(days=365), now, seed=seed)
    recs = list(records(sim, limit=events, **options))
    return recs, [orjson.loads(r.value) for r in recs if r.kind == "valid"]


def test_ten_thousand_simulated_events(
    kafka_broker: EmbeddedBroker, db_url: str, tmp_path: Path
) -> None:
    recs, valid = _simulated(10_000, seed=11, bad_share=0.02)
    bad = [r for r in recs if r.kind != "valid"]
    assert set(BAD_KINDS) == {r.kind for r in bad}

    engine, log = _prepare(kafka_broker, db_url, tmp_path)
    settings = _settings(kafka_broker, db_url, allowed_lateness_s=LATENESS_S)
    with worker_process(settings, kafka_broker.bootstrap, log):
        produce(recs, kafka_broker.bootstrap)
        wait_for(lambda: store.count_rows(engine, store.events) >= len(valid), "events", log)
        letters = read_topic(kafka_broker.bootstrap, DEAD_LETTERS, len(bad))

    # The store holds exactly the valid events, once each.
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(store.events.c.event_id, store.events.c.seq, store.events.c.payload)
        ).all()
        states = store.load_states(conn)
        alert_rows = conn.execute(sa.select(store.alerts)).all()
        change_count = conn.execute(
            sa.select(sa.func.count()).select_from(store.customer_changes)
        ).scalar_one()
    assert sorted(r.event_id for r in stored) == sorted(e["event_id"] for e in valid)

    # Every bad record, and nothing else, is a dead letter with a reason.
    dead = values(letters)
    assert sorted(d["raw"] for d in dead) == sorted(r.value.decode() for r in bad)
    assert all(d["error"] and d["source_topic"] in INPUT_TOPICS for d in dead)
    assert (
        sum(d["error"].startswith("too late: ") for d in dead)
        == Counter(r.kind for r in bad)["too_late"]
    )

    # The stored state equals the plain fold in event-time order.
    expected = plain_fold(valid)
    assert_same_features(states, expected)

    # Each alert is what the rule says of its customer's state right after the
    # trigger: the fold of their stored events up to it, in store order.
    assert alert_rows, "the simulated population should raise alerts"
    topic_alerts = values(read_topic(kafka_broker.bootstrap, CHURN_ALERTS, len(alert_rows)))
    assert sorted(a["alert_id"] for a in topic_alerts) == sorted(r.alert_id for r in alert_rows)
    # one win-back task per alert in the store; on the topic, all but the held-out ones
    with engine.connect() as conn:
        held = set(
            conn.execute(
                sa.select(store.winback_tasks.c.alert_id).where(
                    store.winback_tasks.c.action == HOLDOUT
                )
            ).scalars()
        )
    assert 0 < len(held) < len(alert_rows) / 4  # one case in ten, give or take
    contacted = sorted(r.alert_id for r in alert_rows if r.alert_id not in held)
    topic_tasks = values(read_topic(kafka_broker.bootstrap, WINBACK_TASKS, len(contacted)))
    assert sorted(t["alert_id"] for t in topic_tasks) == contacted
    assert store.count_rows(engine, store.winback_tasks) == len(alert_rows)
    by_customer: dict[str, list] = defaultdict(list)
    for row in sorted(stored, key=lambda r: r.seq):
        by_customer[row.payload["customer_id"]].append(row)
    silence = [a for a in topic_alerts if "@" in a["trigger"]]
    for alert in topic_alerts:
        if alert in silence:
            continue
        state = None
        for row in by_customer[alert["customer_id"]]:
            event = from_payload(row.payload)
            state = apply(state, event)
            if row.event_id == alert["trigger"]:
                break
        score = rule_score(feature_row(state))
        assert (alert["score"], alert["reason"]) == (score.value, score.reason), alert
        assert alert["risk_level"] == POLICY.thresholds[alert["value_tier"]].level(score.value)
        assert alert["alert_id"] == alert_id(
            alert["customer_id"], alert["risk_level"], alert["trigger"]
        )
        assert alert["value_tier"] in ("high", "potential", "general")

    # Every lifecycle and tier move is on the topic and in the store, once.
    changes = values(read_topic(kafka_broker.bootstrap, CUSTOMER_CHANGES, change_count))
    # What the worker sent is what docs/contract.md and docs/schemas/ promise.
    assert_fit(DEAD_LETTERS, dead)
    assert_fit(CHURN_ALERTS, topic_alerts)
    assert_fit(WINBACK_TASKS, topic_tasks)
    assert_fit(CUSTOMER_CHANGES, changes)
    assert len({c["change_id"] for c in changes}) == change_count > len(expected)
    # Customers who went silent were alerted by the lifecycle change that time
    # alone brought, scored as of that moment.
    assert silence, "some simulated customers should be alerted in silence"
    moves = {(c["customer_id"], f"{c['to_value']}@{c['ts']}") for c in changes}
    for alert in silence:
        assert (alert["customer_id"], alert["trigger"]) in moves
        assert alert["ts"] == alert["trigger"].split("@")[1]
        assert alert["risk_level"] == POLICY.thresholds[alert["value_tier"]].level(alert["score"])


@pytest.fixture
def fifty_thousand(kafka_broker: EmbeddedBroker, tmp_path: Path):
    """50,000 simulated events (1 % unkeyed), a SQLite store and worker settings."""
    recs, valid = _simulated(50_000, seed=5, unkeyed_share=0.01)
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine, log = _prepare(kafka_broker, db_url, tmp_path)
    settings = _settings(kafka_broker, db_url, allowed_lateness_s=LATENESS_S)
    return recs, valid, engine, log, settings


def _all_stored_equal_the_plain_fold(engine: sa.Engine, valid: list[dict]) -> None:
    with engine.connect() as conn:
        states = store.load_states(conn)
    assert store.count_rows(engine, store.events) == len(valid)
    assert_same_features(states, plain_fold(valid))


def test_fifty_thousand_events_live_equal_the_plain_fold(
    kafka_broker: EmbeddedBroker, fifty_thousand
) -> None:
    """Parity: the worker on the embedded broker and the plain fold, customer by customer."""
    recs, valid, engine, log, settings = fifty_thousand
    with worker_process(settings, kafka_broker.bootstrap, log):
        produce(recs, kafka_broker.bootstrap)
        wait_for(lambda: store.count_rows(engine, store.events) >= len(valid), "events", log)
    _all_stored_equal_the_plain_fold(engine, valid)


def test_sigkill_mid_stream_then_restart_loses_and_doubles_nothing(
    kafka_broker: EmbeddedBroker, fifty_thousand
) -> None:
    """Recovery: kill -9 the worker half-way; the restarted one ends where an unbroken run does.

    The unbroken run's features are the plain fold's (the parity test shows so).
    """
    recs, valid, engine, log, settings = fifty_thousand
    with worker_process(settings, kafka_broker.bootstrap, log) as first:
        produce(recs, kafka_broker.bootstrap)
        wait_for(lambda: store.count_rows(engine, store.events) >= len(valid) // 2, "half", log)
        first.send_signal(signal.SIGKILL)
        first.wait()
    killed_at = store.count_rows(engine, store.events)
    assert killed_at < len(valid), "the worker finished before it could be killed"
    with worker_process(settings, kafka_broker.bootstrap, log):
        wait_for(lambda: store.count_rows(engine, store.events) >= len(valid), "events", log)
    _all_stored_equal_the_plain_fold(engine, valid)
    # each alert once (its id is the key) with exactly one win-back task
    with engine.connect() as conn:
        alert_ids = conn.execute(sa.select(store.alerts.c.alert_id)).scalars().all()
        task_alerts = conn.execute(sa.select(store.winback_tasks.c.alert_id)).scalars().all()
    assert alert_ids and sorted(task_alerts) == sorted(alert_ids)


def test_each_bad_input_next_to_valid_ones(
    kafka_broker: EmbeddedBroker, db_url: str, tmp_path: Path
) -> None:
    ts = (REFERENCE - timedelta(days=3)).isoformat()
    far = (REFERENCE + timedelta(days=30)).isoformat()

    def p(eid: str, cid: str = "c1", **extra: object) -> dict:
        return {
            "event_id": eid,
            "customer_id": cid,
            "ts": ts,
            "type": "purchase",
            "amount": 9.5,
            "currency": "EUR",
            "order_id": eid,
            "channel": "online",
            **extra,
        }

    def r(value: object, kind: str, key: bytes | None = b"c1", topic: str = "purchases"):
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        return SimRecord(topic, key, raw, kind)

    recs = [
        r(p("v1"), "valid"),
        r(b"not json at all", "not_json"),
        r(p("v2"), "valid"),
        r(["an", "array"], "not_object"),
        r({k: v for k, v in p("x3").items() if k != "customer_id"}, "missing_customer_id"),
        r(p("x4", cid=42), "wrong_type"),
        r({**p("x5"), "amount": -20}, "negative_amount"),
        r({**p("x6"), "type": "hologram"}, "unknown_type"),
        r({**p("x7"), "ts": far}, "far_future"),
        r({**p("v1"), "amount": 1.0}, "duplicate_event_id"),
        r(p("v3", cid="c2"), "valid", key=None),  # no key: must be re-keyed, not lost
        r(p("v4"), "valid"),
    ]
    engine, log = _prepare(kafka_broker, db_url, tmp_path)
    with worker_process(_settings(kafka_broker, db_url), kafka_broker.bootstrap, log):
        produce(recs, kafka_broker.bootstrap)
        wait_for(lambda: store.count_rows(engine, store.events) >= 4, "events", log)
        dead = values(read_topic(kafka_broker.bootstrap, DEAD_LETTERS, 8))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(store.events.c.event_id, store.events.c.payload))
        stored = {row.event_id: row.payload for row in rows}
        states = store.load_states(conn)
    assert sorted(stored) == ["v1", "v2", "v3", "v4"]
    assert stored["v1"]["amount"] == 9.5  # the first v1 won; the clash was dead-lettered
    assert states["c2"]["features"]["purchase_count"] == 1
    assert states["c1"]["features"]["purchase_count"] == 3
    assert len(dead) == 8
    by_raw = {d["raw"]: d["error"] for d in dead}
    assert len(by_raw) == 8
    assert by_raw["not json at all"].startswith("not valid JSON")
    assert by_raw['["an","array"]'] == "value must be a JSON object, got an array"
    no_customer = {k: v for k, v in p("x3").items() if k != "customer_id"}
    assert by_raw[orjson.dumps(no_customer).decode()] == "customer_id: Field required"
    assert by_raw[orjson.dumps(p("x4", cid=42)).decode()].startswith(
        "customer_id: Input should be a valid string"
    )
    assert by_raw[orjson.dumps({**p("x6"), "type": "hologram"}).decode()].startswith(
        "unknown type 'hologram' on topic purchases"
    )
    assert "greater than 0" in by_raw[orjson.dumps({**p("x5"), "amount": -20}).decode()]
    assert "in the future" in by_raw[orjson.dumps({**p("x7"), "ts": far}).decode()]
    assert by_raw[orjson.dumps({**p("v1"), "amount": 1.0}).decode()].startswith(
        "duplicate event_id 'v1': already stored from purchases/"
    )


def _small_model(folder: Path) -> tuple[registry.ModelCard, Path]:
    """A model trained on another small simulated year, saved under ``folder``."""
    end = REFERENCE
    sim = Simulation(customers_for(30_000, 365), end - timedelta(days=365), end, seed=21)
    events = [from_payload(p) for p in sim.events()]
    at = cutoffs(events[0].epoch_s, events[-1].epoch_s, every_days=14)
    trained = train(list(snapshots(events, at)), horizon_days=90)
    card = registry.make_card(
        trained, horizon_days=90, trained_from=None, trained_to=end, seed=0, now=end
    )
    return card, registry.save(folder, trained, card)


def test_a_model_promoted_while_the_worker_runs_scores_what_follows(
    kafka_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    recs, valid = _simulated(20_000, seed=17)
    half = len(recs) // 2
    card, folder = _small_model(tmp_path / "models")
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine, log = _prepare(kafka_broker, db_url, tmp_path)
    settings = replace(
        _settings(kafka_broker, db_url, allowed_lateness_s=LATENESS_S, model_check_s=0.2),
        models_dir=tmp_path / "models",
    )
    with worker_process(settings, kafka_broker.bootstrap, log):
        produce(recs[:half], kafka_broker.bootstrap)
        wait_for(lambda: store.count_rows(engine, store.events) >= half, "first half", log)
        with engine.begin() as conn:
            before = {r.alert_id for r in conn.execute(sa.select(store.alerts.c.alert_id))}
            store.register_model(
                conn, card.version, str(folder), {"version": card.version}, registry.digest(folder)
            )
            store.promote_model(conn, card.version)
        time.sleep(0.5)  # past the worker's next registry check (every 0.2 s)
        produce(recs[half:], kafka_broker.bootstrap)
        wait_for(lambda: store.count_rows(engine, store.events) >= len(valid), "events", log)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(store.alerts)).all()
    published = values(read_topic(kafka_broker.bootstrap, CHURN_ALERTS, len(rows)))

    assert store.count_rows(engine, store.events) == len(valid)
    assert sorted(a["alert_id"] for a in published) == sorted(r.alert_id for r in rows)
    versions = {r.alert_id: r.model_version for r in rows}
    assert before and {versions[a] for a in before} == {"rule-v3"}
    later = [r for r in rows if r.alert_id not in before]
    assert later and {r.model_version for r in later} == {card.version}
    for row in later:  # the model's own explanation, not the rule's two parts
        assert row.reason_codes and "reference" in row.reason_codes[0]


def test_the_win_back_loop_with_the_example_crm_client(
    kafka_broker: EmbeddedBroker, db_url: str, tmp_path: Path
) -> None:
    """Alerts → playbook tasks → the example CRM's outcomes → statuses → the report."""
    now = REFERENCE
    sim = Simulation(customers_for(15_000, 365), now - timedelta(days=365), now, seed=23)
    recs = list(records(sim, limit=15_000))
    engine, log = _prepare(kafka_broker, db_url, tmp_path)
    settings = _settings(kafka_broker, db_url)
    with worker_process(settings, kafka_broker.bootstrap, log):
        # A week at a time, each stored before the next is sent: all at once,
        # Faust drains one topic far ahead of another, and silence would
        # judge customers whose purchases are still in flight (see docs/alerts.md).
        produced = 0
        for _, week in groupby(recs, key=lambda r: _week_of(r, sim.start)):
            chunk = list(week)
            produce(chunk, kafka_broker.bootstrap)
            produced += len(chunk)
            wait_for(lambda n=produced: store.count_rows(engine, store.events) >= n, "week", log)
        _settle_down(engine, store.winback_tasks)
        crm = subprocess.run(
            [sys.executable, "examples/crm_client.py", "--broker", kafka_broker.bootstrap, *CRM],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        tasks_seen = orjson.loads(crm.stdout.strip().splitlines()[-1])["tasks"]
        with engine.connect() as conn:
            sent = conn.execute(
                sa.select(sa.func.count()).where(store.winback_tasks.c.action != HOLDOUT)
            ).scalar_one()
        wait_for(
            lambda: store.count_rows(engine, store.winback_outcomes) >= 2 * sent, "outcomes", log
        )
    assert tasks_seen >= sent > 0  # at least once: a task may be read twice

    with engine.connect() as conn:
        alerts = {r.alert_id: r for r in conn.execute(sa.select(store.alerts))}
        tasks = conn.execute(sa.select(store.winback_tasks)).all()
        outcomes = conn.execute(sa.select(store.winback_outcomes)).all()
        purchases = conn.execute(
            sa.select(store.events.c.customer_id, store.events.c.ts).where(
                store.events.c.type == "purchase"
            )
        ).all()
    # Every alert has its playbook task: the action for its reason and tier, or the
    # control group's (held out: never sent, so the CRM never reports on it).
    playbook = load_playbook()
    assert sorted(t.alert_id for t in tasks) == sorted(alerts)
    for t in tasks:
        alert = alerts[t.alert_id]
        assert (t.reason, t.value_tier) == (alert.reason, alert.value_tier)
        rule = playbook.action_for(alert.reason, alert.value_tier).action
        assert t.action in (rule, HOLDOUT)
    contacted = [t.task_id for t in tasks if t.action != HOLDOUT]
    assert 0 < len(contacted) < len(tasks)
    # The CRM reported twice on every task it was sent, once each.
    assert sorted(o.task_id for o in outcomes) == sorted(contacted * 2)

    # Won back is what the purchases say, not the CRM: the first purchase within
    # 30 days of the task. Events arrive up to a week out of order (one week is
    # produced at a time), so a task that ended otherwise may only have missed
    # purchases made in the week before it ended.
    bought: dict[str, list[datetime]] = defaultdict(list)
    for p in purchases:
        bought[p.customer_id].append(p.ts.replace(tzinfo=UTC))
    last_word = {o.task_id: o.status for o in sorted(outcomes, key=lambda o: o.ts)}
    stream_end = max(max(times) for times in bought.values())
    for t in tasks:
        start = t.ts.replace(tzinfo=UTC)
        came_back = [b for b in bought[t.customer_id] if start < b <= start + timedelta(days=30)]
        if t.status == "won_back":
            assert t.ended_at.replace(tzinfo=UTC) in came_back, t
            continue
        decided = t.ended_at.replace(tzinfo=UTC) if t.ended_at else stream_end
        assert all(b > decided - timedelta(days=7) for b in came_back), t
        if t.action == HOLDOUT:  # no contact: it expires unless a purchase wins it back
            assert t.status in ("expired", "escalated", "open"), t
        elif t.status != "escalated":  # unless it had expired, the CRM's word decides
            assert t.status in AFTER_CRM[last_word[t.task_id]], t
    assert any(t.status == "won_back" for t in tasks)
    assert any(t.status == "lost" for t in tasks)

    truth_of = {t.customer_id: t for t in sim.truth()}
    # Churners alerted in the 90 days before they left: the latest such alert,
    # with the most evidence behind it, mostly names the true reason (chance: 1/4).
    latest: dict[str, str] = {}
    for a in sorted(alerts.values(), key=lambda a: a.ts):
        churn = truth_of[a.customer_id].churn_date
        ts = a.ts.replace(tzinfo=UTC)
        if churn and ts < datetime.fromisoformat(churn) <= ts + timedelta(days=90):
            latest[a.customer_id] = a.reason
    right = sum(reason == truth_of[c].reason for c, reason in latest.items())
    assert len(latest) >= 10 and right / len(latest) > 0.4, (right, len(latest))

    # The report's return rates are a direct count of the tasks table.
    report = {
        (r["reason"], r["action"], r["value_tier"]): r
        for r in fetch(engine)["winback_effectiveness"]
    }
    groups: dict[tuple, list[str]] = defaultdict(list)
    for t in tasks:
        if t.status != "escalated":
            groups[(t.reason, t.action, t.value_tier)].append(t.status)
    assert set(report) == set(groups)
    for key, statuses in groups.items():
        settled = [s for s in statuses if s in ("won_back", "lost", "expired")]
        rate = round(settled.count("won_back") / len(settled), 4) if settled else None
        assert (report[key]["tasks"], report[key]["return_rate"]) == (len(statuses), rate)


CRM = ("--idle-exit", "3", "--accept-share", "0.5")


def _week_of(record: SimRecord, start: datetime) -> int:
    ts = datetime.fromisoformat(orjson.loads(record.value)["ts"])
    return (ts - start).days // 7


#: a task's possible status after the CRM's last word, when no purchase won it back
AFTER_CRM = {"declined": {"lost", "expired"}, "accepted": {"in_progress", "expired"}}


def _settle_down(engine: sa.Engine, table: sa.Table, quiet_s: float = 3.0) -> None:
    """Wait until ``table`` has not grown for ``quiet_s`` (silence alerts come late)."""
    count, since = -1, time.monotonic()
    while time.monotonic() - since < quiet_s:
        now = store.count_rows(engine, table)
        if now != count:
            count, since = now, time.monotonic()
        time.sleep(0.2)
