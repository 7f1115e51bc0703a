"""Every kind of poison a producer can send, among valid events, through the real worker.

Each poison record gets one dead letter with its reason (or is stored, where
it is valid after all); every valid event is stored exactly once, those sent
after the poison included.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from churnwatch import store
from churnwatch.events import MAX_RECORD_BYTES
from churnwatch.features.state import KEEP_DAYS
from churnwatch.records import RAW_KEEP_BYTES
from churnwatch.settings import Settings
from churnwatch.sim.broker import EmbeddedBroker
from churnwatch.sim.demo import worker_process
from churnwatch.streams.wire import ORIGIN_HEADER, ORIGIN_TOPIC_HEADER
from churnwatch.topics import DEAD_LETTERS, REKEYED, ensure_topics
from tests.contract_helpers import assert_fit
from tests.kafka_helpers import read_topic, values, wait_for
from tests.parity import assert_stored_exactly_once
from tests.reference import REFERENCE

pytestmark = pytest.mark.kafka
PARTITIONS = 4
NOW = REFERENCE


@dataclass
class Sent:
    """A record to produce, and what the worker must make of it."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    #: a substring of its dead letter's reason; ``None``: a valid event, to be stored
    reason: str | None
    #: the event as it must be stored (valid records only)
    event: dict | None = None


def _purchase(eid: str, cid: str, hours: float, **extra: object) -> dict:
    return {
        "event_id": eid,
        "customer_id": cid,
        "ts": (NOW - timedelta(days=20) + timedelta(hours=hours)).isoformat(),
        "type": "purchase",
        "amount": 12.5,
        "currency": "EUR",
        "order_id": f"o-{eid}",
        "channel": "online",
        **extra,
    }


def _valid(i: int) -> Sent:
    cid = f"c{i % 7}"
    event = _purchase(f"v{i}", cid, i)
    return Sent("purchases", cid.encode(), orjson.dumps(event), [], None, event)


def _poison(obj: dict | bytes | None, reason: str, **kw: object) -> Sent:
    value = obj if isinstance(obj, bytes | None) else orjson.dumps(obj)
    return Sent(
        kw.get("topic", "purchases"),  # type: ignore[arg-type]
        kw.get("key", b"c1"),  # type: ignore[arg-type]
        value,
        kw.get("headers", []),  # type: ignore[arg-type]
        reason,
    )


def _poisons() -> list[Sent]:
    p = _purchase
    nested: object = 1
    for _ in range(20):
        nested = [nested]
    rekeyed_ok = orjson.dumps(p("x-rk", "c1", 1))
    out = [
        # origin headers mean something on the re-keyed topic only
        _poison(
            rekeyed_ok,
            "header churnwatch-origin: not UTF-8",
            topic=REKEYED,
            headers=[(ORIGIN_TOPIC_HEADER, b"purchases"), (ORIGIN_HEADER, b"\xff\xfe")],
        ),
        _poison(
            rekeyed_ok,
            "header churnwatch-origin: 400 bytes (limit 300)",
            topic=REKEYED,
            headers=[(ORIGIN_TOPIC_HEADER, b"purchases"), (ORIGIN_HEADER, b"p" * 400)],
        ),
        _poison(
            rekeyed_ok,
            "header churnwatch-origin-topic: not UTF-8",
            topic=REKEYED,
            headers=[(ORIGIN_TOPIC_HEADER, b"\xc3\x28")],
        ),
        _poison(
            rekeyed_ok,
            "header churnwatch-origin: contains control characters",
            topic=REKEYED,
            headers=[(ORIGIN_TOPIC_HEADER, b"purchases"), (ORIGIN_HEADER, b"purchases/0/\x00")],
        ),
        _poison(p("x-ts1", "c1", 1, ts="0001-01-01T00:00:00+01:00"), "is out of range"),
        _poison(p("x-ts2", "c1", 1, ts="9999-12-31T23:59:59-01:00"), "is out of range"),
        _poison(p("x-ts3", "c1", 1, ts="1969-12-31T23:59:59Z"), "is before 1970-01-01"),
        _poison(p("x-ts4", "c1", 1, ts=1e20), "is out of range"),
        _poison(bytes(i % 32 for i in range(200_000)), "record too large: 200000 bytes"),
        _poison(p("x-amt", "c1", 1, amount=1e306), "less than or equal to 1000000000"),
        _poison(p("x-nul", "c1", 1, note="a\x00b"), "note: contains a NUL character"),
        _poison(p("x-nul2", "c1\x00", 1), "customer_id: contains a NUL character"),
        _poison(p("x-ctl\x07", "c1", 1), "event_id: contains the control character"),
        _poison(p("x" * 201, "c1", 1), "event_id: longer than 200 characters"),
        _poison(
            p("x-many", "c1", 1, **{f"f{i}": i for i in range(40)}), "too many unknown fields: 40"
        ),
        _poison(p("x-big", "c1", 1, blob="b" * 9000), "unknown fields too large"),
        _poison(p("x-deep", "c1", 1, deep=nested), "nested deeper than 16 levels"),
        _poison(
            {**p("x-pts", "c1", 1), "type": "points_earned", "points": 10**12},
            "points: at most 1e+09",
            topic="engagement",
        ),
        _poison(b"\xff\xfe\xfd", "not valid JSON"),
        _poison(None, "empty record (no value)"),
    ]
    rng = random.Random(19)
    for i in range(12):  # generated junk: bytes, and valid JSON of the wrong shape
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        out.append(_poison(b"\x00" + junk, "not valid JSON"))
        out.append(_poison(orjson.dumps([i, {"k": "v" * i}]), "must be a JSON object"))
    return out


