"""Per-customer state and the one fold that advances it: ``apply(state, event)``.

Everything windowed is kept in **daily buckets** of integer counters: bucket
``b`` holds the events with ``origin + b·day < ts <= origin + (b+1)·day``.
Buckets older than the longest window (365 days) before the customer's newest
event are dropped, so memory is bounded by the window, not by the history.

The state is a function of the *set* of events folded, not of their order:
bucket counters are integer sums (money in thousandths, durations in
milliseconds), "latest" values are picked by ``(ts, event_id)``, and a
complaint resolution that arrives before its opening waits for it. Events may
therefore arrive out of order within the allowed lateness (:func:`is_too_late`)
and give exactly the state that in-order arrival gives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from churnwatch.events import (
    COMPLAINT_CATEGORIES,
    ENGAGEMENT_TYPES,
    ComplaintOpened,
    ComplaintResolved,
    CustomerProfile,
    EngagementEvent,
    Event,
    PurchaseEvent,
    SurveyResponse,
)

DAY_S = 86400.0
#: Longest window; buckets older than this (before the newest event) are dropped.
KEEP_DAYS = 365

# Bucket slots. Purchases come first so that a purchase-only day is a 4-slot list.
PURCHASES, PURCHASE_MILLI, REFUNDS, REFUND_MILLI = 0, 1, 2, 3
COMPLAINTS = 4
#: complaints opened per category, in COMPLAINT_CATEGORIES order
COMPLAINT_BY_CATEGORY = {cat: 5 + i for i, cat in enumerate(COMPLAINT_CATEGORIES)}
RESOLVED, RESOLUTION_MS_SUM, RESOLUTION_MS_MAX = 11, 12, 13
SAT_SUM, SAT_N, POST_SAT_SUM, POST_SAT_N, NPS_SUM, NPS_N = 14, 15, 16, 17, 18, 19
ENGAGEMENT = 20
#: engagement-topic events per type (survey responses included)
ENGAGEMENT_BY_TYPE = {t: 21 + i for i, t in enumerate((*ENGAGEMENT_TYPES, "survey_response"))}
UNANSWERED_CONTACTS, POINTS_EARNED, POINTS_REDEEMED = 30, 31, 32
N_SLOTS = 33
#: slots that keep a maximum rather than a sum
MAX_SLOTS = frozenset({RESOLUTION_MS_MAX})


def bucket_of(ts: float, origin_s: float = 0.0) -> int:
    """Index of the day bucket holding time ``ts`` (days end at ``origin_s`` mod 1 day)."""
    return math.ceil((ts - origin_s) / DAY_S) - 1


def _milli(amount: float) -> int:
    return round(amount * 1000)


def _later(current: list[Any] | None, ts: float, event_id: str) -> bool:
    """Whether ``(ts, event_id)`` is newer than ``current = [ts, event_id, …]``."""
    return current is None or (ts, event_id) > (current[0], current[1])


@dataclass(slots=True)
class CustomerState:
    """What churnwatch knows about one customer; times are POSIX seconds (event time)."""

    customer_id: str
    #: where day buckets end (0 = midnight UTC); replay aligns it to its as-of time
    origin_s: float = 0.0
    first_seen_s: float | None = None
    #: newest event time: the customer's clock and lateness watermark
    last_event_s: float | None = None
    first_purchase_s: float | None = None
    last_purchase_s: float | None = None
    #: the purchase before the last one (the two newest are kept)
    prev_purchase_s: float | None = None
    purchase_count: int = 0
    refund_count: int = 0
    complaint_count: int = 0
    #: ``[ts, event_id, category]`` of the newest complaint
    last_complaint: list[Any] | None = None
    #: complaint_id → ``[opened_s, category]``
    open_complaints: dict[str, list[Any]] = field(default_factory=dict)
    #: resolutions seen before their opening: complaint_id → resolved_s
    early_resolutions: dict[str, float] = field(default_factory=dict)
    #: ``[ts, event_id, value]`` of the newest satisfaction rating and NPS answer
    last_satisfaction: list[Any] | None = None
    last_nps: list[Any] | None = None
    last_engagement_s: float | None = None
    #: ``[ts, event_id, signup_s or None]`` of the newest profile
    profile: list[Any] | None = None
    #: day index → counters (see the slot constants); sparse and trimmed
    buckets: dict[int, list[int]] = field(default_factory=dict)
    #: the counters of every kept bucket added up (maxima for the max slots),
    #: kept up to date by the fold; derived, so neither stored nor compared
    #: (``None``: to be added up again, see :func:`kept_totals`)
    totals: list[int] | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as kept in the store (bucket keys become text)."""
        data = {name: getattr(self, name) for name in _STORED}
        data["buckets"] = {str(day): slots for day, slots in self.buckets.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerState:
        """Inverse of :meth:`to_dict`; ignores keys this version does not know."""
        known = set(_STORED)
        state = cls(**{k: v for k, v in data.items() if k in known and k != "buckets"})
        state.buckets = {int(day): slots for day, slots in data.get("buckets", {}).items()}
        return state


_STORED: tuple[str, ...] = tuple(name for name in CustomerState.__slots__ if name != "totals")


_ZEROS = (0,) * N_SLOTS


def column_totals(buckets: list[list[int]]) -> list[int]:
    """Column totals of some day buckets: sums, or maxima for the max slots."""
    # most windows hold none or one bucket: no need to transpose those
    if len(buckets) < 2:
        only = buckets[0] if buckets else []
        return [*only, *_ZEROS[len(only) :]]
    # map, zip_longest and sum run in C: one pass over the buckets, not a loop
    # per slot; a bucket holds the slots up to the last one it used
    columns = list(zip_longest(*buckets, fillvalue=0))
    totals = list(map(sum, columns))
    for i in MAX_SLOTS:
        if i < len(columns):
            totals[i] = max(columns[i])
    return totals + [0] * (N_SLOTS - len(totals))


def kept_totals(state: CustomerState) -> list[int]:
    """The counters of every bucket ``state`` keeps, added up (read only).

    Kept up to date as events fold, so that the year-long window costs no pass
    over a year of buckets; added up again after buckets were dropped.
    """
    if state.totals is None:
        state.totals = column_totals(list(state.buckets.values()))
    return state.totals


def is_too_late(clock_s: float | None, ts: float, allowed_lateness_s: float) -> bool:
    """Whether an event at ``ts`` is older than the customer's clock allows.

    The clock is the newest event time counted for the customer (``None``: a new
    customer, for whom nothing is late yet).
    """
    return clock_s is not None and ts < clock_s - allowed_lateness_s


def apply(state: CustomerState | None, event: Event, origin_s: float = 0.0) -> CustomerState:
    """Fold one validated event into the customer's state and return it.

    The state is updated in place; ``None`` starts a new customer whose day
    buckets end at ``origin_s``. The caller rejects events that are too late
    (:func:`is_too_late`) before folding them.
    """
    if state is None:
        state = CustomerState(customer_id=event.customer_id, origin_s=origin_s)
    at = event.epoch_s
    if state.first_seen_s is None or at < state.first_seen_s:
        state.first_seen_s = at
    if state.last_event_s is None or at > state.last_event_s:
        previous = state.last_event_s
        state.last_event_s = at
        if previous is None or bucket_of(at, state.origin_s) > bucket_of(previous, state.origin_s):
            _forget_old(state)

    if isinstance(event, PurchaseEvent):
        _purchase(state, event, at)
    elif isinstance(event, ComplaintOpened):
        _complaint_opened(state, event, at)
    elif isinstance(event, ComplaintResolved):
        _complaint_resolved(state, event, at)
    elif isinstance(event, EngagementEvent | SurveyResponse):
        _engagement(state, event, at)
    elif isinstance(event, CustomerProfile) and _later(state.profile, at, event.event_id):
        signup = event.signup_ts.timestamp() if event.signup_ts else None
        state.profile = [at, event.event_id, signup]
    return state


def _slots(state: CustomerState, at: float) -> list[int] | None:
    """The counters of the day of ``at``, or ``None`` when that day is already dropped."""
    day = bucket_of(at, state.origin_s)
    newest = bucket_of(state.last_event_s, state.origin_s)  # type: ignore[arg-type]
    if day <= newest - KEEP_DAYS:
        return None
    slots = state.buckets.get(day)
    if slots is None:
        slots = state.buckets[day] = []
    return slots


def _add(state: CustomerState, slots: list[int] | None, slot: int, value: int = 1) -> None:
    """Count ``value`` in ``slot`` of the day bucket ``slots``, and in the kept totals."""
    if slots is None:
        return
    if len(slots) <= slot:
        slots.extend([0] * (slot + 1 - len(slots)))
    totals = state.totals
    if slot in MAX_SLOTS:
        slots[slot] = max(slots[slot], value)
        if totals is not None:
            totals[slot] = max(totals[slot], value)
    else:
        slots[slot] += value
        if totals is not None:
            totals[slot] += value


def _forget_old(state: CustomerState) -> None:
    """Drop what no window can reach any more; called when the newest day moves on."""
    newest = bucket_of(state.last_event_s, state.origin_s)  # type: ignore[arg-type]
    old = [d for d in state.buckets if d <= newest - KEEP_DAYS]
    for day in old:
        del state.buckets[day]
    if old:
        state.totals = None  # a maximum cannot be taken back: add up again
    # An opening older than a year can no longer be dead-lettered as late, so a
    # resolution still waiting for it never gets one: let it go. A complaint
    # open for over a year is past every window too: the map stays bounded.
    for cid in [c for c, resolved in state.early_resolutions.items() if _expired(state, resolved)]:
        del state.early_resolutions[cid]
    for cid in [c for c, (opened, _) in state.open_complaints.items() if _expired(state, opened)]:
        del state.open_complaints[cid]


def _expired(state: CustomerState, at: float) -> bool:
    """Whether time ``at`` lies on a day no window reaches (the buckets' rule)."""
    newest = bucket_of(state.last_event_s, state.origin_s)  # type: ignore[arg-type]
    return bucket_of(at, state.origin_s) <= newest - KEEP_DAYS


def _purchase(state: CustomerState, event: PurchaseEvent, at: float) -> None:
    slots = _slots(state, at)
    if event.type == "refund":
        state.refund_count += 1
        _add(state, slots, REFUNDS)
        _add(state, slots, REFUND_MILLI, _milli(event.amount))
        return
    state.purchase_count += 1
    _add(state, slots, PURCHASES)
    _add(state, slots, PURCHASE_MILLI, _milli(event.amount))
    if state.first_purchase_s is None or at < state.first_purchase_s:
        state.first_purchase_s = at
    # keep the two newest purchase times (a multiset: equal times both count)
    if state.last_purchase_s is None or at >= state.last_purchase_s:
        state.prev_purchase_s, state.last_purchase_s = state.last_purchase_s, at
    elif state.prev_purchase_s is None or at > state.prev_purchase_s:
        state.prev_purchase_s = at


def _complaint_opened(state: CustomerState, event: ComplaintOpened, at: float) -> None:
    slots = _slots(state, at)
    state.complaint_count += 1
    _add(state, slots, COMPLAINTS)
    _add(state, slots, COMPLAINT_BY_CATEGORY[event.category])
    if _later(state.last_complaint, at, event.event_id):
        state.last_complaint = [at, event.event_id, event.category]
    if _expired(state, at):
        # pruned at once, as it would have been had the events come in time order
        return
    resolved = state.early_resolutions.pop(event.complaint_id, None)
    if resolved is not None:
        _record_resolution(state, at, resolved)
        return
    opened = state.open_complaints.get(event.complaint_id)
    if opened is None or at < opened[0]:
        state.open_complaints[event.complaint_id] = [at, event.category]


def _complaint_resolved(state: CustomerState, event: ComplaintResolved, at: float) -> None:
    if event.satisfaction is not None:
        slots = _slots(state, at)
        _add(state, slots, SAT_SUM, event.satisfaction)
        _add(state, slots, SAT_N)
        _add(state, slots, POST_SAT_SUM, event.satisfaction)
        _add(state, slots, POST_SAT_N)
        if _later(state.last_satisfaction, at, event.event_id):
            state.last_satisfaction = [at, event.event_id, event.satisfaction]
    opened = state.open_complaints.pop(event.complaint_id, None)
    if opened is None:
        if not _expired(state, at):
            state.early_resolutions[event.complaint_id] = at
    else:
        _record_resolution(state, opened[0], at)


def _record_resolution(state: CustomerState, opened_s: float, resolved_s: float) -> None:
    """Count a resolved complaint on the day it was resolved.

    A resolution stamped before its opening (clock skew between systems) counts
    as resolved at once: zero time to resolve, never negative.
    """
    slots = _slots(state, resolved_s)
    _add(state, slots, RESOLVED)
    millis = max(0, round((resolved_s - opened_s) * 1000))
    _add(state, slots, RESOLUTION_MS_SUM, millis)
    _add(state, slots, RESOLUTION_MS_MAX, millis)


def _engagement(state: CustomerState, event: EngagementEvent | SurveyResponse, at: float) -> None:
    slots = _slots(state, at)
    _add(state, slots, ENGAGEMENT)
    _add(state, slots, ENGAGEMENT_BY_TYPE[event.type])
    if state.last_engagement_s is None or at > state.last_engagement_s:
        state.last_engagement_s = at
    extra = event.model_extra or {}
    if event.type in ("points_earned", "points_redeemed"):
        points = extra.get("points")
        if isinstance(points, int) and not isinstance(points, bool) and points > 0:
            _add(
                state,
                slots,
                POINTS_EARNED if event.type == "points_earned" else POINTS_REDEEMED,
                points,
            )
    elif event.type == "support_contact" and extra.get("answered") is not True:
        _add(state, slots, UNANSWERED_CONTACTS)
    elif isinstance(event, SurveyResponse):
        if event.satisfaction is not None:
            _add(state, slots, SAT_SUM, event.satisfaction)
            _add(state, slots, SAT_N)
            if _later(state.last_satisfaction, at, event.event_id):
                state.last_satisfaction = [at, event.event_id, event.satisfaction]
        if event.nps is not None:
            _add(state, slots, NPS_SUM, event.nps)
            _add(state, slots, NPS_N)
            if _later(state.last_nps, at, event.event_id):
                state.last_nps = [at, event.event_id, event.nps]
