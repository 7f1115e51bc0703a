"""Replay parity with the worker's pipeline, and the backtest's metrics on a known history."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.alerts.config import Capacity, SegmentThresholds, load_playbook, load_policy
from churnwatch.alerts.economics import economics
from churnwatch.engine.pipeline import Pipeline
from churnwatch.events import TOPIC_OF_TYPE, from_payload
from churnwatch.features.segments import SEGMENTS
from churnwatch.features.state import DAY_S
from churnwatch.features.tier import TIERS
from churnwatch.models.rule import RuleScorer
from churnwatch.offline.backtest import (
    Backtest,
    Fired,
    Metrics,
    Span,
    Unjudged,
    recommend,
    tune,
    with_watch,
)
from churnwatch.offline.replay import ASSESS, PURCHASE, Replayed, replay_history
from churnwatch.offline.report import Findings, _markdown, _weekly, analyse
from churnwatch.records import RawRecord
from churnwatch.sim.simulator import Simulation, records
from tests.builders import at, ev, store_rows

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _simulated(count: int) -> list:
    sim = Simulation(60, NOW - timedelta(days=240), NOW, seed=11, churn_share=0.5)
    events = [from_payload(orjson.loads(r.value)) for r in records(sim, bad_share=0, limit=count)]
    return sorted(events, key=lambda e: (e.epoch_s, e.event_id))


def _fields(alert: dict) -> tuple:
    return (
        alert["alert_id"],
        alert["customer_id"],
        alert["ts"],
        alert["score"],
        alert["risk_level"],
        alert["value_tier"],
        alert["reason"],
        alert["reason_codes"],
        alert["trigger"],
    )


#: the default policy with thresholds for two segments: lower in the north, higher for
#: general-tier customers who buy offline
SEGMENTED = load_policy().model_copy(
    update={
        "segment_thresholds": (
            SegmentThresholds(channel="offline", tier="general", watch=0.7, high=0.8, critical=0.9),
            SegmentThresholds(region="north", watch=0.2, high=0.4, critical=0.6),
        )
    }
)


@pytest.mark.parametrize("segmented", [False, True], ids=["by tier", "by segment"])
def test_replay_raises_exactly_the_alerts_of_the_pipeline_however_it_was_batched(
    engine: sa.Engine, segmented: bool
) -> None:
    events = _simulated(4000)
    policy = SEGMENTED if segmented else load_policy()
    replayed = replay_history(
        events, RuleScorer(), policy, load_playbook(), partitions=4, chunk=997
    )
    assert len(replayed.alerts) > 20  # a history that alerts, or the test proves nothing
    if segmented:
        # the segment rules changed what was raised, and the backtest re-runs them alike
        plain = replay_history(events, RuleScorer(), load_policy(), load_playbook(), partitions=4)
        assert sorted(map(_fields, plain.alerts)) != sorted(map(_fields, replayed.alerts))
        north = [a for a in replayed.alerts if a["segments"]["region"] == "north"]
        assert north and all(
            a["risk_level"] == SEGMENTED.segment_thresholds[1].level(a["score"])
            for a in north
            if not (a["value_tier"] == "general" and a["segments"]["channel"] == "offline")
        )
        test = Backtest(replayed, start=events[0].epoch_s, end=events[-1].epoch_s)
        fired = sorted((round(f.at, 3), f.level) for f in test.simulate(policy))
        raised = [
            (round(datetime.fromisoformat(a["ts"]).timestamp(), 3), a["risk_level"])
            for a in replayed.alerts
        ]
        assert fired == sorted(raised)

    processor = Pipeline(
        engine,
        max_future_s=DAY_S,
        allowed_lateness_s=365 * DAY_S,
        clock=lambda: NOW,
        partitions=4,
        policy=policy,
    )
    rng = random.Random(3)
    streamed, i = [], 0
    while i < len(events):  # batches of 1 to 300 events, as a consumer would take them
        size = rng.randint(1, 300)
        batch = [
            RawRecord(
                TOPIC_OF_TYPE[e.type],
                0,
                i + k,
                e.customer_id.encode(),
                orjson.dumps(e.model_dump(mode="json")),
            )
            for k, e in enumerate(events[i : i + size])
        ]
        rng.shuffle(batch)  # order inside a batch must not matter either
        streamed += processor.process(batch).alerts
        i += size
    # each partition's lane raises its alerts in order; lanes interleave by batch
    assert sorted(map(_fields, streamed)) == sorted(map(_fields, replayed.alerts))


def _history() -> list:
    """a buys every 10 days until day 20, complains and stops; b buys every 10 days."""
    events = [ev(day, "purchase", cid="a", amount=50) for day in (0, 10, 20)]
    events += [
        *(
            ev(
                day,
                "complaint_opened",
                cid="a",
                complaint_id=f"k{day}",
                category="price",
                severity=2,
            )
            for day in (30, 31, 32)
        ),
        ev(55, "login", cid="a"),
    ]
    events += [ev(day, "purchase", cid="b", amount=20) for day in range(0, 301, 10)]
    return sorted(events, key=lambda e: (e.epoch_s, e.event_id))


def test_backtest_metrics_on_a_known_history() -> None:
    policy = load_policy()
    replayed = replay_history(_history(), RuleScorer(), policy, load_playbook(), partitions=1)
    first_a = min(a["ts"] for a in replayed.alerts if a["customer_id"] == "a")
    test = Backtest(replayed, start=at(0), end=at(300), horizon_days=90)
    # a's one churn: 90 days after its last purchase (day 20), worth its year's spend
    assert [(c.last_purchase, c.at, c.value) for c in test.churns] == [(at(20), at(110), 150.0)]
    fired = test.simulate(policy)
    assert [(f.at, f.level) for f in fired] == [
        (datetime.fromisoformat(a["ts"]).timestamp(), a["risk_level"]) for a in replayed.alerts
    ]
    metrics = test.measure(fired)
    lead = (at(110) - datetime.fromisoformat(first_a).timestamp()) / DAY_S
    assert (metrics.churns, metrics.caught, metrics.recall) == (1, 1, 1.0)
    assert metrics.value_caught == metrics.value_at_risk == 150.0
    assert metrics.median_lead_days == pytest.approx(lead)
    # b always bought again within 90 days: its alerts, if any, were wrong
    wrong = [f for f in fired if test.trace.customers[f.customer] == "b" and f.at <= at(210)]
    right = [f for f in fired if test.trace.customers[f.customer] == "a"]
    assert metrics.judged == len(wrong) + len(right)
    assert metrics.precision == pytest.approx(len(right) / metrics.judged)
    assert metrics.alerts_per_week == pytest.approx(len(fired) / 300 * 7)


def test_recommend_catches_most_value_within_capacity() -> None:
    policy = load_policy()
    replayed = replay_history(_history(), RuleScorer(), policy, load_playbook(), partitions=1)
    test = Backtest(replayed, start=at(0), end=at(300), horizon_days=90)
    sweep = test.sweep(policy)
    lots = recommend(sweep, capacity_per_day=100)
    # with room for every alert, each tier takes a threshold whose alerts catch a
    best = sum(max(m.value_caught for _, m in rows) for rows in sweep.values())
    assert lots.fits and lots.value_caught == best >= 150.0
    none = recommend(sweep, capacity_per_day=1e-6)
    assert not none.fits
    assert none.alerts_per_day == min(
        sum(m.alerts_per_day for _, m in combo) for combo in itertools.product(*sweep.values())
    )
    moved = with_watch(policy, "general", 0.3)
    assert moved.thresholds["general"].model_dump() == {"watch": 0.3, "high": 0.5, "critical": 0.7}


#: the days a returning customer buys again: never 90 days without a purchase
RETURNS = (50, 110, 170, 230, 290)
#: (prefix, tier, score, customers, of them returning, day scored)
GROUPS = (
    ("h", "high", 0.9, 5, 1, 10),
    ("a", "general", 0.8, 20, 4, 10),
    ("b", "general", 0.3, 20, 15, 10),
    ("c", "general", 0.12, 5, 0, 10),
    ("d", "general", 0.07, 5, 0, 10),
    # scored as it buys: an alert at the moment of its last purchase
    ("e", "general", 0.8, 1, 0, 0),
)


def _fixed() -> Replayed:
    """A backtest with answers known by hand: scores set, 100 EUR a purchase, days 0 to 300.

    Everyone buys on day 0 and is scored once (:data:`GROUPS`); a returning customer
    buys again on :data:`RETURNS`, the others churn on day 90. One more general
    customer buys on day 220 and is scored 0.8 on day 250, in the last horizon.
    The last record is on day 300.
    """
    people = [
        (f"{prefix}{i}", tier, score, (0, *RETURNS) if i < returning else (0,), day)
        for prefix, tier, score, count, returning, day in GROUPS
        for i in range(count)
    ]
    people.append(("late", "general", 0.8, (220,), 250))
    out = Replayed(first_s=at(0), last_s=at(300))
    trace = out.trace
    trace.segment_sets.append(dict.fromkeys(SEGMENTS))
    for cid, tier, score, buys, scored in people:
        trace.index[cid] = len(trace.customers)
        # a purchase comes before the score it leads to, as in the worker
        steps = sorted([(day, PURCHASE, 0.0) for day in buys] + [(scored, ASSESS, score)])
        for day, kind, value in steps:
            trace.customer.append(len(trace.customers))
            trace.at.append(at(day))
            trace.kind.append(kind)
            trace.tier.append(TIERS.index(tier))
            trace.value.append(value)
            trace.segment.append(0)  # no segments known
        trace.customers.append(cid)
        out.purchases[cid] = [(at(day), 100.0) for day in buys]
    out.currencies = {"EUR": sum(map(len, out.purchases.values()))}
    out.replayed = len(trace) + 1
    return out


def _analysed(replayed: Replayed, end: float = at(300), **settings: Any) -> Findings:
    """The fixed backtest from day 0, at a 90-day horizon, for 10 alerts a day."""
    return analyse(
        replayed,
        load_policy(),
        start=at(0),
        end=end,
        horizon_days=90,
        capacity_per_day=10,
        scorer="fixed",
        **settings,
    )


def _counts(m: Metrics) -> tuple:
    rounded = [
        tuple(round(b, 4) for b in i or ()) for i in (m.precision_interval, m.recall_interval)
    ]
    return (m.alerts, m.judged, m.confirmed, m.churns, m.caught, *rounded)


def test_a_fixed_backtest_counts_its_evidence_and_its_intervals() -> None:
    found = _analysed(_fixed())
    # 36 churns: high's 4, general's 16 + 5 + 5 + 5 + 1, each alerted on day 10 (or 0)
    now, then = found.current_metrics, found.recommended_metrics
    assert _counts(now["high"]) == (5, 5, 4, 36, 4, (0.3755, 0.9638), (0.0441, 0.2532))
    # general at 0.45: the 0.8 group, the customer scored as it bought, and the late one
    assert _counts(now["general"]) == (22, 21, 17, 36, 17, (0.6, 0.9233), (0.3199, 0.6299))
    # high is judged on 5 alerts: it keeps its thresholds; potential has no customer
    assert found.plan.held == {
        "high": "not enough evidence (5 alerts): a threshold needs 30 judged alerts",
        "potential": "no alert of this tier could be judged (none raised, or none whose "
        "horizon passed)",
    }
    # general: 0.10 catches more than 0.15, so the sweep widens to 0.05, which catches
    # more still; below it the sweep cannot go, and the report says so
    assert found.recommendation.watch == {"high": 0.35, "potential": 0.40, "general": 0.05}
    assert [w for w, _ in found.sweep["general"]][:2] == [0.05, 0.10]
    assert found.edges == {
        "general": "watch 0.05 sits at the lower edge of the sweep (0.05 is the lowest it "
        "tries): a lower one might be better still"
    }
    assert _counts(then["general"]) == (52, 51, 32, 36, 32, (0.4902, 0.7468), (0.7468, 0.9559))
    assert _counts(then["all"]) == (57, 56, 36, 36, 36, (0.5119, 0.7554), (0.9036, 1.0))
    # the last 90 days: the late customer's alert, and 21 customers still undecided
    assert found.unjudged_now == Unjudged(at(210), at(300), alerts=1, customers=21)
    text = _markdown(found).splitlines()
    for line in (
        "- **high** keeps its thresholds: not enough evidence (5 alerts): a threshold needs "
        "30 judged alerts.",
        "- **general**: watch 0.05 sits at the lower edge of the sweep (0.05 is the lowest it "
        "tries): a lower one might be better still.",
        "- All tiers together: precision 64.3% (51.2-75.5%), at or above the 25% floor.",
        "| general | recommended | 0.05 / 0.25 / 0.45 | 1.2 | 52 | 51 | 32 "
        "| 62.7% (49.0-74.7%) | 36 | 32 | 88.9% (74.7-95.6%) | 80.0 | 3,200 |",
        "| high | 0.35 | 0.1 | 5 | 5 | 4 | 80.0% (37.6-96.4%) | 36 | 4 | 11.1% (4.4-25.3%) "
        "| 80.0 | 400 | current; few: 5 judged |",
        "Money is in **EUR**.",
        "- Contact cost: **0 EUR per alert**: every alert is free, so the recommendation "
        "favours volume: it loosens a threshold as far as the capacity, the precision floor "
        "and the evidence rule allow, as long as that catches more. Give `--contact-cost` "
        "(what working one alert costs) to weigh the team's time.",
    ):
        assert line in text, line
    not_judged = next(line for line in text if line.startswith("**Not judged"))
    assert not_judged.startswith(
        "**Not judged: the last 90 days, 2026-07-30 to 2026-10-28.** The history ends on 2026-10-28"
    )
    assert "Alerts raised in them: 1 now, 1 recommended" in not_judged
    assert "Customers whose last purchase falls in them: 21" in not_judged
    # the customer scored as it bought: a lead of exactly the horizon, and said so
    lead = next(line for line in text if line.startswith("The lead time of a churn"))
    assert "That was 1 of 21 churns caught now and 1 of 36 recommended." in lead


def test_the_evidence_rule_is_a_setting() -> None:
    found = _analysed(_fixed(), min_evidence=5)
    # judged on 5 alerts is enough now; every high threshold raises the same 5 alerts,
    # and of equals the strictest is recommended
    assert "high" not in found.plan.held
    assert found.recommendation.watch["high"] == 0.60


class _Together(Backtest):
    """Replayed together, general's loosest thresholds fall below the floor.

    Tiers interact when replayed together (a customer's alert in one tier holds back
    one in another); this stands in for it: the 0.07 group drags the precision down.
    """

    def measure(
        self, fired: list[Fired], tier: str | None = None, customers: Any = None
    ) -> Metrics:
        out = super().measure(fired, tier, customers)
        names = {self.trace.customers[f.customer] for f in fired}
        if tier is None and "d0" in names:
            out.precision = 0.2
        return out


def test_the_recommendation_is_tightened_until_its_tiers_together_reach_the_floor() -> None:
    policy = load_policy()
    test = _Together(_fixed(), start=at(0), end=at(300), horizon_days=90)
    sweep = test.sweep(policy)
    tuned = tune(test, policy, sweep, 10, economics(TIERS))
    # 0.05 pays most per tier but falls to 20 % together: the next best, 0.10, holds
    assert tuned.plan.watch["general"] == 0.10
    assert (tuned.tightened, tuned.overall_short) == (1, None)
    # high's 4 right of 5 and general's 27 of 46 at 0.10
    assert test.measure(tuned.fired).precision == pytest.approx((4 + 27) / (5 + 46))


def test_stray_records_far_after_the_history_are_left_out() -> None:
    replayed = _fixed()
    # one purchase, in another currency, a year and more after the rest
    replayed.purchases["stray"] = [(at(700), 100.0)]
    replayed.last_s = at(700)
    replayed.currencies["GBP"] = 1
    test = Backtest(replayed, start=at(0), end=at(700), horizon_days=90)
    # the day-300 record is gone from the times: the bulk ends at the last purchase
    assert test.span == Span(at(0), at(290), before=0, after=1)
    assert (test.start, test.end, test.data_end) == (at(0), at(290), at(290))
    found = _analysed(replayed, end=at(700))
    # the volume plot's weeks end with the bulk: 42 weeks, not 100
    assert len(_weekly(found.current_alerts, found.start, found.end)) == 42
    text = _markdown(found)
    assert (
        "**Stray records left out**: 0 before 2026-01-01 and 1 after 2026-10-18, outside the "
        "dense part of the history (where the month around a day holds a tenth of the usual "
        "events)."
    ) in text
    assert (
        "**Amounts mix currencies**: the purchases carry EUR (157 purchases), GBP (1 "
        "purchase), and they are summed unconverted."
    ) in text
    assert found.to_dict()["currency"] == "mixed"


def test_the_backtest_command_prints_tables_a_pipe_can_read(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    with engine.begin() as conn:
        store.append_events(conn, store_rows(_history()))
    engine.dispose()

    def replay(*extra: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "churnwatch", "replay", "--workers", "1"]
        return subprocess.run(
            [*command, "--report", str(tmp_path / "report"), *extra],
            env={**os.environ, "CHURNWATCH_DB_URL": db_url, "COLUMNS": "60"},
            capture_output=True,  # stdout is a pipe, not a terminal
            text=True,
            timeout=120,
        )

    done = replay("--capacity", "2/day")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = lines.index(
        "| tier | thresholds | watch / high / critical | alerts/day "
        "| right/judged: precision (95% CI) | caught/churns: recall (95% CI) "
        "| value caught (EUR) |"
    )
    rows = lines[header + 2 : header + 10]
    # two customers are too few evidence for any tier: every tier keeps its thresholds
    assert [r.split(" | ")[:2] for r in rows] == [
        [f"| {tier}", name] for tier in (*TIERS, "all") for name in ("current", "kept")
    ]
    assert all(r.count(" | ") == 6 for r in rows)
    assert "…" not in done.stdout and "money: EUR" in lines
    # a setting out of range: one line, before anything is replayed
    for option, value, message in (
        ("--precision-floor", "1.5", "the precision floor is a share from 0 to 1 (got 1.5)"),
        ("--contact-cost", "-1", "the contact cost is an amount of 0 or more (got -1)"),
    ):
        refused = replay(option, value)
        assert refused.returncode == 2
        assert refused.stderr == f"cannot backtest: {option}: {message}\n"


def test_the_backtest_judges_each_segment_on_its_own_customers() -> None:
    replayed = _fixed()
    trace = replayed.trace
    north = trace.segment_set({**dict.fromkeys(SEGMENTS), "region": "north"})
    for i, customer in enumerate(trace.customer):
        if trace.customers[customer].startswith("a"):  # the 20 general customers scored 0.8
            trace.segment[i] = north
    test = Backtest(replayed, start=at(0), end=at(300), horizon_days=90)
    members = test.segment_members()
    assert list(members) == ["region"]
    assert {trace.customers[c] for c in members["region"]["north"]} == {f"a{i}" for i in range(20)}
    m = test.measure(test.simulate(load_policy()), customers=members["region"]["north"])
    # each raised one alert on day 10; 16 never came back (churned on day 90, caught), 4 did
    assert (m.alerts, m.judged, m.confirmed, m.churns, m.caught) == (20, 20, 16, 16, 16)
    assert (m.precision, m.recall) == (0.8, 1.0)
    found = _analysed(replayed)
    assert list(found.segments["region"]) == ["north"]
    assert found.to_dict()["segments"]["region"]["north"]["customers"] == 20
    assert "## Per segment" in _markdown(found)
    assert "| region north | 20 | current |" in _markdown(found)


def _north(replayed: Replayed, groups: str) -> None:
    """Put the customers of ``groups`` (prefixes of :data:`GROUPS`) in the region north."""
    trace = replayed.trace
    north = trace.segment_set({**dict.fromkeys(SEGMENTS), "region": "north"})
    for i, customer in enumerate(trace.customer):
        if trace.customers[customer][0] in groups:
            trace.segment[i] = north


def test_a_segment_gets_thresholds_of_its_own_within_its_capacity() -> None:
    replayed = _fixed()
    _north(replayed, "abcd")  # the 50 general customers scored on day 10
    policy = load_policy().model_copy(
        update={"capacity": (Capacity(region="north", per_day=0.07),)}
    )
    found = analyse(
        replayed,
        policy,
        start=at(0),
        end=at(300),
        horizon_days=90,
        capacity_per_day=10,
        scorer="fixed",
        min_evidence=20,
    )
    # the tiers' recommendation (general 0.05) alerts all 50 of the north: 0.17 a day;
    # within 0.07 a day only the 20 scored 0.8 fit, and the strictest such watch is 0.60
    (north,) = found.segment_plans
    assert (north.dimension, north.value, north.customers) == ("region", "north", 50)
    assert (round(north.current_per_day, 4), north.capacity_per_day) == (0.1667, 0.07)
    assert north.capacity_source == "alert policy" and north.plan.fits
    assert north.rules == (
        SegmentThresholds(region="north", tier="general", watch=0.6, high=0.8, critical=1.0),
    )
    # 16 churns caught instead of 31, at the 20 % prior and 100 EUR each: 320 against 620
    assert (north.plan.net_value, north.gain) == (320.0, -300.0)
    assert north.worth_adopting  # it keeps the north within its capacity
    text = _markdown(found)
    assert "| region north | 0.17 | 0.07 (alert policy) | high 0.35 (kept) / potential " in text
    assert "[[segment_thresholds]]\nregion = 'north'\ntier = 'general'\nwatch = 0.6\n" in text
    adopted = found.to_dict()["segment_recommendations"][0]
    assert adopted["rules"] == [
        {"region": "north", "tier": "general", "watch": 0.6, "high": 0.8, "critical": 1.0}
    ]


def test_without_a_capacity_a_segment_spends_its_load_where_it_pays() -> None:
    replayed = _fixed()
    _north(replayed, "ab")  # general: 20 scored 0.8 (16 churn), 20 scored 0.3 (5 churn)
    found = _analysed(replayed, contact_cost=7.0, min_evidence=5)
    # at 7 EUR a contact and 20 EUR saved a caught churn (20 % of 100 EUR), the tier gains
    # from alerting down to 0.05: the 0.12 and 0.07 groups all churn
    assert found.recommendation.watch["general"] == 0.05
    (north,) = found.segment_plans
    assert north.capacity_source == "its load now"
    assert north.capacity_per_day == north.current_per_day
    # in the north the 0.3 group costs 140 EUR and saves 100: the north does better at
    # alerting only the 0.8 group (16 x 20 - 20 x 7 = 180 against 140); of the watches that
    # do (0.35 to 0.60) the strictest
    assert [(r.region, r.tier, r.watch) for r in north.rules] == [("north", "general", 0.6)]
    assert (north.plan.net_value, north.gain) == (180.0, 40.0)
    assert north.worth_adopting
