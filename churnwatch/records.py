"""Records as churnwatch reads them off the wire and writes them out: one definition each.

The output records that travel as JSON — through the store, the outbox, the topics
and the web views — are ``TypedDict``s: checked by mypy, free at run time (a
dataclass converted to a dict for every record cost several times as much on the
hot path; docs/architecture.md). Their keys, in order, are :func:`fields_of`.
The dead letter, built with some care from the original bytes, is a dataclass
whose topic record is :class:`DeadLetterRecord`. The JSON Schemas of the topic
records (``churnwatch schema``, docs/contract.md) are generated from these types.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired, get_type_hints

from pydantic import WithJsonSchema, with_config

# pydantic reads a TypedDict's fields (for the JSON Schemas of docs/schemas/) only
# from typing_extensions' TypedDict before Python 3.12
from typing_extensions import TypedDict

#: a moment as ISO 8601 text in UTC, e.g. ``2026-03-01T12:00:00+00:00``
IsoTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]

# Each field's docstring is its description in the record's JSON Schema
# (churnwatch/contract.py, docs/contract.md).


@with_config(use_attribute_docstrings=True)
class ChurnAlert(TypedDict):
    """A ``churn-alerts`` record: a customer's churn risk crossed a level (docs/contract.md)."""

    alert_id: str
    """Deterministic: the same customer, level and trigger give the same id."""
    case_id: str
    """The customer's case: the ``alert_id`` of the alert that opened it (alerts/policy.py)."""
    customer_id: str
    """The customer, as on the input topics; also the record's key."""
    ts: IsoTime
    """Event time of the assessment that raised the alert (UTC)."""
    score: float
    """Churn score, 0 to 1: a calibrated probability from a trained model."""
    risk_level: str
    """``watch``, ``high`` or ``critical``: the level of the value tier's thresholds crossed."""
    value_tier: str
    """``high``, ``potential`` or ``general``: the customer's value relative to the population."""
    segments: dict[str, str | None]
    """The customer's ``region``, ``industry``, ``channel`` and ``segment`` (null while unknown)."""
    reason: str
    """The likely churn reason: ``service_quality``, ``competitor``, ``needs_changed`` or
    ``communication``."""
    reason_codes: list[dict[str, Any]]
    """The indicators that raised the score most, strongest first, each with its value."""
    model_version: str
    """The scorer that produced ``score``: a trained model's version, or the rule's name."""
    lifecycle_stage: str
    """The customer's lifecycle stage when the alert was raised."""
    trigger: str
    """What raised the alert: the ``event_id`` of an event, or ``stage@time`` for silence."""
    p_alive: float | None
    """The purchase model's chance, 0 to 1, that the customer is still active (null without
    one)."""
    expected_purchases: float | None
    """Purchases the purchase model expects over ``clv_horizon_days`` (null without one)."""
    clv: float | None
    """The customer's expected value over ``clv_horizon_days``, in the purchases' currency
    (run-rate spend without a purchase model)."""
    clv_horizon_days: float | None
    """The horizon of ``clv``, in days."""
    value_at_risk: float | None
    """``score`` times ``clv``, in the purchases' currency: what the page and the API rank
    alerts by."""


@with_config(use_attribute_docstrings=True)
class WinbackTask(TypedDict):
    """A ``winback-tasks`` record: the playbook's action for an alert, for the CRM."""

    task_id: str
    """Deterministic: one task per alert; the CRM reports on it by this id."""
    alert_id: str
    """The alert the task answers."""
    case_id: str
    """The case of the alert: a case has at most one open task."""
    customer_id: str
    """The customer; also the record's key."""
    ts: IsoTime
    """Event time of the alert (UTC)."""
    action: str
    """What to do, in the playbook's words."""
    channel: str
    """How to reach the customer: ``phone``, ``email``, ``sms``, ``visit``, ``chat`` or
    ``letter``."""
    priority: int
    """1 (most urgent) to 5."""
    due_by: IsoTime
    """When the action should be done: ``ts`` plus the playbook's due hours (UTC)."""
    owner_queue: str
    """The CRM queue that owns the task."""
    reason: str
    """The alert's churn reason."""
    value_tier: str
    """The alert's value tier."""
    segments: dict[str, str | None]
    """The customer's segments, as in the alert."""
    risk_level: str
    """The alert's risk level."""


#: what each CRM outcome (a ``winback-outcomes`` status) makes of its task's and
#: alert's status; the store applies it as it records the outcome
STATUS_OF_OUTCOME = {
    "contacted": "in_progress",
    "accepted": "in_progress",
    "done": "in_progress",
    "declined": "lost",
    "failed": "lost",
}


@with_config(use_attribute_docstrings=True)
class CustomerChange(TypedDict):
    """A ``customer-changes`` record: a lifecycle stage or value tier moved."""

    change_id: str
    """Deterministic: derived from the customer, the field, the new value and the time."""
    customer_id: str
    """The customer; also the record's key."""
    ts: IsoTime
    """Event time of the move (UTC)."""
    field: str
    """What moved: ``lifecycle_stage`` or ``value_tier``."""
    from_value: str | None
    """The value before (null for the customer's first)."""
    to_value: str
    """The value after."""
    cause: str
    """What moved it: the ``event_id`` of an event, or ``silence`` when time without events
    did."""
    segments: dict[str, str | None]
    """The customer's segments when it changed."""


@with_config(use_attribute_docstrings=True)
class AlertEnding(TypedDict):
    """An alert (and its task) that ended: won back, expired or escalated (store only)."""

    alert_id: str
    status: str
    ts: IsoTime


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


@with_config(use_attribute_docstrings=True)
class DeadLetterRecord(TypedDict):
    """A ``dead-letters`` record: a rejected input record, where it came from and why."""

    source_topic: str
    """The input topic the record was produced to (for a re-keyed record, its first topic)."""
    partition: int
    """The partition it was read from (for a re-keyed record: of ``churnwatch-rekeyed``)."""
    offset: int
    """Its offset there, where the whole original value stays while retention keeps it."""
    error: str
    """Why it was rejected, in words a person can act on (at most 1000 characters)."""
    ts: IsoTime
    """When it was rejected (wall clock, UTC)."""
    raw: str
    """The original value's first 4096 bytes: UTF-8 text, or base64 (see ``raw_encoding``)."""
    raw_bytes: int
    """The length of the whole original value, in bytes."""
    raw_sha256: str
    """The SHA-256 of the whole original value, as hex."""
    origin: NotRequired[str]
    """Where a re-keyed record was first seen, as ``topic/partition/offset``."""
    raw_encoding: NotRequired[Literal["base64"]]
    """``base64`` when the original value was not UTF-8; absent for text."""
    raw_truncated: NotRequired[Literal[True]]
    """Present (true) only when ``raw`` holds less than the whole value."""


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

    def to_json(self) -> DeadLetterRecord:
        """The ``dead-letters`` record; its optional fields only when set."""
        letter = DeadLetterRecord(
            source_topic=self.source_topic,
            partition=self.partition,
            offset=self.offset,
            error=self.error,
            ts=self.ts,
            raw=self.raw,
            raw_bytes=self.raw_bytes,
            raw_sha256=self.raw_sha256,
        )
        if self.origin:
            letter["origin"] = self.origin
        if self.raw_encoding:
            letter["raw_encoding"] = "base64"
        if self.raw_truncated:
            letter["raw_truncated"] = True
        return letter


def unexpected(exc: BaseException) -> str:
    """The dead-letter reason for an exception validation did not foresee."""
    return f"cannot be read: {type(exc).__name__}: {exc}"
