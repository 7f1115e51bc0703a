"""Training snapshots from history: features as of a cutoff, churn label after it.

A customer counts as churned as of cutoff ``T`` when they make no purchase in
``(T, T + horizon]``. Snapshots are taken at midnight-UTC cutoffs every
``every_days`` days, only where the label window has closed (``T + horizon``
no later than the newest event), and only for customers *active* at ``T`` (a
customer already gone is no prediction). Who is active depends on the kind of
history (:func:`~churnwatch.models.contractual.recognise`):

* retail (non-contractual): at least one purchase in the ``horizon`` before ``T``;
* contractual (subscriptions): not lapsed, i.e. the last payment no longer ago
  than the customer's own billing period plus a grace
  (:func:`~churnwatch.models.contractual.lapsed`). Counting everyone who paid
  within the horizon would include subscribers who had already cancelled, whom
  recency separates trivially: the held-out figures would then measure a
  question nobody asks.

Features come from the plain fold of the events with ``ts <= T`` and nothing
else, so no later event can leak into them.

Cutoffs are placed over the history's *dense* part (:func:`dense_window`), not
from its first to its last event: a few records dated far away (a late copy
400 days back, a 1970 default date) would otherwise stretch the span, and put
cutoffs where nobody but them is active.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from churnwatch.events import Event, PurchaseEvent
from churnwatch.features.row import feature_row
from churnwatch.features.state import DAY_S, CustomerState, apply
from churnwatch.models.contractual import HistoryKind, billing_period, lapsed

DEFAULT_HORIZON_DAYS = 90.0
DEFAULT_EVERY_DAYS = 14
#: the shortest warm-up a short history is allowed: four weeks of features before a cutoff
MIN_WARM_UP_DAYS = 28.0
#: a day is dense when the month around it holds this share of the usual daily events
DENSE_SHARE = 0.1
#: the days around a day whose events count for it: a month, so that weekends,
#: monthly billing days and a quiet fortnight do not break the dense part
DENSE_SMOOTH_DAYS = 31


def dense_window(
    times_s: npt.ArrayLike,
    *,
    share: float = DENSE_SHARE,
    smooth_days: int = DENSE_SMOOTH_DAYS,
) -> tuple[float, float]:
    """The first and last of ``times_s`` (POSIX seconds) in the dense part of a history.

    The usual rate is that of the middle half of the times (between their first
    and third quartiles), so up to a quarter of stray times on either side cannot
    sway it. A day is dense when the ``smooth_days`` centred on it average at
    least ``share`` of that rate; in a history of pulses (everyone billed on the same
    day each quarter, say) the days counted stretch to twice the usual gap between
    days with records, so that the quiet weeks between pulses stay in it. Of the
    runs of consecutive dense days, the one holding the most times is the dense
    part; its edges move in to the first and last day that reach ``share`` of the
    rate on their own, so that a stray time a few days off is left out unless that
    day is busy. Without a run holding
    half of the times (too few, too spread out) there is no bulk to tell apart
    from tails, and the window is the first to the last time.
    """
    t = np.sort(np.asarray(times_s, dtype=np.float64))
    if t.size == 0:
        raise ValueError("dense_window needs at least one time")
    day = np.floor(t / DAY_S).astype(np.int64)
    day -= day[0]
    counts = np.bincount(day)
    q1, q3 = np.quantile(t, [0.25, 0.75])
    floor = share * 0.5 * t.size / max(1.0, float(q3 - q1) / DAY_S)
    # events up to to each day's end, so that a run of days [a, b) holds ends[b] - ends[a]
    ends = np.concatenate(([0], np.cumsum(counts)))
    # a pulsed history is dense across its quiet weeks: smooth over two usual gaps
    gaps = np.diff(np.flatnonzero(counts))
    half = max(smooth_days, 2 * int(np.median(gaps)) if gaps.size else 0) // 2
    index = np.arange(counts.size)
    around = ends[np.minimum(index + half + 1, counts.size)] - ends[np.maximum(index - half, 0)]
    dense = np.concatenate(([0], around / (2 * half + 1) >= floor, [0])).astype(np.int8)
    starts, stops = np.flatnonzero(np.diff(dense) == 1), np.flatnonzero(np.diff(dense) == -1)
    held = ends[stops] - ends[starts]
    if held.size == 0 or 2 * held.max() < t.size:
        return float(t[0]), float(t[-1])
    best = int(np.argmax(held))
    busy = np.flatnonzero(counts[starts[best] : stops[best]] >= floor) + starts[best]
    first, last = (busy[0], busy[-1]) if busy.size else (starts[best], stops[best] - 1)
    return (
        float(t[np.searchsorted(day, first)]),
        float(t[np.searchsorted(day, last, side="right") - 1]),
    )


def warm_up_for(first_s: float, last_s: float, horizon_days: float) -> float:
    """Days of history before the first cutoff: the horizon, shrunk for a short history.

    A history longer than three horizons plus four weeks keeps a full horizon
    of warm-up; a shorter one gives up warm-up first (down to
    :data:`MIN_WARM_UP_DAYS`), so that two horizons and four weeks of cutoffs
    remain to learn from and to validate on.
    """
    span_days = (last_s - first_s) / DAY_S
    room = span_days - 2 * horizon_days - MIN_WARM_UP_DAYS
    return max(MIN_WARM_UP_DAYS, min(horizon_days, room))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One training example."""

    customer_id: str
    cutoff_s: float
    features: dict[str, Any]
    #: True when the customer made no purchase within the horizon after the cutoff (for a
    #: subscription: had lapsed by the horizon's end)
    churned: bool


