"""The simulator: seeded, realistic enough, honest ground truth, every bad kind."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from churnwatch.events import TOPIC_OF_TYPE, InvalidEvent, decode
from churnwatch.sim.simulator import BAD_KINDS, REASONS, TOO_LATE_BY, Simulation, records

END = datetime(2026, 6, 1, tzinfo=UTC)
START = END - timedelta(days=365)


def _sim(seed: int = 3) -> Simulation:
    return Simulation(150, START, END, seed=seed)


def test_same_seed_same_records() -> None:
    first = [(r.topic, r.key, r.value) for r in records(_sim(), bad_share=0.05, limit=3000)]
    again = [(r.topic, r.key, r.value) for r in records(_sim(), bad_share=0.05, limit=3000)]
    other = [(r.topic, r.key, r.value) for r in records(_sim(4), bad_share=0.05, limit=3000)]
    assert first == again
    assert first != other


def test_events_are_in_time_order_and_on_their_topic() -> None:
    events = list(_sim().events())
    stamps = [e["ts"] for e in events]
    assert stamps == sorted(stamps)
    assert len({e["event_id"] for e in events}) == len(events)
    types = Counter(e["type"] for e in events)
    for kind in (
        "purchase",
        "refund",
        "login",
        "complaint_opened",
        "complaint_resolved",
        "survey_response",
        "support_contact",
    ):
        assert types[kind] > 0, kind


def test_ground_truth_matches_behaviour() -> None:
    sim = _sim()
    events = list(sim.events())
    truth = {t.customer_id: t for t in sim.truth()}
    churners = [t for t in truth.values() if t.churns]
    assert 0.15 < len(churners) / len(truth) < 0.45
    assert {t.reason for t in churners} == set(REASONS)
    last_purchase: dict[str, str] = {}
    for e in events:
        if e["type"] == "purchase":
            last_purchase[e["customer_id"]] = e["ts"]
    for t in churners:
        assert t.churn_date is not None and t.drift_start < t.churn_date
        if t.customer_id in last_purchase:
            assert last_purchase[t.customer_id] < t.churn_date
    loyal = [t for t in truth.values() if not t.churns]
    assert all(t.reason is None and t.churn_date is None for t in loyal)
    # needs_changed churners never complain while drifting
    for t in churners:
        if t.reason == "needs_changed":
            assert not any(
                e["customer_id"] == t.customer_id
                and e["type"] == "complaint_opened"
                and e["ts"] >= t.drift_start
                for e in events
            )


def test_valid_records_decode_and_bad_ones_are_rejected() -> None:
    now = END + timedelta(hours=1)
    recs = list(records(_sim(), bad_share=0.05, limit=4000))
    kinds = Counter(r.kind for r in recs)
    assert set(BAD_KINDS) <= set(kinds)
    for r in recs:
        if r.kind == "valid":
            event = decode(r.topic, r.value, now=now, max_future_s=3600)
            assert r.key == event.customer_id.encode()
            assert TOPIC_OF_TYPE[event.type] == r.topic
        elif r.kind == "duplicate_event_id":
            clash = orjson.loads(r.value)
            earlier = [orjson.loads(x.value) for x in recs[: recs.index(r)] if x.kind == "valid"]
            assert clash["event_id"] in {e["event_id"] for e in earlier}
        elif r.kind == "too_late":
            # well-formed, but stamped 400 days before an earlier event of its customer
            late = decode(r.topic, r.value, now=now, max_future_s=3600)
            earlier = [orjson.loads(x.value) for x in recs[: recs.index(r)] if x.kind == "valid"]
            original = next(e for e in earlier if e["event_id"] == late.event_id[len("late-") :])
            assert datetime.fromisoformat(original["ts"]) - late.ts == TOO_LATE_BY
            assert original["customer_id"] == late.customer_id
        else:
            with pytest.raises(InvalidEvent):
                decode(r.topic, r.value, now=now, max_future_s=3600)


def test_unkeyed_share_leaves_keys_off() -> None:
    recs = list(records(_sim(), unkeyed_share=0.5, limit=500))
    assert 100 < sum(r.key is None for r in recs) < 400


def test_profiles_carry_segments_whose_churn_differs() -> None:
    sim = Simulation(3000, START, END, seed=3)
    churned = {t.customer_id: t.churns for t in sim.truth()}
    profiles = [e for e in sim.events(until=START + timedelta(days=1)) if e["type"] == "profile"]
    assert len(profiles) == 3000
    by_industry: dict[str, list[bool]] = {}
    for p in profiles:
        assert p["segment"] in ("enterprise", "small_business") and p["region"]
        by_industry.setdefault(p["industry"], []).append(churned[p["customer_id"]])
    rate = {k: sum(v) / len(v) for k, v in by_industry.items()}
    assert set(rate) == {"retail", "hospitality", "healthcare", "manufacturing"}
    # hospitality loses about half, healthcare about one in six
    assert rate["hospitality"] > 0.4 > 0.2 > rate["healthcare"]
