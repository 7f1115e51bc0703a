"""Records as churnwatch reads them off the wire and writes them out: one definition each."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any


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
