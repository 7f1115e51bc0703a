"""Faust events as :class:`~churnwatch.records.RawRecord`, and the headers churnwatch sets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from faust.types import EventT

from churnwatch.records import RawRecord

#: where a re-keyed record was first seen (``topic/partition/offset``)
ORIGIN_HEADER = "churnwatch-origin"
#: the input topic a re-keyed record was first produced to
ORIGIN_TOPIC_HEADER = "churnwatch-origin-topic"


def _header(headers: Any, name: str) -> str | None:
    items: Iterable[tuple[str, bytes]] = (
        headers.items() if isinstance(headers, dict) else (headers or ())
    )
    for key, value in items:
        if key == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def raw_record(event: EventT[Any]) -> RawRecord:
    """The wire view of a Faust event, with the origin of re-keyed records."""
    msg = event.message
    return RawRecord(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=msg.key,
        value=msg.value,
        origin_topic=_header(msg.headers, ORIGIN_TOPIC_HEADER),
        origin=_header(msg.headers, ORIGIN_HEADER),
    )


def origin_headers(record: RawRecord) -> dict[str, bytes]:
    """The headers that carry ``record``'s origin through ``churnwatch-rekeyed``."""
    return {
        ORIGIN_HEADER: record.source.encode(),
        ORIGIN_TOPIC_HEADER: record.event_topic.encode(),
    }
