"""Per-customer state and the one fold that advances it: ``apply(state, event)``.

Everything windowed is kept in **daily buckets** of integer counters: bucket
``b`` holds the events with ``origin + b·day < ts <= origin + (b+1)·day``.
The buckets are sparse *cells* ``(slot, day) → count``, kept sorted in two flat
arrays; a cell is dropped once it is older than the longest window that reads
its slot (:data:`HORIZON_DAYS`, at most 365 days) before the customer's newest
event, so memory is bounded by the windows, not by the history.

The state is a function of the *set* of events folded, not of their order:
bucket counters are integer sums (money in thousandths, durations in
milliseconds), "latest" values are picked by ``(ts, event_id)``, and a
complaint resolution that arrives before its opening waits for it. Events may
therefore arrive out of order within the allowed lateness (:func:`is_too_late`)
and give exactly the state that in-order arrival gives.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field, fields
from itertools import zip_longest
from typing import Any, Final

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

# The constants are Final: compiled (churnwatch.native), a Final number is a C constant
# and any other Final a C static, where a plain global is a dict lookup at each use.
DAY_S: Final = 86400.0
#: Longest window; buckets older than this (before the newest event) are dropped.
KEEP_DAYS: Final = 365

# Bucket slots. Purchases come first so that a purchase-only day is a 4-slot list.
PURCHASES: Final = 0
PURCHASE_MILLI: Final = 1
REFUNDS: Final = 2
REFUND_MILLI: Final = 3
COMPLAINTS: Final = 4
#: complaints opened per category, in COMPLAINT_CATEGORIES order
COMPLAINT_BY_CATEGORY: Final = {cat: 5 + i for i, cat in enumerate(COMPLAINT_CATEGORIES)}
RESOLVED: Final = 11
RESOLUTION_MS_SUM: Final = 12
RESOLUTION_MS_MAX: Final = 13
SAT_SUM: Final = 14
SAT_N: Final = 15
POST_SAT_SUM: Final = 16
POST_SAT_N: Final = 17
NPS_SUM: Final = 18
NPS_N: Final = 19
ENGAGEMENT: Final = 20
#: engagement-topic events per type (survey responses included)
ENGAGEMENT_BY_TYPE: Final = {
    t: 21 + i for i, t in enumerate((*ENGAGEMENT_TYPES, "survey_response"))
}
UNANSWERED_CONTACTS: Final = 30
POINTS_EARNED: Final = 31
POINTS_REDEEMED: Final = 32
N_SLOTS: Final = 33
#: slots that keep a maximum rather than a sum
MAX_SLOTS: Final = frozenset({RESOLUTION_MS_MAX})

#: the engagement types that answer a message: their trend reads 120 days back
EMAIL_RESPONSE_SLOTS = (ENGAGEMENT_BY_TYPE["email_open"], ENGAGEMENT_BY_TYPE["email_click"])

#: Days a slot's cells are kept before the newest event: the longest window of
#: :mod:`churnwatch.features.row` that reads the slot (the year-long windows read
#: purchases, spend, refunded amounts and complaints; the trend baselines reach
#: 120 days back for engagement and for the responses to emails; the other
#: per-type engagement counts are 30-day ones).
#: A test checks that keeping every slot for the whole year gives the same rows
#: as of the newest event or later (rows as of an earlier day may miss cells).
_MONTH_SLOTS = frozenset(ENGAGEMENT_BY_TYPE.values()) | {UNANSWERED_CONTACTS}
_TREND_SLOTS = frozenset({ENGAGEMENT, *EMAIL_RESPONSE_SLOTS})
HORIZON_DAYS: Final[tuple[int, ...]] = tuple(
    KEEP_DAYS
    if slot in (PURCHASES, PURCHASE_MILLI, REFUND_MILLI, COMPLAINTS)
    else 120
    if slot in _TREND_SLOTS
    else 30
    if slot in _MONTH_SLOTS
    else 90
    for slot in range(N_SLOTS)
)

# A cell's key packs its slot above its day, so that the cells of one slot are
# contiguous and sorted by day. The day range covers every date Python can
# represent, so the keys fit a 32-bit signed array.
DAY_BITS: Final = 23
_DAY_BIAS: Final = 1 << (DAY_BITS - 1)


def cell_key(slot: int, day: int) -> int:
    """Key of the cell holding ``slot`` on day bucket ``day``."""
    return (slot << DAY_BITS) + day + _DAY_BIAS


def day_of(key: int) -> int:
    """Day bucket of a cell key."""
    return (key & ((1 << DAY_BITS) - 1)) - _DAY_BIAS


def bucket_of(ts: float, origin_s: float = 0.0) -> int:
    """Index of the day bucket holding time ``ts`` (days end at ``origin_s`` mod 1 day)."""
    return math.ceil((ts - origin_s) / DAY_S) - 1


def _milli(amount: float) -> int:
    return round(amount * 1000)


def _later(current: tuple[Any, ...] | None, ts: float, event_id: str) -> bool:
    """Whether ``(ts, event_id)`` is newer than ``current = (ts, event_id, …)``."""
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
    #: ``(ts, event_id, category)`` of the newest complaint
    last_complaint: tuple[Any, ...] | None = None
    #: complaint_id → ``(opened_s, category)``; ``None`` rather than empty (as is
    #: the next map): most customers have neither, and an empty dict costs 64 bytes
    open_complaints: dict[str, tuple[float, str]] | None = None
    #: resolutions seen before their opening: complaint_id → resolved_s
    early_resolutions: dict[str, float] | None = None
    #: ``(ts, event_id, value)`` of the newest satisfaction rating and NPS answer
    last_satisfaction: tuple[Any, ...] | None = None
    last_nps: tuple[Any, ...] | None = None
    last_engagement_s: float | None = None
    #: ``(ts, event_id, signup_s, region, industry, segment)`` of the newest profile
    #: (``None`` where not given; states stored before segments hold the first three)
    profile: tuple[Any, ...] | None = None
    #: ``(ts, event_id, channel)`` of the newest purchase or refund
    last_channel: tuple[Any, ...] | None = None
    #: the day buckets' non-zero counters: sorted :func:`cell_key` keys and, at the
    #: same index, their counts (sums, or maxima for the max slots); the counts are
    #: 32-bit until one needs 64 (equal arrays compare equal whatever their width)
    cell_keys: array[int] = field(default_factory=lambda: array("i"))
    cell_counts: array[int] = field(default_factory=lambda: array("i"))
    #: the counters of every kept cell added up per slot (maxima for the max
    #: slots), kept up to date by the fold; derived, so neither stored nor
    #: compared (``None``: to be added up again, see :func:`kept_totals`)
    totals: list[int] | None = field(default=None, compare=False, repr=False)

    @property
    def buckets(self) -> dict[int, list[int]]:
        """The kept day buckets, day → counters up to the last non-zero slot (read only)."""
        days: dict[int, list[int]] = {}
        for key, count in zip(self.cell_keys, self.cell_counts, strict=True):
            slots = days.setdefault(day_of(key), [])
            slot = key >> DAY_BITS
            slots.extend([0] * (slot + 1 - len(slots)))
            slots[slot] = count
        return dict(sorted(days.items()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as kept in the store.

        The cells are stored by day: ``{"day": [slot, count, slot, count, …]}``.
        """
        data = {name: getattr(self, name) for name in _STORED}
        # lists, as JSON gives them back: a stored state compares equal to this form
        for name in _RECORDS:
            if data[name] is not None:
                data[name] = list(data[name])
        if self.open_complaints:
            data["open_complaints"] = {c: list(o) for c, o in self.open_complaints.items()}
        cells: dict[str, list[int]] = {}
        for key, count in zip(self.cell_keys, self.cell_counts, strict=True):
            cells.setdefault(str(day_of(key)), []).extend((key >> DAY_BITS, count))
        data["cells"] = cells
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerState:
        """Inverse of :meth:`to_dict`; ignores keys this version does not know.

        Also reads the older dense form, ``"buckets": {"day": [counter per slot]}``,
        and drops what the slots' horizons no longer keep.
        """
        known = set(_STORED)
        values = {k: v for k, v in data.items() if k in known}
        # JSON has lists; the records are tuples (smaller, and compared as such). Made
        # before the state: compiled (churnwatch.native), its fields take their types only
        for name in _RECORDS:
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        opened = values.get("open_complaints") or {}
        values["open_complaints"] = {c: (at, cat) for c, (at, cat) in opened.items()} or None
        values["early_resolutions"] = values.get("early_resolutions") or None
        state = cls(**values)
        pairs = [
            (cell_key(slot, int(day)), count)
            for day, flat in data.get("cells", {}).items()
            for slot, count in zip(flat[::2], flat[1::2], strict=True)
        ]
        pairs += [
            (cell_key(slot, int(day)), count)
            for day, slots in data.get("buckets", {}).items()
            for slot, count in enumerate(slots)
            if count
        ]
        pairs.sort()
        state.cell_keys = array("i", [key for key, _ in pairs])
        state.cell_counts = _counts([count for _, count in pairs])
        if state.last_event_s is not None:
            _forget_old(state)
        return state


