"""CRM outcome reports → the store: task status moves, and dead letters for bad reports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine

from churnwatch import store
from churnwatch.events import InvalidEvent, not_ahead
from churnwatch.records import DeadLetter, RawRecord, unexpected
from churnwatch.settings import Settings
from churnwatch.times import utcnow
from churnwatch.winback.outcomes import decode_outcome


@dataclass
class Recorded:
    """What a batch of outcome reports did."""

    stored: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)


def record_outcomes(
    engine: Engine,
    records: Sequence[RawRecord],
    clock: Callable[[], datetime] = utcnow,
    *,
    max_future_s: float = Settings.max_future_s,
) -> Recorded:
    """Store ``winback-outcomes`` reports from the CRM and move tasks and alerts along.

    An invalid report, one dated over ``max_future_s`` ahead, or one about a
    task churnwatch never issued, is a dead letter; a redelivered one changes
    nothing.
    """
    now = clock()
    result = Recorded()
    valid = []
    for record in records:
        if record.error is not None:
            result.dead_letters.append(DeadLetter.of(record, record.error, now))
            continue
        try:
            valid.append((record, not_ahead(decode_outcome(record.value), now, max_future_s)))
        except InvalidEvent as exc:
            result.dead_letters.append(DeadLetter.of(record, str(exc), now))
        except Exception as exc:  # a report must never stop the agent
            result.dead_letters.append(DeadLetter.of(record, unexpected(exc), now))
    with engine.begin() as conn:
        new, unknown = store.add_outcomes(conn, [outcome for _, outcome in valid])
    for record, outcome in valid:
        if outcome.task_id in unknown:
            error = f"unknown task_id {outcome.task_id!r}: no win-back task has it"
            result.dead_letters.append(DeadLetter.of(record, error, now))
    result.stored = len(new)
    return result
