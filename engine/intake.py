"""A consumed batch → valid events, dead letters and records to re-key. No store.

The first step of every batch, for the worker and for the offline tools: it needs
nothing but the records and the clock, so it can run before, and apart from, the
transaction that stores and counts what it accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from churnwatch.events import Event, InvalidEvent, decode
from churnwatch.records import DeadLetter, RawRecord, unexpected
from churnwatch.times import utcnow
from churnwatch.topics import REKEYED


@dataclass
class Decoded:
    """One batch after validation."""

    #: valid records with their events, in arrival order
    accepted: list[tuple[RawRecord, Event]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: valid records whose Kafka key is not their customer_id: to be re-keyed
    misrouted: list[tuple[str, RawRecord]] = field(default_factory=list)


class Intake:
    """Validates consumed records against the event schemas and the clock."""

    def __init__(self, *, max_future_s: float, clock: Callable[[], datetime] = utcnow) -> None:
        self.max_future_s = max_future_s
        self.clock = clock

    def decode(self, records: Sequence[RawRecord]) -> Decoded:
        """Sort ``records`` into accepted, dead letters and misrouted."""
        now = self.clock()
        result = Decoded()
        for record in records:
            if record.error is not None:
                result.dead_letters.append(DeadLetter.of(record, record.error, now))
                continue
            try:
                event = decode(
                    record.event_topic, record.value, now=now, max_future_s=self.max_future_s
                )
                key_ok = record.key == event.customer_id.encode()
            except InvalidEvent as exc:
                result.dead_letters.append(DeadLetter.of(record, str(exc), now))
                continue
            except Exception as exc:  # a record must never stop the intake
                result.dead_letters.append(DeadLetter.of(record, unexpected(exc), now))
                continue
            if not key_ok and record.topic != REKEYED:
                result.misrouted.append((event.customer_id, record))
                continue
            result.accepted.append((record, event))
        return result