_RECORDS = ("last_complaint", "last_satisfaction", "last_nps", "profile", "last_channel")
# fields(), not __slots__: a class compiled by mypyc (churnwatch.native) has no __slots__
_STORED: tuple[str, ...] = tuple(
    f.name for f in fields(CustomerState) if f.name not in ("totals", "cell_keys", "cell_counts")
)


_ZEROS: Final = (0,) * N_SLOTS


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


def slot_runs(state: CustomerState) -> list[tuple[int, int, int]]:
    """``(slot, start, end)`` of each slot's cells in ``state``'s arrays, in slot order."""
    keys = state.cell_keys
    runs = []
    start, n = 0, len(keys)
    while start < n:
        slot = keys[start] >> DAY_BITS
        end = bisect_left(keys, (slot + 1) << DAY_BITS, start)
        runs.append((slot, start, end))
        start = end
    return runs


def kept_totals(state: CustomerState) -> list[int]:
    """The counters of every cell ``state`` keeps, added up per slot (read only).

    Kept up to date as events fold, so that the year-long window as of the
    newest day costs no pass over the cells; added up again after cells were
    dropped.
    """
    if state.totals is None:
        totals = [0] * N_SLOTS
        counts = state.cell_counts
        for slot, start, end in slot_runs(state):
            run = counts[start:end]
            totals[slot] = max(run) if slot in MAX_SLOTS else sum(run)
        state.totals = totals
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
        state.profile = (at, event.event_id, signup, event.region, event.industry, event.segment)
    return state


