"""Finding the record that a batch's store step cannot take.

A record can pass validation and still fail when it is stored or folded (a
limit of the database, a bug in the fold). Retrying its batch would fail
forever and stall every partition of the worker, so a batch whose step fails
with a data error (not :func:`~churnwatch.store.errors.is_transient`) is split
in halves, recursively, until the single record that fails alone is found:
it becomes a dead letter and everything else is stored and folded once. A
failed step commits nothing, so trying a half again is safe; with one poison
record in ``n`` this costs about ``2 * log2(n)`` extra transactions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, Protocol, TypeVar

from churnwatch.records import DeadLetter, RawRecord
from churnwatch.store.errors import described, is_transient
from churnwatch.times import utcnow

T = TypeVar("T")
log = logging.getLogger(__name__)


class StepResult(Protocol):
    """What a store step returns: a dataclass of lists, dicts and counts, with dead letters."""

    dead_letters: list[DeadLetter]


R = TypeVar("R", bound=StepResult)


def merge(first: R, second: R) -> R:
    """One result of two batches stored one after the other (``second`` newer)."""
    out = type(first)()
    for f in fields(out):  # type: ignore[arg-type]
        a, b = getattr(first, f.name), getattr(second, f.name)
        value: Any = {**a, **b} if isinstance(a, dict) else a + b
        setattr(out, f.name, value)
    return out


def isolate(
    step: Callable[[Sequence[T]], R],
    items: Sequence[T],
    record_of: Callable[[T], RawRecord],
    empty: Callable[[], R],
) -> R:
    """``step(items)``; on a data error, split ``items`` until the failing ones are found.

    A transient error is raised for the caller to retry the whole batch (what
    halves had committed is then recognised as redelivered). Each item that
    fails alone is a dead letter naming the error, in an ``empty()`` result.
    """
    try:
        return step(items)
    except Exception as exc:
        if is_transient(exc):
            raise
        if len(items) <= 1:
            if not items:
                raise
            record = record_of(items[0])
            log.warning("record %s cannot be stored: %r", record.source, exc)
            result = empty()
            error = f"cannot be stored: {described(exc)}"
            result.dead_letters.append(DeadLetter.of(record, error, utcnow()))
            return result
        log.warning("a batch of %d failed (%s); splitting it", len(items), type(exc).__name__)
    half = len(items) // 2
    first = isolate(step, items[:half], record_of, empty)
    return merge(first, isolate(step, items[half:], record_of, empty))
