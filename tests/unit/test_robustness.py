"""Arbitrary input through validation and the fold: only :class:`InvalidEvent` may come out.

Also the pieces of the intake that must never raise: reading a record's
headers, and writing its dead letter, which stays small.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnwatch.events import (
    ENGAGEMENT_TYPES,
    INPUT_TOPICS,
    MAX_AMOUNT,
    TOPIC_OF_TYPE,
    InvalidEvent,
    decode,
    payload_of,
)
from churnwatch.features.row import feature_row
from churnwatch.features.state import apply
from churnwatch.records import ERROR_KEEP_CHARS, RAW_KEEP_BYTES, DeadLetter, RawRecord
from churnwatch.streams.wire import ORIGIN_HEADER, ORIGIN_TOPIC_HEADER, raw_record
from churnwatch.topics import REKEYED

NOW = datetime(2026, 6, 1, tzinfo=UTC)

extreme_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [0, -1, 1e306, 1e308, -1e308, 5e-324, MAX_AMOUNT, MAX_AMOUNT * (1 + 1e-15), 2**63, 2**64]
    ),
)
texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
scalars = st.one_of(st.none(), st.booleans(), extreme_numbers, texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
)
timestamps = st.one_of(
    moments.map(lambda d: d.isoformat()),
    st.sampled_from(
        ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1970-01-01T00:00:00Z"]
    ),
    (st.just(NOW) | moments).map(lambda d: d.isoformat()),
    extreme_numbers,
    json_values,
)
ids = st.one_of(st.sampled_from(["c1", "e\u0301", "a" * 200, "a" * 201, "x\x00", "x\x07"]), texts)
fields = {
    "event_id": ids,
    "customer_id": ids,
    "ts": timestamps,
    "type": st.sampled_from([*TOPIC_OF_TYPE, "gift", "login"]) | json_values,
    "amount": extreme_numbers | json_values,
    "currency": st.sampled_from(["EUR", "E\x00R"]) | json_values,
    "order_id": ids,
    "channel": ids,
    "category": st.sampled_from(["price", "other"]) | ids,
    "complaint_id": ids,
    "severity": extreme_numbers,
    "satisfaction": extreme_numbers,
    "nps": extreme_numbers,
    "points": extreme_numbers | json_values,
    "answered": json_values,
    "signup_ts": timestamps,
    "region": ids,
}
_BASE = {"event_id": "e1", "customer_id": "c1", "ts": "2026-05-30T12:00:00+02:00"}
_ORDER = {"currency": "EUR", "order_id": "o", "channel": "web"}
TEMPLATES = [
    {**_BASE, **_ORDER, "type": "purchase", "amount": 10.0},
    {**_BASE, **_ORDER, "type": "refund", "amount": 1e9},
    {**_BASE, "type": "complaint_opened", "complaint_id": "k", "category": "price", "severity": 3},
    {**_BASE, "type": "complaint_resolved", "complaint_id": "k", "satisfaction": 5},
    {**_BASE, "type": "survey_response", "nps": 10},
    {**_BASE, "type": "points_earned", "points": 1e9},
    {**_BASE, "type": "points_redeemed", "points": 2**62},
    {**_BASE, "type": "support_contact", "answered": True},
    {**_BASE, "type": "profile", "signup_ts": 1_600_000_000_000, "region": "north"},
]


@st.composite
def records(draw: st.DrawFn) -> dict:
    """A valid event with up to three fields replaced by anything at all."""
    obj = dict(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from([*fields, "extra"]))
        obj[name] = draw(fields.get(name, json_values))
    return obj


def _raw(obj: object, as_text: bool) -> bytes:
    # the stdlib writes integers of any size, and Infinity for the largest floats
    return json.dumps(obj).encode() if as_text else orjson.dumps(obj)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    topic=st.sampled_from(INPUT_TOPICS),
    obj=records() | json_values,
    as_text=st.booleans(),
    engagement=st.sampled_from(ENGAGEMENT_TYPES),
)
def test_only_invalid_event_escapes_decode_and_the_fold(
    topic: str, obj: object, as_text: bool, engagement: str
) -> None:
    if isinstance(obj, dict) and obj.get("type") == "login":
        obj["type"] = engagement
    kind = obj.get("type") if isinstance(obj, dict) else None
    if isinstance(kind, str) and kind in TOPIC_OF_TYPE:
        topic = TOPIC_OF_TYPE[kind]  # mostly the right topic, to get past it
    try:
        raw = _raw(obj, as_text)
    except TypeError:  # orjson refuses integers past 64 bits: the stdlib writes them
        raw = _raw(obj, True)
    try:
        event = decode(topic, raw, now=NOW, max_future_s=86400)
    except InvalidEvent:
        return
    # what the store and the fold do with an accepted event
    orjson.dumps(payload_of(event))
    state = apply(None, event)
    state = apply(state, event.model_copy(update={"ts": event.ts + timedelta(days=400)}))
    orjson.dumps(state.to_dict())
    orjson.dumps(feature_row(state))


def test_a_dead_letter_stays_small_and_names_the_whole_record() -> None:
    value = ("é" * 5000).encode()  # a cut through a two-byte character
    record = RawRecord("purchases", 1, 7, b"k", value)
    letter = DeadLetter.of(record, "x" * 5000, NOW).to_json()
    assert letter["raw"] == "é" * (RAW_KEEP_BYTES // 2)
    assert letter["raw_bytes"] == 10_000 and letter["raw_truncated"] is True
    assert letter["raw_sha256"] == hashlib.sha256(value).hexdigest()
    assert len(letter["error"]) == ERROR_KEEP_CHARS and letter["error"].endswith("…")
    assert (letter["partition"], letter["offset"], letter["source_topic"]) == (1, 7, "purchases")


def test_a_binary_dead_letter_is_cut_before_base64() -> None:
    value = b"\xff" * 100_000
    letter = DeadLetter.of(RawRecord("purchases", 0, 0, None, value), "bad", NOW).to_json()
    assert base64.b64decode(letter["raw"]) == b"\xff" * RAW_KEEP_BYTES
    assert letter["raw_encoding"] == "base64" and letter["raw_bytes"] == 100_000
    small = DeadLetter.of(RawRecord("purchases", 0, 1, None, b"{oops"), "bad", NOW).to_json()
    assert small["raw"] == "{oops" and "raw_truncated" not in small


def _event(topic: str, headers: object, key: object = b"c1", value: object = b"{}"):
    message = SimpleNamespace(
        topic=topic, partition=2, offset=9, key=key, value=value, headers=headers
    )
    return SimpleNamespace(message=message)


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ([(ORIGIN_HEADER, b"\xff")], "header churnwatch-origin: not UTF-8 (invalid start byte)"),
        ([(ORIGIN_HEADER, b"a" * 301)], "header churnwatch-origin: 301 bytes (limit 300)"),
        ({ORIGIN_TOPIC_HEADER: b"\x00"}, "header churnwatch-origin-topic: contains control"),
        (42, "cannot be read: TypeError"),
    ],
)
def test_unreadable_headers_on_the_rekeyed_topic_are_a_reason(headers, error) -> None:
    record = raw_record(_event(REKEYED, headers))
    assert record.error is not None and record.error.startswith(error)
    assert (record.partition, record.offset, record.value) == (2, 9, b"{}")


def test_origin_headers_are_read_on_the_rekeyed_topic_only() -> None:
    headers = [(ORIGIN_TOPIC_HEADER, b"purchases"), (ORIGIN_HEADER, b"purchases/1/5")]
    rekeyed = raw_record(_event(REKEYED, headers))
    assert (rekeyed.origin_topic, rekeyed.origin, rekeyed.error) == (
        "purchases",
        "purchases/1/5",
        None,
    )
    elsewhere = raw_record(_event("purchases", [(ORIGIN_HEADER, b"\xff" * 999)]))
    assert (elsewhere.origin, elsewhere.error, elsewhere.source) == (None, None, "purchases/2/9")


def test_a_key_or_value_that_is_not_bytes_is_a_reason() -> None:
    assert raw_record(_event("purchases", [], key=3)).error == "key: not bytes (int)"
    assert raw_record(_event("purchases", [], value="text")).error == "value: not bytes (str)"
