"""Records as churnwatch reads them off the wire and writes them out: one definition each.

The output records that travel as JSON — through the store, the outbox, the topics
and the web views — are ``TypedDict``s: checked by mypy, free at run time (a
dataclass converted to a dict for every record cost several times as much on the
hot path; docs/architecture.md). Their keys, in order, are :func:`fields_of`.
The dead letter, built with some care from the original bytes, is a dataclass.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, get_type_hints


class ChurnAlert(TypedDict):
    """A ``churn-alerts`` record (DESIGN.md)."""

    #: deterministic: the same customer, level and trigger give the same id
    alert_id: str
    #: the customer's case: the ``alert_id`` of the alert that opened it (alerts/policy.py)
    case_id: str
    customer_id: str
    #: event time of the assessment that raised it (ISO 8601)
    ts: str
    score: float
    #: watch, high or critical
    risk_level: str
    #: high, potential or general
    value_tier: str
    #: region, industry, channel and segment (``None`` while unknown)
    segments: dict[str, str | None]
    #: service_quality, competitor, needs_changed or communication
    reason: str
    #: top contributing indicators with their values
    reason_codes: list[dict[str, Any]]
    model_version: str
    lifecycle_stage: str
    #: the event id, or ``stage@time`` for silence
    trigger: str
    #: the purchase model's chance that the customer is still active (``None`` without one)
    p_alive: float | None
    #: purchases the purchase model expects over ``clv_horizon_days``
    expected_purchases: float | None
    #: the customer's expected value over ``clv_horizon_days`` (run-rate spend without a model)
    clv: float | None
    clv_horizon_days: float | None
    #: churn probability x CLV: what the page and the API rank alerts by
    value_at_risk: float | None


class WinbackTask(TypedDict):
    """A ``winback-tasks`` record for the CRM (DESIGN.md)."""

    task_id: str
    alert_id: str
    #: the case of the alert: a case has at most one open task
    case_id: str
    customer_id: str
    ts: str
    action: str
    channel: str
    priority: int
    due_by: str
    owner_queue: str
    reason: str
    value_tier: str
    segments: dict[str, str | None]
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
    #: the customer's segments when it changed (features/segments.py)
    segments: dict[str, str | None]


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
    #: Why the record could not even be read (its headers, say): a dead letter.
    error: str | None = None

    @property
    def source(self) -> str:
        """Original position: identifies a redelivery of the same record."""
        return self.origin or f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def event_topic(self) -> str:
        """The input topic whose schema applies."""
        return self.origin_topic or self.topic


#: the most of a record's value a dead letter carries, and the longest reason
RAW_KEEP_BYTES = 4096
ERROR_KEEP_CHARS = 1000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A ``dead-letters`` record: what was rejected, where it came from and why.

    It stays small whatever came in: ``raw`` holds at most ``RAW_KEEP_BYTES``
    of the value (``raw_truncated`` says when it was cut); ``raw_bytes`` and
    ``raw_sha256`` identify the whole of it, which stays in the source topic at
    ``partition``/``offset``.
    """

    source_topic: str
    partition: int
    offset: int
    #: human-readable reason
    error: str
    #: when it was rejected (ISO 8601)
    ts: str
    #: the original value (its first bytes): UTF-8 text, or base64 when it was not UTF-8
    raw: str
    #: the length and SHA-256 of the whole original value
    raw_bytes: int
    raw_sha256: str
    raw_truncated: bool = False
    raw_encoding: str | None = None
    #: where a re-keyed record was first seen
    origin: str | None = None

    @classmethod
    def of(cls, record: RawRecord, error: str, now: datetime) -> DeadLetter:
        """The dead letter for ``record``, rejected at ``now`` for ``error``."""
        if len(error) > ERROR_KEEP_CHARS:
            error = error[: ERROR_KEEP_CHARS - 1] + "…"
        value = record.value or b""
        cut = value[:RAW_KEEP_BYTES]
        try:
            value.decode("utf-8")
            # a cut can split a character: drop its partial end
            raw, encoding = cut.decode("utf-8", errors="ignore"), None
        except UnicodeDecodeError:
            raw, encoding = base64.b64encode(cut).decode("ascii"), "base64"
        return cls(
            source_topic=record.event_topic,
            partition=record.partition,
            offset=record.offset,
            error=error,
            ts=now.isoformat(),
            raw=raw,
            raw_bytes=len(value),
            raw_sha256=hashlib.sha256(value).hexdigest(),
            raw_truncated=len(cut) < len(value),
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
        letter["raw_bytes"] = self.raw_bytes
        letter["raw_sha256"] = self.raw_sha256
        if self.raw_truncated:
            letter["raw_truncated"] = True
        return letter


def unexpected(exc: BaseException) -> str:
    """The dead-letter reason for an exception validation did not foresee."""
    return f"cannot be read: {type(exc).__name__}: {exc}"