def _valid_after_all() -> list[Sent]:
    """Odd records that are valid: stored, with their ids in NFC form."""
    nfd = unicodedata.normalize("NFD", "v-é-nfd")
    event = _purchase(nfd, "c2", 3)
    stored = {**event, "event_id": unicodedata.normalize("NFC", nfd)}
    # an origin header on an input topic is ignored, whatever it holds
    headers = [(ORIGIN_HEADER, b"\xff" * 500), (ORIGIN_TOPIC_HEADER, b"\x00")]
    odd = _purchase("v-headers", "c3", 4)
    return [
        Sent("purchases", b"c2", orjson.dumps(event), [], None, stored),
        Sent("purchases", b"c3", orjson.dumps(odd), headers, None, odd),
    ]


def _send(bootstrap: str, batch: list[Sent]) -> dict[tuple[str, int, int], Sent]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024)
    try:
        futures = [
            (s, producer.send(s.topic, key=s.key, value=s.value, headers=s.headers)) for s in batch
        ]
        producer.flush()
        return {(m.topic, m.partition, m.offset): s for s, f in futures if (m := f.get(10))}
    finally:
        producer.close()


def test_every_poison_is_a_dead_letter_and_every_valid_event_is_stored(
    kafka_broker: EmbeddedBroker, db_url: str, tmp_path: Path
) -> None:
    poisons, odd = _poisons(), _valid_after_all()
    before = [_valid(i) for i in range(0, 150)]
    mixed: list[Sent] = []
    rest = iter(_valid(i) for i in range(150, 300))
    for poison in [*poisons, *odd]:
        mixed += [poison, next(rest)]
    mixed += list(rest)
    after = [_valid(i) for i in range(300, 400)]
    valid = [s.event for s in [*before, *mixed, *after] if s.reason is None]

    ensure_topics(kafka_broker.bootstrap, PARTITIONS)
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    log = tmp_path / "worker.log"
    settings = Settings(
        broker=kafka_broker.bootstrap,
        db_url=db_url,
        partitions=PARTITIONS,
        web_port=0,
        allowed_lateness_s=KEEP_DAYS * 86400.0,
    )
    sent: dict[tuple[str, int, int], Sent] = {}
    with worker_process(settings, kafka_broker.bootstrap, log) as worker:
        for batch in (before, mixed, after):
            sent |= _send(kafka_broker.bootstrap, batch)
        wait_for(lambda: store.count_rows(engine, store.events) >= len(valid), "every event", log)
        letters = values(read_topic(kafka_broker.bootstrap, DEAD_LETTERS, len(poisons)))
        assert worker.poll() is None

    assert_stored_exactly_once(engine, valid)  # type: ignore[arg-type]
    assert len(letters) == len(poisons)
    assert_fit(DEAD_LETTERS, letters)  # the shape of docs/schemas/dead-letters.json
    found = {}
    for letter in letters:
        where = (letter["source_topic"], letter["partition"], letter["offset"])
        assert where not in found, f"two dead letters for {where}"
        found[where] = letter
    expected = {where: s for where, s in sent.items() if s.reason is not None}
    assert found.keys() == expected.keys()
    for where, letter in found.items():
        poison = expected[where]
        assert poison.reason in letter["error"], (poison.reason, letter["error"])
        raw = poison.value or b""
        assert letter["raw_bytes"] == len(raw)
        assert letter["raw_sha256"] == hashlib.sha256(raw).hexdigest()
        assert len(orjson.dumps(letter)) < 8 * RAW_KEEP_BYTES
    [huge] = [d for d in letters if d["raw_bytes"] > MAX_RECORD_BYTES]
    assert huge["raw_truncated"] is True and len(huge["raw"]) == RAW_KEEP_BYTES
