"""Property: any arrival order within the allowed lateness gives the same state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import given, settings
from hypothesis import strategies as st

from churnwatch.events import ENGAGEMENT_TYPES
from churnwatch.features import state as state_module
from churnwatch.features.lifecycle import stage_at
from churnwatch.features.row import _sums, feature_row
from churnwatch.features.state import (
    KEEP_DAYS,
    MAX_SLOTS,
    N_SLOTS,
    CustomerState,
    apply,
    bucket_of,
    column_totals,
    is_too_late,
)
from tests.builders import ev

LATENESS_DAYS = 7.0


@st.composite
def histories(draw) -> list:
    # short spans crowd events within the lateness; long ones cross the one-year horizon
    span = draw(st.sampled_from([10, 60, 500]))
    _days = st.floats(min_value=0, max_value=span, allow_nan=False).map(lambda d: round(d, 3))
    events = []
    for i in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["purchase", "refund"]))
        amount = draw(st.floats(0.01, 5000, allow_nan=False).map(lambda a: round(a, 2)))
        events.append(ev(draw(_days), kind, eid=f"p{i}", amount=amount))
    for i in range(draw(st.integers(0, 6))):
        opened = draw(_days)
        category = draw(st.sampled_from(["price", "service_quality", "communication"]))
        events.append(
            ev(
                opened,
                "complaint_opened",
                eid=f"o{i}",
                complaint_id=f"k{i}",
                category=category,
                severity=1,
            )
        )
        if draw(st.booleans()):
            # may be stamped before the opening (clock skew)
            resolved = max(0.0, opened + draw(st.floats(-2, 30, allow_nan=False)))
            rating = draw(st.none() | st.integers(1, 5))
            fields = {} if rating is None else {"satisfaction": rating}
            events.append(
                ev(resolved, "complaint_resolved", eid=f"r{i}", complaint_id=f"k{i}", **fields)
            )
    for i in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from([*ENGAGEMENT_TYPES, "survey_response"]))
        fields = {}
        if kind == "survey_response":
            fields = {"satisfaction": draw(st.integers(1, 5)), "nps": draw(st.integers(0, 10))}
        elif kind.startswith("points"):
            fields = {"points": draw(st.integers(1, 500))}
        elif kind == "support_contact":
            fields = {"answered": draw(st.booleans())}
        events.append(ev(draw(_days), kind, eid=f"e{i}", **fields))
    for i in range(draw(st.integers(0, 2))):
        events.append(ev(draw(_days), "profile", eid=f"f{i}", signup_ts="2025-03-01T00:00:00Z"))
    return events


def arrival_order(events: list, jitters: list[float]) -> list:
    """Each event delayed by up to the lateness: none arrives too late."""
    keyed = sorted(
        zip(events, jitters, strict=False),
        key=lambda pair: pair[0].epoch_s + pair[1] * LATENESS_DAYS * 86400,
    )
    return [event for event, _ in keyed]


def fold(events: list) -> CustomerState | None:
    state = None
    for event in events:
        assert not is_too_late(state and state.last_event_s, event.epoch_s, LATENESS_DAYS * 86400)
        state = apply(state, event)
    return state


@settings(max_examples=300, deadline=None)
@given(histories(), st.lists(st.floats(0, 1), min_size=40, max_size=40))
def test_any_order_within_the_lateness_gives_the_same_state(events, jitters) -> None:
    in_order = fold(sorted(events, key=lambda e: (e.epoch_s, e.event_id)))
    shuffled = fold(arrival_order(events, jitters))
    if in_order is None:
        assert shuffled is None
        return
    assert shuffled.to_dict() == in_order.to_dict()
    end = in_order.last_event_s + 3 * 86400
    assert feature_row(shuffled, end) == feature_row(in_order, end)
    assert stage_at(shuffled, end) == stage_at(in_order, end)


@settings(max_examples=200, deadline=None)
@given(
    histories(),
    st.lists(st.floats(0, 1), min_size=40, max_size=40),
    st.floats(-30, 400, allow_nan=False),
)
def test_the_kept_totals_follow_the_fold_and_give_the_windows_a_full_count_gives(
    events, jitters, days_after
) -> None:
    state = None
    for event in arrival_order(events, jitters):
        state = apply(state, event)
        row = feature_row(state)  # reads, and from then on keeps, the totals
    if state is None:
        return
    # the totals kept through late events and dropped buckets equal a fresh count
    assert state.totals == column_totals(list(state.buckets.values()))
    as_of = state.last_event_s + days_after * 86400
    fresh = CustomerState.from_dict(state.to_dict())
    assert fresh.totals is None
    assert feature_row(state, as_of) == feature_row(fresh, as_of)
    # the year-long window, counted the long way: every bucket of the last 365 days
    today = bucket_of(as_of, state.origin_s)
    year = column_totals(
        [slots for day, slots in state.buckets.items() if 0 <= today - day < KEEP_DAYS]
    )
    w365 = _sums(state, as_of)[2]
    assert [v for i, v in enumerate(w365) if i not in MAX_SLOTS] == [
        v for i, v in enumerate(year) if i not in MAX_SLOTS
    ]
    assert row == feature_row(fresh)


@contextmanager
def every_slot_kept_a_year() -> Iterator[None]:
    """The fold with no slot pruned before the year is out: the reference for pruning."""
    kept = state_module.HORIZON_DAYS
    state_module.HORIZON_DAYS = (KEEP_DAYS,) * N_SLOTS
    try:
        yield
    finally:
        state_module.HORIZON_DAYS = kept


@settings(max_examples=200, deadline=None)
@given(
    histories(),
    st.lists(st.floats(0, 1), min_size=40, max_size=40),
    st.floats(0, 400, allow_nan=False),
)
def test_pruning_a_slot_at_its_horizon_changes_no_row_as_of_the_newest_event_or_later(
    events, jitters, days_after
) -> None:
    order = arrival_order(events, jitters)
    pruned = fold(order)
    with every_slot_kept_a_year():
        full = fold(order)
    if pruned is None:
        return
    as_of = pruned.last_event_s + days_after * 86400
    assert feature_row(pruned, as_of) == feature_row(full, as_of)
    assert feature_row(pruned) == feature_row(full)


@settings(max_examples=200, deadline=None)
@given(
    histories(),
    st.lists(st.floats(0, 1), min_size=40, max_size=40),
    st.floats(-30, 400, allow_nan=False),
)
def test_every_window_equals_a_full_count_of_its_buckets_as_of_any_time(
    events, jitters, days_after
) -> None:
    state = fold(arrival_order(events, jitters))
    if state is None:
        return
    as_of = state.last_event_s + days_after * 86400
    today = bucket_of(as_of, state.origin_s)

    def count(first: int, last: int) -> list[int]:
        """The buckets whose age as of ``as_of`` is in ``[first, last)``, counted the long way."""
        return column_totals(
            [slots for day, slots in state.buckets.items() if first <= today - day < last]
        )

    w30, w90, w365, base = _sums(state, as_of)
    assert (w30, w90, base) == (count(0, 30), count(0, 90), count(30, 120))
    assert w365 == count(0, KEEP_DAYS)
