"""Feature rows: a customer's state read out as of a time ``T``.

A window of N days holds the day buckets ``b(T) - N < b <= b(T)``: N whole days
ending with the day of ``T``. When ``T`` lies on a bucket edge (midnight UTC for
the worker; replay aligns the edges to its ``--as-of``), that is exactly
the ``T - N days < ts <= T`` of docs/contract.md. :data:`FEATURES` documents every column;
docs/features.md's table is checked against it.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass
from itertools import repeat
from operator import sub
from typing import Any, Final

from churnwatch.events import COMPLAINT_CATEGORIES
from churnwatch.features import state as s
from churnwatch.features.state import DAY_S, CustomerState, bucket_of

#: Open complaints older than this many days count as overdue.
OVERDUE_COMPLAINT_DAYS: Final = 7.0
#: Trend baseline: the 90 days before the last 30.
_BASE_FROM: Final = 30
_BASE_TO: Final = 120


@dataclass(frozen=True, slots=True)
class Feature:
    """One column of a feature row, as documented in docs/features.md."""

    name: str
    window: str
    definition: str
    indicator: str


_ENGAGEMENT_TYPES = tuple(s.ENGAGEMENT_BY_TYPE)

FEATURES: tuple[Feature, ...] = (
    Feature("recency_days", "-", "days from the last purchase to T; empty if none", "RFM: recency"),
    Feature("frequency_30d", "30 d", "purchases in the window", "RFM: frequency"),
    Feature("frequency_90d", "90 d", "purchases in the window", "RFM: frequency"),
    Feature("frequency_365d", "365 d", "purchases in the window", "RFM: frequency"),
    Feature("monetary_30d", "30 d", "purchase amounts minus refund amounts", "RFM: monetary"),
    Feature("monetary_90d", "90 d", "purchase amounts minus refund amounts", "RFM: monetary"),
    Feature("monetary_365d", "365 d", "purchase amounts minus refund amounts", "RFM: monetary"),
    Feature(
        "avg_order_value_365d",
        "365 d",
        "purchase amounts / purchases; empty if none",
        "RFM: monetary",
    ),
    Feature("refunds_90d", "90 d", "refunds in the window", "RFM: monetary"),
    Feature("refund_amount_90d", "90 d", "sum of refund amounts", "RFM: monetary"),
    Feature(
        "purchase_interval_days",
        "lifetime",
        "typical gap: (last - first purchase) / (purchases - 1); empty below 2 purchases",
        "purchase frequency",
    ),
    Feature(
        "last_interval_days",
        "lifetime",
        "gap between the last two purchases",
        "purchase frequency",
    ),
    Feature(
        "interval_ratio",
        "-",
        "recency_days / purchase_interval_days: >1 is overdue",
        "purchase frequency trend",
    ),
    Feature(
        "frequency_trend",
        "30 d vs 90 d before",
        "purchases in the last 30 d against the monthly rate of the 90 d before (as much of "
        "them as the customer was seen in); empty if seen for less than 60 d or no baseline",
        "purchase frequency trend",
    ),
    Feature(
        "spend_trend",
        "30 d vs 90 d before",
        "purchase amounts in the last 30 d against the monthly amount of the 90 d before; "
        "empty as frequency_trend",
        "purchase frequency trend",
    ),
    Feature(
        "frequency_trend_365d",
        "90 d vs 365 d",
        "purchases in the last 90 d against the 90-day rate of the 365 d (as much of them as "
        "the customer was seen in); empty if seen for less than 120 d or none",
        "purchase frequency trend",
    ),
    Feature(
        "spend_trend_365d",
        "90 d vs 365 d",
        "purchase amounts in the last 90 d / (those of the 365 d * 90 / 365); empty if none",
        "purchase frequency trend",
    ),
    Feature(
        "interval_cv_365d",
        "365 d",
        "standard deviation / mean of the gaps between purchase days; empty below 3 of them",
        "purchase regularity",
    ),
    Feature(
        "rhythm_z",
        "365 d",
        "(recency_days - mean gap) / standard deviation of the gaps (at least 1 day); "
        "empty below 3 purchase days",
        "purchase frequency trend",
    ),
    Feature("purchases_lifetime", "lifetime", "purchases ever", "RFM: frequency"),
    Feature(
        "days_since_first_purchase",
        "lifetime",
        "days from the first purchase to T; empty if none",
        "RFM: recency",
    ),
    Feature("complaints_30d", "30 d", "complaints opened", "complaint rate"),
    Feature("complaints_90d", "90 d", "complaints opened", "complaint rate"),
    Feature("complaints_365d", "365 d", "complaints opened", "complaint rate"),
    *(
        Feature(f"complaints_90d_{cat}", "90 d", f"complaints opened about {cat}", "complaint rate")
        for cat in COMPLAINT_CATEGORIES
    ),
    Feature(
        "last_complaint_category", "lifetime", "category of the newest complaint", "complaint rate"
    ),
    Feature(
        "open_complaints",
        "-",
        "opened at or before T and not resolved at or before T",
        "complaint handling",
    ),
    Feature(
        "overdue_complaints",
        "-",
        f"open complaints opened more than {OVERDUE_COMPLAINT_DAYS:g} days before T",
        "complaint handling",
    ),
    Feature("resolved_complaints_90d", "90 d", "complaints resolved", "complaint handling"),
    Feature(
        "resolution_hours_mean_90d",
        "90 d",
        "mean hours from opening to resolution of complaints resolved in the window",
        "complaint handling",
    ),
    Feature(
        "resolution_hours_max_90d",
        "90 d",
        "longest of those resolution times",
        "complaint handling",
    ),
    Feature(
        "satisfaction_latest",
        "lifetime",
        "newest satisfaction rating (survey or complaint resolution)",
        "satisfaction",
    ),
    Feature(
        "satisfaction_mean",
        "90 d",
        "mean of every satisfaction rating (surveys and resolutions); empty if none",
        "satisfaction",
    ),
    Feature(
        "post_resolution_satisfaction_90d",
        "90 d",
        "mean rating given when a complaint was resolved",
        "satisfaction",
    ),
    Feature("nps_latest", "lifetime", "newest NPS answer (0-10)", "satisfaction"),
    Feature("nps_mean_90d", "90 d", "mean NPS answer", "satisfaction"),
    Feature("engagement_30d", "30 d", "engagement-topic events", "engagement"),
    Feature("engagement_90d", "90 d", "engagement-topic events", "engagement"),
    Feature(
        "engagement_trend",
        "30 d vs 90 d before",
        "engagement events in the last 30 d against the monthly rate of the 90 d before; "
        "empty as frequency_trend",
        "engagement",
    ),
    Feature(
        "email_trend",
        "30 d vs 90 d before",
        "email_open and email_click events in the last 30 d against the monthly rate of the "
        "90 d before; empty as frequency_trend, or when the 90 d before hold none",
        "communication (response to messages)",
    ),
    *(Feature(f"{kind}_30d", "30 d", f"{kind} events", "engagement") for kind in _ENGAGEMENT_TYPES),
    Feature(
        "days_since_engagement",
        "-",
        "days from the last engagement-topic event to T",
        "engagement",
    ),
    Feature(
        "points_earned_90d",
        "90 d",
        "sum of `points` on points_earned events",
        "engagement (loyalty)",
    ),
    Feature(
        "points_redeemed_90d",
        "90 d",
        "sum of `points` on points_redeemed events",
        "engagement (loyalty)",
    ),
    Feature(
        "unanswered_contacts_30d",
        "30 d",
        "support_contact events not marked `answered: true`",
        "communication",
    ),
    Feature("tenure_days", "-", "days from the first event to T", "lifecycle"),
    Feature(
        "days_since_signup",
        "-",
        "days from the profile's signup_ts to T; empty if unknown",
        "lifecycle",
    ),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)

# Column names built once: a row is built for every event.
_WINDOW_KEYS: Final = tuple(
    (f"frequency_{n}d", f"monetary_{n}d", f"complaints_{n}d") for n in (30, 90, 365)
)
_CATEGORY_KEYS: Final = tuple(
    (f"complaints_90d_{c}", slot) for c, slot in s.COMPLAINT_BY_CATEGORY.items()
)
_ENGAGEMENT_KEYS: Final = tuple(
    (f"{kind}_30d", slot) for kind, slot in s.ENGAGEMENT_BY_TYPE.items()
)


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else num / den


def _baselines(state: CustomerState, as_of_s: float) -> tuple[float | None, float | None]:
    """The scale from each trend's baseline window to its recent window, or ``None``.

    A window reaching back before the customer was first seen holds only the days
    since: scaling it by its full length would read every young history as rising
    (and every older one as falling back). A baseline needs 30 days seen: the 30
    to 120 days before ``as_of_s`` for the 30-day trends, the year beyond the last
    90 days for the 365-day ones.
    """
    seen = 0.0 if state.first_seen_s is None else (as_of_s - state.first_seen_s) / DAY_S
    base_days, year_days = min(seen, _BASE_TO) - _BASE_FROM, min(seen, s.KEEP_DAYS)
    return (
        _BASE_FROM / base_days if base_days >= 30 else None,
        90 / year_days if year_days - 90 >= 30 else None,
    )


def _trend(recent: float, baseline: float, scale: float | None) -> float | None:
    """``recent`` against ``baseline`` brought to the recent window's length."""
    return None if scale is None else _ratio(recent, baseline * scale)