def _add(state: CustomerState, day: int, slot: int, value: int = 1) -> None:
    """Count ``value`` in ``slot`` on day bucket ``day``, and in the kept totals.

    Nothing is counted on a day the slot's horizon no longer keeps, nor a zero:
    a cell exists exactly when its counter is not zero, whatever the order of
    the events.
    """
    newest = bucket_of(state.last_event_s, state.origin_s)  # type: ignore[arg-type]
    if value == 0 or day <= newest - HORIZON_DAYS[slot]:
        return
    keys, counts = state.cell_keys, state.cell_counts
    key = cell_key(slot, day)
    at = bisect_left(keys, key)
    is_max = slot in MAX_SLOTS
    if at < len(keys) and keys[at] == key:
        count = max(counts[at], value) if is_max else counts[at] + value
        if count == 0:  # amounts may cancel out
            del keys[at], counts[at]
        else:
            _put(state, at, count, insert=False)
    else:
        keys.insert(at, key)
        _put(state, at, value, insert=True)
    totals = state.totals
    if totals is not None:
        totals[slot] = max(totals[slot], value) if is_max else totals[slot] + value


def _put(state: CustomerState, at: int, count: int, *, insert: bool) -> None:
    """Set or insert a count, widening the counts to 64 bits the first time one needs it."""
    try:
        _write(state.cell_counts, at, count, insert)
    except OverflowError:
        state.cell_counts = array("q", state.cell_counts)
        _write(state.cell_counts, at, count, insert)


def _write(counts: array[int], at: int, count: int, insert: bool) -> None:
    if insert:
        counts.insert(at, count)
    else:
        counts[at] = count


def _counts(values: list[int]) -> array[int]:
    """Counts as a 32-bit array, or a 64-bit one when some do not fit."""
    try:
        return array("i", values)
    except OverflowError:
        return array("q", values)


def _forget_old(state: CustomerState) -> None:
    """Drop what no window can reach any more; called when the newest day moves on."""
    newest = bucket_of(state.last_event_s, state.origin_s)  # type: ignore[arg-type]
    keys, counts = state.cell_keys, state.cell_counts
    dropped = False
    for slot, start, end in reversed(slot_runs(state)):  # from the end: indices stay valid
        cut = bisect_right(keys, cell_key(slot, newest - HORIZON_DAYS[slot]), start, end)
        if cut > start:
            del keys[start:cut], counts[start:cut]
            dropped = True
    if dropped:
        state.totals = None  # a maximum cannot be taken back: add up again
    # An opening older than a year can no longer be dead-lettered as late, so a
    # resolution still waiting for it never gets one: let it go. A complaint
    # open for over a year is past every window too: the map stays bounded.
    if state.early_resolutions:
        waiting = state.early_resolutions.items()
        state.early_resolutions = {c: r for c, r in waiting if not _expired(state, r)} or None
    if state.open_complaints:
        still = state.open_complaints.items()
        state.open_complaints = {c: o for c, o in still if not _expired(state, o[0])} or None


def _expired(state: CustomerState, at: float) -> bool:
    """Whether time ``at`` lies on a day no window reaches (the longest horizon)."""
    newest = bucket_of(state.last_event_s, state.origin_s)  # type: ignore[arg-type]
    return bucket_of(at, state.origin_s) <= newest - KEEP_DAYS


