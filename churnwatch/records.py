"""Records as churnwatch reads them off the wire and writes them out: one definition each.

The output records that travel as JSON — through the store, the outbox, the topics
and the web views — are ``TypedDict``s: checked by mypy, free at run time (a
dataclass converted to a dict for every record cost several times as much on the
hot path; docs/architecture.md). Their keys, in order, are :func:`fields_of`.
The dead letter, built with some care from the original bytes, is a dataclass.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, get_type_hints


class ChurnAlert(TypedDict):
    """A ``churn-alerts`` record (DESIGN.md)."""

    #: deterministic: the same customer, level and trigger give the same id
    alert_id: str
    customer_id: str
    #: event time of the assessment that raised it (ISO 8601)
    ts: str
    score: float
    #: watch, high or critical
    risk_level: str
    #: high, potential or general
    value_tier: str
    #: service_quality, competitor, needs_changed or communication
    reason: str
    #: top contributing indicators with their values
    reason_codes: list[dict[str, Any]]
    model_version: str
    lifecycle_stage: str
    #: the event id, or ``stage@time`` for silence
    trigger: str


class WinbackTask(TypedDict):
    """A ``winback-tasks`` record for the CRM (DESIGN.md)."""

    task_id: str
    alert_id: str
    customer_id: str
    ts: str
    action: str
    channel: str
    priority: int
    due_by: str
    owner_queue: str
    reason: str
    value_tier: str
    risk_level: str


class CustomerChange(TypedDict):
    """A ``customer-changes`` record: a lifecycle stage or value tier moved."""

    change_id: str
    customer_id: str
    ts: str
    #: ``lifecycle_stage`` or ``value_tier``
    field: str
    from_value: str | None
    to_value: str
    cause: str


class AlertEnding(TypedDict):
    """An alert (and its task) that ended: won back, expired or escalated."""

    alert_id: str
    status: str
    ts: str


def fields_of(record: type) -> tuple[str, ...]:
    """The keys of a ``TypedDict`` record, in their defined order."""
    return tuple(get_type_hints(record))


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
    #: Where the record was first seen, as ``topic/partition/offset``.
    origin: str | None = None

    @property
    def source(self) -> str:
        """Original position: identifies a redelivery of the same record."""
        return self.origin or f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def event_topic(self) -> str:
        """The input topic whose schema applies."""
        return self.origin_topic or self.topic


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A ``dead-letters`` record: what was rejected, where it came from and why."""

    source_topic: str
    partition: int
    offset: int
    #: human-readable reason
    error: str
    #: when it was rejected (ISO 8601)
    ts: str
    #: the original value: UTF-8 text, or base64 when it was not valid UTF-8
    raw: str
    raw_encoding: str | None = None
    #: where a re-keyed record was first seen
    origin: str | None = None

    @classmethod
    def of(cls, record: RawRecord, error: str, now: datetime) -> DeadLetter:
        """The dead letter for ``record``, rejected at ``now`` for ``error``."""
        value = record.value or b""
        try:
            raw, encoding = value.decode("utf-8"), None
        except UnicodeDecodeError:
            raw, encoding = base64.b64encode(value).decode("ascii"), "base64"
        return cls(
            source_topic=record.event_topic,
            partition=record.partition,
            offset=record.offset,
            error=error,
            ts=now.isoformat(),
            raw=raw,
            raw_encoding=encoding,
            origin=record.origin,
        )

    def to_json(self) -> dict[str, Any]:
        """The topic record (DESIGN.md shape); optional fields only when set."""
        letter: dict[str, Any] = {
            "source_topic": self.source_topic,
            "partition": self.partition,
            "offset": self.offset,
            "error": self.error,
            "ts": self.ts,
        }
        if self.origin:
            letter["origin"] = self.origin
        letter["raw"] = self.raw
        if self.raw_encoding:
            letter["raw_encoding"] = self.raw_encoding
        return letter