def _days(as_of_s: float, since: float | None) -> float | None:
    return None if since is None else (as_of_s - since) / DAY_S


def _after(keys: array[int], key: int, lo: int, hi: int) -> int:
    """The first index in ``[lo, hi)`` of sorted ``keys`` whose key is above ``key``."""
    return lo if lo == hi or keys[lo] > key else bisect_right(keys, key, lo, hi)


def _sums(state: CustomerState, as_of_s: float) -> tuple[list[int], ...]:
    """Counter totals over the 30, 90 and 365-day windows and the trend baseline.

    Each slot's cells are contiguous and sorted by day, so a window of a slot is
    one slice, found by bisection, added up in C: the cost follows the slots in
    use, not the days. As of the newest day the 365-day window is the kept
    totals (:func:`~churnwatch.features.state.kept_totals`). Its max slots are
    the maxima of every kept cell; no feature reads them.
    """
    n = s.N_SLOTS
    w30, w90, base = [0] * n, [0] * n, [0] * n
    today = bucket_of(as_of_s, state.origin_s)
    newest = None if state.last_event_s is None else bucket_of(state.last_event_s, state.origin_s)
    # as of the newest day every kept cell is in the year, none after it
    year = list(s.kept_totals(state)) if today == newest else None
    w365 = year if year is not None else [0] * n
    keys, counts = state.cell_keys, state.cell_counts
    for slot, start, end in s.slot_runs(state):
        day0 = s.cell_key(slot, 0)
        if keys[end - 1] > day0 + today:  # cells after the as-of day count nowhere
            end = bisect_right(keys, day0 + today, start, end)
        p365 = _after(keys, day0 + today - s.KEEP_DAYS, start, end)
        p120 = _after(keys, day0 + today - _BASE_TO, p365, end)
        p90 = _after(keys, day0 + today - 90, p120, end)
        p30 = _after(keys, day0 + today - _BASE_FROM, p90, end)
        if slot in s.MAX_SLOTS:
            recent = max(counts[p30:end], default=0)
            middle = max(counts[p90:p30], default=0)
            w30[slot], w90[slot] = recent, max(recent, middle)
            base[slot] = max(middle, max(counts[p120:p90], default=0))
            if year is None:
                w365[slot] = max(counts[p365:end], default=0)
            continue
        recent = sum(counts[p30:end]) if end > p30 else 0
        middle = sum(counts[p90:p30]) if p30 > p90 else 0
        w30[slot], w90[slot] = recent, recent + middle
        base[slot] = middle + (sum(counts[p120:p90]) if p90 > p120 else 0)
        if year is None:
            w365[slot] = sum(counts[p365:end]) if end > p365 else 0
    return w30, w90, w365, base