def _purchase(state: CustomerState, event: PurchaseEvent, at: float) -> None:
    day = bucket_of(at, state.origin_s)
    if _later(state.last_channel, at, event.event_id):
        state.last_channel = (at, event.event_id, event.channel)
    if event.type == "refund":
        state.refund_count += 1
        _add(state, day, REFUNDS)
        _add(state, day, REFUND_MILLI, _milli(event.amount))
        return
    state.purchase_count += 1
    _add(state, day, PURCHASES)
    _add(state, day, PURCHASE_MILLI, _milli(event.amount))
    if state.first_purchase_s is None or at < state.first_purchase_s:
        state.first_purchase_s = at
    # keep the two newest purchase times (a multiset: equal times both count)
    if state.last_purchase_s is None or at >= state.last_purchase_s:
        state.prev_purchase_s, state.last_purchase_s = state.last_purchase_s, at
    elif state.prev_purchase_s is None or at > state.prev_purchase_s:
        state.prev_purchase_s = at


def _complaint_opened(state: CustomerState, event: ComplaintOpened, at: float) -> None:
    day = bucket_of(at, state.origin_s)
    state.complaint_count += 1
    _add(state, day, COMPLAINTS)
    _add(state, day, COMPLAINT_BY_CATEGORY[event.category])
    if _later(state.last_complaint, at, event.event_id):
        state.last_complaint = (at, event.event_id, event.category)
    if _expired(state, at):
        # pruned at once, as it would have been had the events come in time order
        return
    waiting = state.early_resolutions
    resolved = waiting.pop(event.complaint_id, None) if waiting else None
    if resolved is not None:
        state.early_resolutions = waiting or None
        _record_resolution(state, at, resolved)
        return
    complaints = state.open_complaints = state.open_complaints or {}
    opened = complaints.get(event.complaint_id)
    if opened is None or at < opened[0]:
        complaints[event.complaint_id] = (at, event.category)


def _complaint_resolved(state: CustomerState, event: ComplaintResolved, at: float) -> None:
    if event.satisfaction is not None:
        day = bucket_of(at, state.origin_s)
        _add(state, day, SAT_SUM, event.satisfaction)
        _add(state, day, SAT_N)
        _add(state, day, POST_SAT_SUM, event.satisfaction)
        _add(state, day, POST_SAT_N)
        if _later(state.last_satisfaction, at, event.event_id):
            state.last_satisfaction = (at, event.event_id, event.satisfaction)
    complaints = state.open_complaints
    opened = complaints.pop(event.complaint_id, None) if complaints else None
    if opened is None:
        if not _expired(state, at):
            waiting = state.early_resolutions = state.early_resolutions or {}
            waiting[event.complaint_id] = at
    else:
        state.open_complaints = complaints or None
        _record_resolution(state, opened[0], at)


def _record_resolution(state: CustomerState, opened_s: float, resolved_s: float) -> None:
    """Count a resolved complaint on the day it was resolved.

    A resolution stamped before its opening (clock skew between systems) counts
    as resolved at once: zero time to resolve, never negative.
    """
    day = bucket_of(resolved_s, state.origin_s)
    _add(state, day, RESOLVED)
    millis = max(0, round((resolved_s - opened_s) * 1000))
    _add(state, day, RESOLUTION_MS_SUM, millis)
    _add(state, day, RESOLUTION_MS_MAX, millis)


def _engagement(state: CustomerState, event: EngagementEvent | SurveyResponse, at: float) -> None:
    day = bucket_of(at, state.origin_s)
    _add(state, day, ENGAGEMENT)
    _add(state, day, ENGAGEMENT_BY_TYPE[event.type])
    if state.last_engagement_s is None or at > state.last_engagement_s:
        state.last_engagement_s = at
    extra = event.model_extra or {}
    if event.type in ("points_earned", "points_redeemed"):
        points = extra.get("points")
        if isinstance(points, int) and not isinstance(points, bool) and points > 0:
            _add(
                state,
                day,
                POINTS_EARNED if event.type == "points_earned" else POINTS_REDEEMED,
                points,
            )
    elif event.type == "support_contact" and extra.get("answered") is not True:
        _add(state, day, UNANSWERED_CONTACTS)
    elif isinstance(event, SurveyResponse):
        if event.satisfaction is not None:
            _add(state, day, SAT_SUM, event.satisfaction)
            _add(state, day, SAT_N)
            if _later(state.last_satisfaction, at, event.event_id):
                state.last_satisfaction = (at, event.event_id, event.satisfaction)
        if event.nps is not None:
            _add(state, day, NPS_SUM, event.nps)
            _add(state, day, NPS_N)
            if _later(state.last_nps, at, event.event_id):
                state.last_nps = (at, event.event_id, event.nps)
