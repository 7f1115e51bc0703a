"""Faust events as :class:`~churnwatch.records.RawRecord`, and the headers churnwatch sets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from faust.types import EventT

from churnwatch.events import InvalidEvent
from churnwatch.records import RawRecord, unexpected
from churnwatch.topics import REKEYED

#: where a re-keyed record was first seen (``topic/partition/offset``)
ORIGIN_HEADER = "churnwatch-origin"
#: the input topic a re-keyed record was first produced to
ORIGIN_TOPIC_HEADER = "churnwatch-origin-topic"
#: longest origin header, in bytes of UTF-8 (what ``events.source`` holds)
MAX_HEADER_BYTES = 300


def _header(headers: Any, name: str) -> str | None:
    """Header ``name`` as text; :class:`InvalidEvent` when it is too long or not clean UTF-8."""
    items: Iterable[tuple[Any, Any]] = (
        headers.items() if isinstance(headers, Mapping) else (headers or ())
    )
    for key, value in items:
        if key != name and key != name.encode():
            continue
        raw = value if isinstance(value, bytes) else str(value).encode()
        if len(raw) > MAX_HEADER_BYTES:
            raise InvalidEvent(f"header {name}: {len(raw)} bytes (limit {MAX_HEADER_BYTES})")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"header {name}: not UTF-8 ({exc.reason})") from None
        if not text.isprintable():
            raise InvalidEvent(f"header {name}: contains control characters")
        return text
    return None


def raw_record(event: EventT[Any]) -> RawRecord:
    """The wire view of a Faust event, with the origin of re-keyed records.

    It never raises: a record whose headers, key or value cannot be read
    carries the reason in :attr:`RawRecord.error`, for a dead letter. Origin
    headers mean something only on the re-keyed topic and are ignored elsewhere,
    so that no producer can forge where a record came from.
    """
    msg = event.message
    value = msg.value if isinstance(msg.value, bytes | None) else None
    unreadable = partial(RawRecord, msg.topic, msg.partition, msg.offset, None, value)
    try:
        key = msg.key
        if not isinstance(key, bytes | None):
            raise InvalidEvent(f"key: not bytes ({type(key).__name__})")
        if not isinstance(msg.value, bytes | None):
            raise InvalidEvent(f"value: not bytes ({type(msg.value).__name__})")
        origin_topic = origin = None
        if msg.topic == REKEYED:
            origin_topic = _header(msg.headers, ORIGIN_TOPIC_HEADER)
            origin = _header(msg.headers, ORIGIN_HEADER)
        return RawRecord(msg.topic, msg.partition, msg.offset, key, value, origin_topic, origin)
    except InvalidEvent as exc:
        return unreadable(error=str(exc))
    except Exception as exc:  # a record must never stop the intake
        return unreadable(error=unexpected(exc))


def origin_headers(record: RawRecord) -> dict[str, bytes]:
    """The headers that carry ``record``'s origin through ``churnwatch-rekeyed``."""
    return {
        ORIGIN_HEADER: record.source.encode(),
        ORIGIN_TOPIC_HEADER: record.event_topic.encode(),
    }