def _rhythm(state: CustomerState, as_of_s: float) -> tuple[float, float] | None:
    """Mean and standard deviation of the gaps between purchase days in the 365 days.

    Read from the day buckets, so it is the same for any order of the events.
    """
    today = bucket_of(as_of_s, state.origin_s)
    keys = state.cell_keys
    day0 = s.cell_key(s.PURCHASES, 0)
    # the purchase-count cells are sorted by day: their keys step as the days do
    lo = bisect_right(keys, day0 + today - s.KEEP_DAYS)
    hi = bisect_right(keys, day0 + today, lo)
    if hi - lo < 3:
        return None
    days = keys[lo:hi]
    gaps = len(days) - 1
    mean = (days[-1] - days[0]) / gaps
    # (gap - mean) ** 2 for each gap, added up in order: the generator's arithmetic, in C
    spread = sum(map(pow, map(sub, map(sub, days[1:], days[:-1]), repeat(mean)), repeat(2)))
    return mean, (spread / gaps) ** 0.5


def feature_row(state: CustomerState, as_of_s: float | None = None) -> dict[str, Any]:
    """Every feature of :data:`FEATURES` as of ``as_of_s`` (default: the newest event).

    ``as_of_s`` is no earlier than the newest event, as the worker, replay and
    the data sets read rows: a window as of an earlier day may miss cells the
    state no longer keeps (:data:`~churnwatch.features.state.HORIZON_DAYS`).
    """
    t = state.last_event_s if as_of_s is None else as_of_s
    if t is None:
        raise ValueError(f"customer {state.customer_id!r} has no events")
    w30, w90, w365, base = _sums(state, t)
    row: dict[str, Any] = {}

    recency = _days(t, state.last_purchase_s)
    interval = None
    if state.purchase_count >= 2 and state.first_purchase_s is not None:
        span = state.last_purchase_s - state.first_purchase_s  # type: ignore[operator]
        interval = span / DAY_S / (state.purchase_count - 1)
    last_gap = None
    if state.prev_purchase_s is not None:
        last_gap = (state.last_purchase_s - state.prev_purchase_s) / DAY_S  # type: ignore[operator]
    row["recency_days"] = recency
    for (frequency, monetary, _), w in zip(_WINDOW_KEYS, (w30, w90, w365), strict=True):
        row[frequency] = w[s.PURCHASES]
        row[monetary] = (w[s.PURCHASE_MILLI] - w[s.REFUND_MILLI]) / 1000
    row["avg_order_value_365d"] = _ratio(w365[s.PURCHASE_MILLI] / 1000, w365[s.PURCHASES])
    row["refunds_90d"] = w90[s.REFUNDS]
    row["refund_amount_90d"] = w90[s.REFUND_MILLI] / 1000
    row["purchase_interval_days"] = interval
    row["last_interval_days"] = last_gap
    row["interval_ratio"] = None if recency is None or not interval else recency / interval
    per_base, per_year = _baselines(state, t)
    row["frequency_trend"] = _trend(w30[s.PURCHASES], base[s.PURCHASES], per_base)
    row["spend_trend"] = _trend(w30[s.PURCHASE_MILLI], base[s.PURCHASE_MILLI], per_base)
    row["frequency_trend_365d"] = _trend(w90[s.PURCHASES], w365[s.PURCHASES], per_year)
    row["spend_trend_365d"] = _trend(w90[s.PURCHASE_MILLI], w365[s.PURCHASE_MILLI], per_year)
    rhythm = _rhythm(state, t)
    row["interval_cv_365d"] = None if rhythm is None else rhythm[1] / rhythm[0]
    row["rhythm_z"] = (
        None if rhythm is None or recency is None else (recency - rhythm[0]) / max(rhythm[1], 1.0)
    )
    row["purchases_lifetime"] = state.purchase_count
    row["days_since_first_purchase"] = _days(t, state.first_purchase_s)

    for (_, _, complaints), w in zip(_WINDOW_KEYS, (w30, w90, w365), strict=True):
        row[complaints] = w[s.COMPLAINTS]
    for name, slot in _CATEGORY_KEYS:
        row[name] = w90[slot]
    row["last_complaint_category"] = state.last_complaint[2] if state.last_complaint else None
    still_open = state.open_complaints or {}
    row["open_complaints"] = len(still_open)
    overdue_before = t - OVERDUE_COMPLAINT_DAYS * DAY_S
    row["overdue_complaints"] = sum(
        1 for opened, _ in still_open.values() if opened < overdue_before
    )
    row["resolved_complaints_90d"] = w90[s.RESOLVED]
    mean_ms = _ratio(w90[s.RESOLUTION_MS_SUM], w90[s.RESOLVED])
    row["resolution_hours_mean_90d"] = None if mean_ms is None else mean_ms / 3.6e6
    row["resolution_hours_max_90d"] = w90[s.RESOLUTION_MS_MAX] / 3.6e6 if w90[s.RESOLVED] else None

    row["satisfaction_latest"] = state.last_satisfaction[2] if state.last_satisfaction else None
    row["satisfaction_mean"] = _ratio(w90[s.SAT_SUM], w90[s.SAT_N])
    row["post_resolution_satisfaction_90d"] = _ratio(w90[s.POST_SAT_SUM], w90[s.POST_SAT_N])
    row["nps_latest"] = state.last_nps[2] if state.last_nps else None
    row["nps_mean_90d"] = _ratio(w90[s.NPS_SUM], w90[s.NPS_N])

    row["engagement_30d"] = w30[s.ENGAGEMENT]
    row["engagement_90d"] = w90[s.ENGAGEMENT]
    row["engagement_trend"] = _trend(w30[s.ENGAGEMENT], base[s.ENGAGEMENT], per_base)
    row["email_trend"] = _trend(
        sum(w30[slot] for slot in s.EMAIL_RESPONSE_SLOTS),
        sum(base[slot] for slot in s.EMAIL_RESPONSE_SLOTS),
        per_base,
    )
    for name, slot in _ENGAGEMENT_KEYS:
        row[name] = w30[slot]
    row["days_since_engagement"] = _days(t, state.last_engagement_s)
    row["points_earned_90d"] = w90[s.POINTS_EARNED]
    row["points_redeemed_90d"] = w90[s.POINTS_REDEEMED]
    row["unanswered_contacts_30d"] = w30[s.UNANSWERED_CONTACTS]

    row["tenure_days"] = _days(t, state.first_seen_s)
    signup = state.profile[2] if state.profile else None
    row["days_since_signup"] = _days(t, signup)
    return row
