"""Validation of input records: every kind of bad input gets a clear reason."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from churnwatch.events import (
    ComplaintOpened,
    InvalidEvent,
    PurchaseEvent,
    SurveyResponse,
    decode,
    payload_of,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
PROFILE = {
    "event_id": "p1",
    "customer_id": "c1",
    "ts": "2026-05-01T10:00:00Z",
    "type": "profile",
    "region": "north",
}
COMPLAINT = {
    "event_id": "k",
    "customer_id": "c",
    "ts": 1777629600000,
    "type": "complaint_opened",
    "complaint_id": "k1",
    "category": "price",
    "severity": 2,
}
PURCHASE = {
    "event_id": "e1",
    "customer_id": "c1",
    "ts": "2026-05-01T10:00:00+02:00",
    "type": "purchase",
    "amount": 12.5,
    "currency": "EUR",
    "order_id": "o1",
    "channel": "online",
}


def _decode(topic: str, obj: object) -> object:
    raw = obj if isinstance(obj, bytes) else orjson.dumps(obj)
    return decode(topic, raw, now=NOW, max_future_s=3600)


def test_valid_purchase_is_normalised_to_utc_and_keeps_extra_fields() -> None:
    event = _decode("purchases", {**PURCHASE, "coupon": "SPRING"})
    assert isinstance(event, PurchaseEvent)
    assert event.ts == datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    assert event.amount == 12.5
    assert payload_of(event)["coupon"] == "SPRING"
    assert payload_of(event)["ts"] == "2026-05-01T08:00:00+00:00"


def test_epoch_milliseconds_are_accepted() -> None:
    event = _decode("purchases", {**PURCHASE, "ts": 1777629600000})
    assert event.ts == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def test_types_of_each_topic() -> None:
    opened = _decode(
        "complaints",
        COMPLAINT,
    )
    assert isinstance(opened, ComplaintOpened) and opened.category == "price"
    survey = _decode(
        "engagement",
        {
            "event_id": "s",
            "customer_id": "c",
            "ts": 1777629600000,
            "type": "survey_response",
            "nps": 3,
        },
    )
    assert isinstance(survey, SurveyResponse) and survey.nps == 3


@pytest.mark.parametrize(
    ("topic", "value", "reason"),
    [
        ("purchases", b"{not json", "not valid JSON"),
        ("purchases", b"", "not valid JSON"),
        ("purchases", b"\xff\xfe", "not valid JSON"),
        ("purchases", [PURCHASE], "must be a JSON object, got an array"),
        ("purchases", "purchase", "must be a JSON object, got a string"),
        (
            "purchases",
            {k: v for k, v in PURCHASE.items() if k != "customer_id"},
            "customer_id: Field required",
        ),
        ("purchases", {k: v for k, v in PURCHASE.items() if k != "type"}, "missing field 'type'"),
        (
            "purchases",
            {**PURCHASE, "customer_id": 17},
            "customer_id: Input should be a valid string",
        ),
        ("purchases", {**PURCHASE, "amount": "12.5"}, "amount: Input should be a valid number"),
        ("purchases", {**PURCHASE, "amount": -3}, "amount: Input should be greater than 0"),
        ("purchases", {**PURCHASE, "amount": 0}, "amount: Input should be greater than 0"),
        (
            "purchases",
            {**PURCHASE, "type": "teleport"},
            "unknown type 'teleport' on topic purchases",
        ),
        ("complaints", PURCHASE, "unknown type 'purchase' on topic complaints"),
        ("purchases", {**PURCHASE, "ts": "2026-05-01T10:00:00"}, "has no UTC offset"),
        ("purchases", {**PURCHASE, "ts": "yesterday"}, "is not ISO-8601"),
        ("purchases", {**PURCHASE, "ts": 1777629600}, "looks like epoch seconds"),
        ("purchases", {**PURCHASE, "ts": "2026-06-01T02:00:01Z"}, "h in the future"),
        # every time field keeps the limit, not only ts
        (
            "customers",
            {**PROFILE, "signup_ts": "9999-12-31T23:59:59Z"},
            "signup_ts: 9999-12-31T23:59:59+00:00 is ",
        ),
        (
            "customers",
            {**PROFILE, "signup_ts": "2026-06-03T00:00:00Z"},
            "signup_ts: 2026-06-03T00:00:00+00:00 is 48.0 h in the future (limit 1.0 h)",
        ),
        (
            "engagement",
            {"event_id": "s", "customer_id": "c", "ts": 1777629600000, "type": "survey_response"},
            "needs 'satisfaction'",
        ),
        (
            "complaints",
            {**COMPLAINT, "category": "weather"},
            "category: Input should be",
        ),
    ],
)
def test_bad_input_is_rejected_with_a_reason(topic: str, value: object, reason: str) -> None:
    with pytest.raises(InvalidEvent) as excinfo:
        _decode(topic, value)
    assert reason in str(excinfo.value)


def test_missing_value_is_rejected() -> None:
    with pytest.raises(InvalidEvent, match="empty record"):
        decode("purchases", None, now=NOW, max_future_s=0)


def test_one_hour_ahead_is_within_the_limit() -> None:
    event = _decode("purchases", {**PURCHASE, "ts": "2026-06-01T01:00:00Z"})
    assert event.ts == datetime(2026, 6, 1, 1, tzinfo=UTC)