def cutoffs(
    first_s: float,
    last_s: float,
    *,
    every_days: int = DEFAULT_EVERY_DAYS,
    horizon_days: float = DEFAULT_HORIZON_DAYS,
    warm_up_days: float = DEFAULT_HORIZON_DAYS,
) -> list[float]:
    """Midnight cutoffs from ``first_s + warm_up`` whose label window closes by ``last_s``."""
    start = math.ceil((first_s + warm_up_days * DAY_S) / DAY_S) * DAY_S
    out = []
    t = start
    while t + horizon_days * DAY_S <= last_s:
        out.append(t)
        t += every_days * DAY_S
    return out


def _is_purchase(event: Event) -> bool:
    return isinstance(event, PurchaseEvent) and event.type == "purchase"


def snapshots(
    events: Iterable[Event],
    at: list[float],
    *,
    horizon_days: float = DEFAULT_HORIZON_DAYS,
    history: HistoryKind | None = None,
) -> Iterator[Snapshot]:
    """Snapshots at the cutoffs ``at`` from ``events`` in event-time order.

    ``history`` says who is active at a cutoff and what churn means: for a
    contractual one, subscribers who have not lapsed, churned when they have
    lapsed by the horizon's end; else (and by default) those who bought within
    the horizon, churned when they buy nothing in the horizon after it.
    """
    horizon_s = horizon_days * DAY_S
    typical = history.period_days if history is not None else None

    def period_of(state: CustomerState, last: float) -> float:
        count, first = state.purchase_count, state.first_purchase_s
        own = (last - first) / (count - 1) / DAY_S if count > 1 and first is not None else None
        return float(billing_period(np.nan if own is None else own, typical or 0.0))

    states: dict[str, CustomerState] = {}
    purchases: dict[str, list[float]] = {}
    #: per cutoff: each active customer's features and billing period (retail: None)
    pending: list[tuple[float, list[tuple[str, dict[str, Any], float | None]]]] = []
    cuts = sorted(at)
    i = 0

    def take(t: float) -> None:
        rows: list[tuple[str, dict[str, Any], float | None]] = []
        for cid, state in states.items():
            last = state.last_purchase_s
            if last is None:
                continue
            if typical is None:
                if t - last < horizon_s:
                    rows.append((cid, feature_row(state, t), None))
                continue
            period = period_of(state, last)
            if not lapsed((t - last) / DAY_S, period):
                rows.append((cid, feature_row(state, t), period))
        pending.append((t, rows))

    previous = -math.inf
    for event in events:
        ts = event.epoch_s
        if ts < previous:
            raise ValueError("snapshots need events in event-time order")
        previous = ts
        while i < len(cuts) and ts > cuts[i]:
            take(cuts[i])
            i += 1
        cid = event.customer_id
        states[cid] = apply(states.get(cid), event)
        if _is_purchase(event):
            purchases.setdefault(cid, []).append(ts)
    while i < len(cuts):
        take(cuts[i])
        i += 1

    # Labels need the purchases after each cutoff: known only once all are read.
    for t, rows in pending:
        end = t + horizon_s
        for cid, features, period in rows:
            times = purchases.get(cid, [])
            if period is None:
                j = bisect.bisect_right(times, t)
                churned = not (j < len(times) and times[j] <= end)
            else:
                # a subscription that ends within the horizon has lapsed by its end,
                # though it may still have been paid for once or twice after the cutoff
                last = times[bisect.bisect_right(times, end) - 1]
                churned = bool(lapsed((end - last) / DAY_S, period))
            yield Snapshot(cid, t, features, churned=churned)


def population_rows(events: Iterable[Event], as_of_s: float) -> list[dict[str, Any]]:
    """The feature row as of ``as_of_s`` of every customer who bought by then.

    The customer-value models learn from these: unlike the snapshots, they
    include the customers who have long stopped buying.
    """
    states: dict[str, CustomerState] = {}
    for event in events:
        if event.epoch_s <= as_of_s:
            states[event.customer_id] = apply(states.get(event.customer_id), event)
    return [feature_row(state, as_of_s) for state in states.values() if state.purchase_count > 0]
