"""Per-customer maps stay bounded: complaints open, or resolved early, for over a year."""

from __future__ import annotations

import random

from churnwatch.features.row import feature_row
from churnwatch.features.state import KEEP_DAYS, CustomerState, apply
from tests.builders import ev

YEARS = 3
DAYS = YEARS * 365


def _fold(events) -> CustomerState:
    state = None
    for event in events:
        state = apply(state, event)
    assert state is not None
    return state


def _opened(day: int):
    return ev(day + 0.5, "complaint_opened", complaint_id=f"k{day}", category="price", severity=1)


def _resolved(day: int):
    return ev(day + 0.5, "complaint_resolved", complaint_id=f"r{day}")


def test_complaints_never_resolved_are_kept_for_a_year_only() -> None:
    state = _fold(_opened(day) for day in range(DAYS))
    newest = DAYS - 1
    assert set(state.open_complaints) == {f"k{d}" for d in range(newest - KEEP_DAYS + 1, DAYS)}
    assert len(state.open_complaints) == KEEP_DAYS
    assert state.complaint_count == DAYS  # the lifetime count keeps them all
    assert feature_row(state)["open_complaints"] == KEEP_DAYS


def test_resolutions_waiting_for_an_opening_are_kept_for_a_year_only() -> None:
    state = _fold(_resolved(day) for day in range(DAYS))
    assert set(state.early_resolutions) == {f"r{d}" for d in range(DAYS - KEEP_DAYS, DAYS)}


def test_pruning_does_not_depend_on_the_order_events_came_in() -> None:
    events = [_opened(d) for d in range(0, DAYS, 3)] + [_resolved(d) for d in range(1, DAYS, 3)]
    # resolutions of complaints opened the day before, and some stamped before their opening
    events += [ev(d + 0.7, "complaint_resolved", complaint_id=f"k{d - 1}") for d in (4, 700)]
    events += [ev(d + 0.1, "complaint_resolved", complaint_id=f"k{d}") for d in (30, 900)]
    in_order = _fold(sorted(events, key=lambda e: e.ts))
    shuffled = list(events)
    random.Random(3).shuffle(shuffled)
    assert _fold(shuffled) == in_order
    assert _fold(reversed(sorted(events, key=lambda e: e.ts))) == in_order
    newest = max(range(1, DAYS, 3))  # the day of the last resolution
    kept = {f"k{d}" for d in range(0, DAYS, 3) if d > newest - KEEP_DAYS} - {"k699", "k900"}
    assert set(in_order.open_complaints) == kept
