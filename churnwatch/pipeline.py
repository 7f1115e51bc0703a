"""One batch of raw input records → store, customer state, alerts, dead letters.

Plain Python, no Faust: the stream agent hands in what it consumed and sends
out what comes back. Everything a batch changes in SQL — new events, the state
of the customers they touched, the alerts they raised — is written in one
transaction, and only events that were new to the store are folded, so a
redelivered batch changes nothing (DESIGN.md, "the store decides").
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from churnwatch import store
from churnwatch.alerts.policy import build_alert, next_level
from churnwatch.events import Event, InvalidEvent, decode, payload_of
from churnwatch.features.state import CustomerState, apply
from churnwatch.features.tier import value_tier
from churnwatch.models.rule import rule_score
from churnwatch.topics import REKEYED


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A consumed record as it came off the wire."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    #: The topic the record was first produced to (differs for re-keyed records).
    origin_topic: str | None = None
    #: Where the record was first seen, e.g. ``purchases/2/1734``.
    origin: str | None = None

    @property
    def source(self) -> str:
        """Original position: identifies a redelivery of the same record."""
        return self.origin or f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def event_topic(self) -> str:
        """The input topic whose schema applies."""
        return self.origin_topic or self.topic


@dataclass
class BatchResult:
    """What a batch produced, for the caller to publish after the commit."""

    #: customer_id → new state row (``{"alert_level": …, "features": {…}}``)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    #: valid records whose Kafka key is not their customer_id: to be re-keyed
    misrouted: list[tuple[str, RawRecord]] = field(default_factory=list)
    stored: int = 0
    redelivered: int = 0


def dead_letter(record: RawRecord, error: str, now: datetime) -> dict[str, Any]:
    """The ``dead-letters`` record for ``record`` (DESIGN.md shape)."""
    letter: dict[str, Any] = {
        "source_topic": record.event_topic,
        "partition": record.partition,
        "offset": record.offset,
        "error": error,
        "ts": now.isoformat(),
    }
    if record.origin:
        letter["origin"] = record.origin
    raw = record.value or b""
    try:
        letter["raw"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        letter["raw"] = base64.b64encode(raw).decode("ascii")
        letter["raw_encoding"] = "base64"
    return letter


class BatchProcessor:
    """Validates, stores and folds batches of raw records."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_future_s: float,
        clock: Callable[[], datetime] = store.utcnow,
    ) -> None:
        self.engine = engine
        self.max_future_s = max_future_s
        self.clock = clock

    def _decode_all(
        self, records: Sequence[RawRecord], result: BatchResult, now: datetime
    ) -> list[tuple[RawRecord, Event]]:
        accepted: list[tuple[RawRecord, Event]] = []
        for record in records:
            try:
                event = decode(
                    record.event_topic, record.value, now=now, max_future_s=self.max_future_s
                )
            except InvalidEvent as exc:
                result.dead_letters.append(dead_letter(record, str(exc), now))
                continue
            key_ok = record.key == event.customer_id.encode()
            if not key_ok and record.topic != REKEYED:
                result.misrouted.append((event.customer_id, record))
                continue
            accepted.append((record, event))
        return accepted

    def process(
        self,
        records: Sequence[RawRecord],
        states: Mapping[str, dict[str, Any]],
    ) -> BatchResult:
        """Process one batch; ``states`` is the hot copy of customer state rows."""
        now = self.clock()
        result = BatchResult()
        accepted = self._decode_all(records, result, now)

        # A second record with an id already in this batch is a duplicate, not new.
        first_of_id: dict[str, tuple[RawRecord, Event]] = {}
        rows = []
        for record, event in accepted:
            if event.event_id in first_of_id:
                first = first_of_id[event.event_id][0]
                error = _duplicate_message(event.event_id, first.source)
                result.dead_letters.append(dead_letter(record, error, now))
                continue
            first_of_id[event.event_id] = (record, event)
            rows.append(
                {
                    "event_id": event.event_id,
                    "customer_id": event.customer_id,
                    "topic": record.event_topic,
                    "type": event.type,
                    "ts": event.ts,
                    "payload": payload_of(event),
                    "source": record.source,
                    "stored_at": now,
                }
            )

        with self.engine.begin() as conn:
            new_ids = store.append_events(conn, rows)
            clashes = [eid for eid in first_of_id if eid not in new_ids]
            stored_from = store.sources_of(conn, clashes)
            for eid in clashes:
                record, _ = first_of_id[eid]
                if stored_from.get(eid) == record.source:
                    result.redelivered += 1
                else:
                    error = _duplicate_message(eid, stored_from[eid])
                    result.dead_letters.append(dead_letter(record, error, now))

            partitions: dict[str, int] = {}
            working: dict[str, _Working] = {}
            for eid in first_of_id:
                if eid not in new_ids:
                    continue
                record, event = first_of_id[eid]
                self._fold(event, states, working, result)
                partitions[event.customer_id] = record.partition

            result.states = {cid: w.row() for cid, w in working.items()}
            store.save_states(
                conn,
                [
                    {"customer_id": cid, "partition": partitions[cid], "state": row}
                    for cid, row in result.states.items()
                ],
            )
            store.add_alerts(conn, [_alert_row(alert) for alert in result.alerts])
        result.stored = len(new_ids)
        return result

    @staticmethod
    def _fold(
        event: Event,
        states: Mapping[str, dict[str, Any]],
        working: dict[str, _Working],
        result: BatchResult,
    ) -> None:
        """Advance the customer's state by ``event``; score and maybe alert."""
        cid = event.customer_id
        current = working.get(cid)
        if current is None:
            current = working[cid] = _Working.from_row(cid, states.get(cid))
        apply(current.features, event)
        score = rule_score(current.features, event.epoch_s)
        level, raise_alert = next_level(current.alert_level, score.value)
        current.alert_level = level
        if raise_alert and level is not None:
            result.alerts.append(build_alert(event, level, score, value_tier(current.features)))


@dataclass(slots=True)
class _Working:
    """A customer's state while a batch is folded into it."""

    features: CustomerState
    alert_level: str | None

    @classmethod
    def from_row(cls, customer_id: str, row: Mapping[str, Any] | None) -> _Working:
        if row is None:
            return cls(CustomerState(customer_id), None)
        return cls(CustomerState.from_dict(row["features"]), row["alert_level"])

    def row(self) -> dict[str, Any]:
        """The stored form: ``{"alert_level": …, "features": {…}}``."""
        return {"alert_level": self.alert_level, "features": self.features.to_dict()}


def _duplicate_message(event_id: str, first_source: str | None) -> str:
    return f"duplicate event_id {event_id!r}: already stored from {first_source}"


def _alert_row(alert: Mapping[str, Any]) -> dict[str, Any]:
    return {**alert, "ts": datetime.fromisoformat(alert["ts"])}
