"""The output records are defined once, and carry every field integrators were promised."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from churnwatch.alerts.config import load_playbook
from churnwatch.alerts.policy import build_alert
from churnwatch.engine.customer import change_record
from churnwatch.models.scoring import Score
from churnwatch.records import (
    AlertEnding,
    ChurnAlert,
    CustomerChange,
    DeadLetter,
    RawRecord,
    WinbackTask,
    fields_of,
)
from churnwatch.winback.tasks import build_task

# the fields of the first topic contract, which no record may drop (docs/contract.md)
CONTRACT_ALERT = {
    "alert_id", "customer_id", "ts", "score", "risk_level", "value_tier", "reason",
    "reason_codes", "model_version",
}  # fmt: skip
CONTRACT_TASK = {
    "task_id", "alert_id", "customer_id", "action", "channel", "priority", "due_by",
    "owner_queue", "reason", "value_tier",
}  # fmt: skip
CONTRACT_DEAD_LETTER = {"source_topic", "partition", "offset", "error", "raw", "ts"}
AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _alert() -> ChurnAlert:
    score = Score(0.8, "competitor", [{"indicator": "days_since_purchase", "value": 41.0}], "r1")
    return build_alert("c1", "e9", AT, "high", score, "potential", "at_risk", "case-1", {})


def test_every_contract_field_is_in_its_record() -> None:
    assert set(fields_of(ChurnAlert)) >= CONTRACT_ALERT
    assert set(fields_of(WinbackTask)) >= CONTRACT_TASK
    record = RawRecord("purchases", 2, 17, b"c1", b"\xff\xfe")
    assert set(DeadLetter.of(record, "not UTF-8", AT).to_json()) >= CONTRACT_DEAD_LETTER


def test_the_builders_make_exactly_the_defined_records() -> None:
    alert = _alert()
    assert tuple(alert) == fields_of(ChurnAlert)
    assert tuple(build_task(alert, load_playbook())) == fields_of(WinbackTask)
    moved = change_record("c1", AT.timestamp(), "value_tier", "general", "high", "e9", {})
    assert tuple(moved) == fields_of(CustomerChange)
    assert fields_of(AlertEnding) == ("alert_id", "status", "ts")


def test_a_dead_letter_keeps_bytes_that_are_not_utf8_as_base64() -> None:
    letter = DeadLetter.of(RawRecord("purchases", 2, 17, b"c1", b"\xff\xfe"), "bad", AT)
    assert letter.to_json() == {
        "source_topic": "purchases",
        "partition": 2,
        "offset": 17,
        "error": "bad",
        "ts": "2026-03-01T12:00:00+00:00",
        "raw": "//4=",
        "raw_encoding": "base64",
        "raw_bytes": 2,
        "raw_sha256": hashlib.sha256(b"\xff\xfe").hexdigest(),
    }
    rekeyed = RawRecord("churnwatch-rekeyed", 0, 3, b"c1", b"{}", "purchases", "purchases/1/9")
    assert DeadLetter.of(rekeyed, "bad", AT).to_json()["origin"] == "purchases/1/9"
    assert DeadLetter.of(rekeyed, "bad", AT).source_topic == "purchases"
