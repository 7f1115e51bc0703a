"""Backtest: judge alert thresholds on replayed history, and pick them for a team's capacity.

The replay's :class:`~churnwatch.offline.replay.Trace` holds every purchase and scored
assessment; :func:`simulate` re-runs the live alert policy (``settle``,
``decide``, ``opened``) over it under other thresholds, without folding or
scoring again. Alerts are judged with the training label: an alert is right
when the customer makes no purchase in the ``horizon`` days after it. A
*churn* is a purchase followed by ``horizon`` days without one; it happens
``horizon`` days after that last purchase, is caught when an alert fired in
between, and its value is the customer's net spend in the year up to it.

Outcomes are known up to the end of the bulk of the history (:func:`bulk`, the
dense part that ``train`` learns from: a few stray records far from the rest do
not count), so the alerts of the last
``horizon`` days are counted but not judged. Every share comes with its Wilson
95 % interval (:func:`wilson`).
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from churnwatch.alerts.config import Policy, SegmentThresholds, Thresholds
from churnwatch.alerts.economics import Economics, ValuePlan, choose, plan
from churnwatch.alerts.policy import AlertState, assess
from churnwatch.features.segments import SEGMENTS
from churnwatch.features.state import DAY_S
from churnwatch.features.tier import TIERS
from churnwatch.models.dataset import dense_window
from churnwatch.offline.replay import ASSESS_PROSPECT, PURCHASE, Replayed, Trace
from churnwatch.stats import wilson  # shared with winback/, and still importable from here

#: candidate ``watch`` thresholds of the sweep; ``high`` and ``critical`` keep their spacing
CANDIDATES = tuple(round(0.05 * i, 2) for i in range(2, 19))
#: a pick at the edge of the sweep widens it by this step, down to :data:`MIN_WATCH`
#: (or up to where ``critical`` reaches 1)
SWEEP_STEP = 0.05
MIN_WATCH = 0.05
#: the values of each segment dimension the report judges, those with the most customers
SEGMENT_VALUES = 8
#: how often the recommendation is tightened when its alerts, replayed together, fall
#: below the precision floor (each round replays the whole trace once)
MAX_TIGHTENING = 8


@dataclass(frozen=True, slots=True)
class Fired:
    """An alert the policy raised in a simulation."""

    customer: int
    at: float
    level: str
    tier: str


@dataclass(frozen=True, slots=True)
class Churn:
    """A customer's last purchase before ``horizon`` days without one."""

    customer: int
    last_purchase: float
    at: float
    value: float


@dataclass
class Metrics:
    """How a set of alerts fared against what the customers then did."""

    alerts: int = 0
    alerts_per_week: float = 0.0
    alerts_per_day: float = 0.0
    judged: int = 0
    #: judged alerts followed by churn (no purchase within the horizon)
    confirmed: int = 0
    precision: float | None = None
    churns: int = 0
    caught: int = 0
    recall: float | None = None
    median_lead_days: float | None = None
    value_at_risk: float = 0.0
    value_caught: float = 0.0
    value_share: float | None = None
    leads: list[float] = field(default_factory=list, repr=False)

    @property
    def precision_interval(self) -> tuple[float, float] | None:
        """Wilson 95 % interval of the precision; ``None`` with no judged alert."""
        return wilson(self.confirmed, self.judged) if self.judged else None

    @property
    def recall_interval(self) -> tuple[float, float] | None:
        """Wilson 95 % interval of the recall; ``None`` with no churn."""
        return wilson(self.caught, self.churns) if self.churns else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without the list of lead times, with the intervals' bounds."""
        out: dict[str, Any] = {k: v for k, v in self.__dict__.items() if k != "leads"}
        for name, interval in (
            ("precision", self.precision_interval),
            ("recall", self.recall_interval),
        ):
            out[f"{name}_low"], out[f"{name}_high"] = interval or (None, None)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


@dataclass(frozen=True, slots=True)
class Span:
    """The bulk of a history: its first and last record, and the strays outside it."""

    first: float
    last: float
    #: records before ``first`` and after ``last``
    before: int = 0
    after: int = 0


def bulk(times: Sequence[float]) -> Span:
    """The span of ``times`` without strays: the history's dense part, as ``train`` uses.

    The same rule (:func:`~churnwatch.models.dataset.dense_window`) places the
    training window and flags far-out records on import, so a stray date is
    stray for every command alike.
    """
    if not times:
        raise ValueError("no records: a history needs at least one")
    ordered = sorted(times)
    first, last = dense_window(ordered)
    before = bisect.bisect_left(ordered, first)
    return Span(first, last, before, len(ordered) - bisect.bisect_right(ordered, last))


@dataclass(frozen=True, slots=True)
class Unjudged:
    """The end of the window whose outcomes are not known yet: the last horizon."""

    start: float
    end: float
    #: alerts raised in it: counted in the volume, not in precision
    alerts: int
    #: customers whose last purchase falls in it: churned or not is not known yet
    customers: int


class Backtest:
    """A replay, the window to judge it in, and the churn horizon.

    The window is cut to the bulk of the history (:func:`bulk`): days before the
    first record or after the last would only thin out the alerts per day.
    """

    def __init__(
        self, replayed: Replayed, *, start: float, end: float, horizon_days: float = 90.0
    ) -> None:
        self.trace = replayed.trace
        self.horizon = horizon_days * DAY_S
        #: the bulk of the stored history, and the strays outside it
        self.span = bulk(_record_times(replayed) or [start, end])
        self.start, self.end = max(start, self.span.first), min(end, self.span.last)
        #: the newest record of the bulk: labels need purchases up to it
        self.data_end = self.span.last
        self._purchases = {
            self.trace.index[cid]: sorted(items)
            for cid, items in replayed.purchases.items()
            if cid in self.trace.index
        }
        self._times = {c: [t for t, _ in items] for c, items in self._purchases.items()}
        self._groups = _group(self.trace)
        self._tier_customers: dict[str, list[int]] = {}
        self.churns = self._find_churns()

    def simulate(self, policy: Policy, customers: Iterable[int] | None = None) -> list[Fired]:
        """Every alert ``policy`` raises over the trace (only ``customers``, if given)."""
        trace = self.trace
        fired: list[Fired] = []
        picked = (
            self._groups.items() if customers is None else ((c, self._groups[c]) for c in customers)
        )
        for customer, steps in picked:
            state = AlertState()
            for i in steps:
                at = trace.at[i]
                kind = trace.kind[i]
                if kind == PURCHASE:
                    state.note_purchase(at)
                    continue
                tier = TIERS[trace.tier[i]]
                level, _ = assess(
                    state,
                    policy,
                    tier=tier,
                    score=trace.value[i],
                    at=at,
                    prospect=kind == ASSESS_PROSPECT,
                    name=partial(_simulated_id, customer, at),
                    segments=trace.segment_sets[trace.segment[i]],
                )
                if level is not None:
                    fired.append(Fired(customer, at, level, tier))
        return fired

    def measure(
        self,
        fired: Sequence[Fired],
        tier: str | None = None,
        customers: Collection[int] | None = None,
    ) -> Metrics:
        """Judge the alerts in the window against what followed.

        With ``tier``, only the alerts raised in that tier count, and a churn is
        caught when one of them came in time: a customer who lapses usually
        drops a tier on the way, so churns are not split by tier. With
        ``customers``, only their alerts and churns count (a segment's, say).
        """
        fired = [
            f
            for f in fired
            if (tier is None or f.tier == tier) and (customers is None or f.customer in customers)
        ]
        alerts = [f for f in fired if self.start <= f.at <= self.end]
        churns = [c for c in self.churns if customers is None or c.customer in customers]
        days = max((self.end - self.start) / DAY_S, 1.0)
        out = Metrics(
            alerts=len(alerts),
            alerts_per_week=len(alerts) / days * 7,
            alerts_per_day=len(alerts) / days,
        )
        judged = [f for f in alerts if f.at + self.horizon <= self.data_end]
        out.judged = len(judged)
        out.confirmed = sum(not self._bought_within(f.customer, f.at) for f in judged)
        if judged:
            out.precision = out.confirmed / len(judged)
        alerts_of: dict[int, list[float]] = {}
        for f in fired:
            alerts_of.setdefault(f.customer, []).append(f.at)
        out.churns = len(churns)
        for churn in churns:
            out.value_at_risk += churn.value
            times = alerts_of.get(churn.customer, [])
            first = next((t for t in times if churn.last_purchase <= t < churn.at), None)
            if first is not None:
                out.caught += 1
                out.value_caught += churn.value
                out.leads.append((churn.at - first) / DAY_S)
        if churns:
            out.recall = out.caught / len(churns)
        if out.value_at_risk > 0:
            out.value_share = out.value_caught / out.value_at_risk
        if out.leads:
            out.median_lead_days = statistics.median(out.leads)
        return out

    def segment_members(self, top: int = SEGMENT_VALUES) -> dict[str, dict[str, set[int]]]:
        """Per segment dimension, its ``top`` values with the most customers and those customers.

        A customer counts in the segments of their last step in the trace.
        """
        last: dict[int, int] = {}
        for i, customer in enumerate(self.trace.customer):
            last[customer] = self.trace.segment[i]
        out: dict[str, dict[str, set[int]]] = {}
        for dimension in SEGMENTS:
            members: dict[str, set[int]] = {}
            for customer, index in last.items():
                value = self.trace.segment_sets[index].get(dimension)
                if value is not None:
                    members.setdefault(value, set()).add(customer)
            biggest = sorted(members.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:top]
            if biggest:
                out[dimension] = dict(biggest)
        return out

    def sweep(self, policy: Policy) -> dict[str, list[tuple[float, Metrics]]]:
        """Per tier, the metrics of each candidate ``watch`` threshold, the other tiers held."""
        return {
            tier: [(w, self.trial(policy, tier, w)) for w in candidates(policy.thresholds[tier])]  # type: ignore[index]
            for tier in TIERS
        }

    def trial(
        self, policy: Policy, tier: str, watch: float, among: Collection[int] | None = None
    ) -> Metrics:
        """The metrics of ``tier``'s alerts with its ``watch`` moved, the other tiers held
        (only the customers ``among``, if given)."""
        customers = self._tier_customers.get(tier)
        if customers is None:
            steps = self._groups.items()
            customers = [c for c, s in steps if self._has_tier(s, tier)]
            self._tier_customers[tier] = customers
        if among is not None:
            customers = [c for c in customers if c in among]
        fired = self.simulate(with_watch(policy, tier, watch), customers)
        return self.measure(fired, tier, among)

    def widen(
        self,
        policy: Policy,
        sweep: dict[str, list[tuple[float, Metrics]]],
        picks: Mapping[str, float],
    ) -> bool:
        """Try the next ``watch`` beyond each pick at the edge of its tier's sweep.

        Returns whether ``sweep`` grew: a pick at the edge may not be the best.
        """
        grown = False
        for tier, pick in picks.items():
            rows = sweep[tier]
            nxt = beyond(policy.thresholds[tier], [w for w, _ in rows], pick)  # type: ignore[index]
            if nxt is not None:
                rows.append((nxt, self.trial(policy, tier, nxt)))
                rows.sort(key=lambda row: row[0])
                grown = True
        return grown

    def unjudged(self, fired: Sequence[Fired]) -> Unjudged | None:
        """The last horizon of the window, whose outcomes are not known yet; ``None`` if none."""
        since = max(self.start, self.data_end - self.horizon)
        if since >= self.end:
            return None
        alerts = sum(
            self.start <= f.at <= self.end and f.at + self.horizon > self.data_end for f in fired
        )
        customers = 0
        for items in self._purchases.values():
            bought = [t for t, a in items if a > 0 and t <= self.data_end]
            customers += bool(bought) and since < bought[-1]
        return Unjudged(since, self.end, alerts, customers)

    def _has_tier(self, steps: list[int], tier: str) -> bool:
        code = TIERS.index(tier)
        return any(self.trace.tier[i] == code for i in steps)

    def _bought_within(self, customer: int, at: float) -> bool:
        times = self._times.get(customer, [])
        i = bisect.bisect_right(times, at)
        return i < len(times) and times[i] <= at + self.horizon

    def _find_churns(self) -> list[Churn]:
        churns = []
        for customer, items in self._purchases.items():
            bought = [(t, a) for t, a in items if a > 0]
            for k, (t, _) in enumerate(bought):
                after = bought[k + 1][0] if k + 1 < len(bought) else None
                churned_at = t + self.horizon
                if after is not None and after <= churned_at:
                    continue
                if churned_at > self.data_end or not self.start <= churned_at <= self.end:
                    continue
                value = sum(a for s, a in items if t - 365 * DAY_S < s <= t)
                churns.append(Churn(customer, t, churned_at, value))
        return churns


def _record_times(replayed: Replayed) -> list[float]:
    """The times of the stored purchases and refunds, and of the first and last record."""
    times = [t for items in replayed.purchases.values() for t, _ in items]
    first, last = min(times, default=None), max(times, default=None)
    # the first and last record count once: they may be purchases already counted
    if replayed.first_s is not None and (first is None or replayed.first_s < first):
        times.append(replayed.first_s)
    if replayed.last_s is not None and (last is None or replayed.last_s > last):
        times.append(replayed.last_s)
    return times


def _group(trace: Trace) -> dict[int, list[int]]:
    """Step positions by customer, in order."""
    groups: dict[int, list[int]] = {}
    for i, customer in enumerate(trace.customer):
        groups.setdefault(customer, []).append(i)
    return groups


def candidates(current: Thresholds) -> list[float]:
    """Sweep values for ``watch`` that keep ``critical`` at most 1."""
    room = _room(current)
    return sorted({*(c for c in CANDIDATES if c <= room + 1e-9), current.watch})


def _room(current: Thresholds) -> float:
    """The highest ``watch`` that keeps ``critical`` at most 1 with the spacing kept."""
    return 1.0 - (current.critical - current.watch)


def beyond(current: Thresholds, watches: Sequence[float], pick: float) -> float | None:
    """The next ``watch`` past the edge of the sweep ``pick`` sits on; ``None`` if none."""
    if pick <= min(watches):
        lower = round(pick - SWEEP_STEP, 4)
        return lower if lower >= MIN_WATCH - 1e-9 else None
    if pick >= max(watches):
        higher = round(min(pick + SWEEP_STEP, _room(current)), 4)
        return higher if higher > pick + 1e-9 else None
    return None


def edge(current: Thresholds, watches: Sequence[float], pick: float) -> str | None:
    """Why ``pick``, at an edge of the sweep that cannot widen, is not a proven optimum."""
    if len(watches) < 2 or beyond(current, watches, pick) is not None:
        return None
    if pick <= min(watches):
        return (
            f"watch {pick:.2f} sits at the lower edge of the sweep ({MIN_WATCH:.2f} is the "
            "lowest it tries): a lower one might be better still"
        )
    if pick >= max(watches):
        return (
            f"watch {pick:.2f} sits at the upper edge of the sweep (a higher one would put "
            "critical above 1): a higher one might be better still"
        )
    return None


def with_watch(policy: Policy, tier: str, watch: float) -> Policy:
    """``policy`` with ``tier``'s thresholds moved so that ``watch`` is the first."""
    moved = Thresholds(**shifted(policy.thresholds[tier], watch))  # type: ignore[index]
    return policy.model_copy(update={"thresholds": {**policy.thresholds, tier: moved}})


def shifted(old: Thresholds, watch: float) -> dict[str, float]:
    """``old``'s three thresholds moved together so that ``watch`` is the first."""
    shift = watch - old.watch
    return {
        "watch": round(watch, 4),
        "high": round(min(old.high + shift, 1.0), 4),
        "critical": round(min(old.critical + shift, 1.0), 4),
    }


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The ``watch`` threshold per tier that catches the most value within capacity."""

    watch: Mapping[str, float]
    alerts_per_day: float
    value_caught: float
    fits: bool


def recommend(
    sweep: Mapping[str, Sequence[tuple[float, Metrics]]], capacity_per_day: float
) -> Recommendation:
    """Choose one threshold per tier: most value caught with alerts per day within capacity.

    Ties go to fewer alerts. When nothing fits, the thresholds with the fewest
    alerts are returned with ``fits=False``.
    """
    tiers = list(sweep)
    chosen = choose(
        [sweep[t] for t in tiers],
        capacity_per_day,
        lambda row: row[1].alerts_per_day,
        lambda row: row[1].value_caught,
    )
    assert chosen is not None, "no thresholds to choose from"
    combo, per_day, value, fits = chosen
    watches = {t: w for t, (w, _) in zip(tiers, combo, strict=True)}
    return Recommendation(watches, per_day, value, fits)


def apply_recommendation(policy: Policy, rec: Recommendation) -> Policy:
    """``policy`` with each tier's thresholds moved to the recommended ``watch``."""
    return with_watches(policy, rec.watch)


def with_watches(policy: Policy, watches: Mapping[str, float]) -> Policy:
    """``policy`` with each tier's thresholds moved to its ``watch`` in ``watches``."""
    for tier, watch in watches.items():
        policy = with_watch(policy, tier, watch)
    return policy


@dataclass(frozen=True)
class Tuned:
    """The value plan, once the sweep is wide enough and checked by replaying it whole."""

    plan: ValuePlan
    #: the policy with the plan's thresholds, and the alerts it raises over the trace
    policy: Policy
    fired: list[Fired]
    #: tier -> why its pick, at the edge of the sweep, may not be the best
    edges: Mapping[str, str]
    #: why the alerts of all tiers together fall below the precision floor; ``None``: they don't
    overall_short: str | None
    #: combinations passed over because, replayed together, they fell below the floor
    tightened: int


def tune(
    test: Backtest,
    policy: Policy,
    sweep: dict[str, list[tuple[float, Metrics]]],
    capacity_per_day: float,
    econ: Economics,
) -> Tuned:
    """Plan the thresholds (:func:`~churnwatch.alerts.economics.plan`) until the plan is sound.

    A pick at the edge of its tier's sweep widens the sweep and plans again. The
    plan pools the tiers' figures from the sweep, where each tier was replayed
    with the others held; the chosen thresholds are then replayed together, and
    while their precision falls below the floor the next best combination is
    tried (at most :data:`MAX_TIGHTENING` times). ``sweep`` grows in place.
    """
    current = {t: policy.thresholds[t].watch for t in TIERS}  # type: ignore[index]
    caps = {t: c for t in TIERS if (c := policy.capacity_for(t)) is not None}
    rejected: list[dict[str, float]] = []
    while True:
        chosen = plan(sweep, current, capacity_per_day, econ, rejected, caps)
        movable = {t: w for t, w in chosen.watch.items() if t not in chosen.held}
        if test.widen(policy, sweep, movable):
            continue
        better = with_watches(policy, chosen.watch)
        fired = test.simulate(better)
        short = _below_floor(test.measure(fired), chosen, econ, len(rejected))
        if short is None or chosen.overall_short is not None or len(rejected) >= MAX_TIGHTENING:
            break
        rejected.append(dict(chosen.watch))
    edges = {}
    for tier, pick in movable.items():
        note = edge(policy.thresholds[tier], [w for w, _ in sweep[tier]], pick)  # type: ignore[index]
        if note is not None:
            edges[tier] = note
    return Tuned(chosen, better, fired, edges, short, len(rejected))


@dataclass(frozen=True)
class SegmentPlan:
    """The thresholds that pay best for one segment's customers, within its capacity."""

    dimension: str
    value: str
    customers: int
    capacity_per_day: float
    #: where the capacity comes from: the alert policy, or the segment's load as it is
    capacity_source: str
    plan: ValuePlan
    #: a ``[[segment_thresholds]]`` rule per tier whose ``watch`` moves
    rules: tuple[SegmentThresholds, ...]
    #: the segment's alerts a day under the tiers' thresholds
    current_per_day: float

    @property
    def gain(self) -> float:
        """Expected net value the segment's own thresholds add over the tiers'."""
        return self.plan.net_value - self.plan.current_net_value

    @property
    def worth_adopting(self) -> bool:
        """Whether the rules add value, or keep a segment the tiers' thresholds overload."""
        return bool(self.rules) and (
            self.gain > 0 or self.current_per_day > self.capacity_per_day + 1e-9
        )


def plan_segment(
    test: Backtest,
    policy: Policy,
    scope: tuple[str, str],
    members: Collection[int],
    econ: Economics,
) -> SegmentPlan:
    """Thresholds per tier for the customers of one segment, as ``[[segment_thresholds]]``.

    Each tier's ``watch`` is swept for the segment's customers alone, against
    ``policy``'s tier thresholds (a rule the policy already has for the segment
    is set aside). The capacity is the policy's for the segment; without one it
    is the segment's alerts a day under ``policy``, so that the same load is
    spent where it pays most.
    """
    dimension, value = scope
    plain = policy.model_copy(
        update={
            "segment_thresholds": tuple(
                r for r in policy.segment_thresholds if r.scope()[:2] != (dimension, value)
            )
        }
    )
    among = set(members)
    sweep = {
        tier: [
            (w, test.trial(plain, tier, w, among))
            for w in candidates(plain.thresholds[tier])  # type: ignore[index]
        ]
        for tier in TIERS
    }
    current = {t: plain.thresholds[t].watch for t in TIERS}  # type: ignore[index]
    # summed over the tiers as the plan sums them, so that the tiers' thresholds fit it
    load = sum(m.alerts_per_day for t in TIERS for w, m in sweep[t] if w == current[t])
    cap = policy.capacity_for(None, dimension, value)
    source = "alert policy"
    if cap is None:
        cap, source = load, "its load now"
    caps = {t: c for t in TIERS if (c := policy.capacity_for(t, dimension, value)) is not None}
    chosen = plan(sweep, current, cap, econ, tier_capacity=caps)
    rules = tuple(
        SegmentThresholds.model_validate(
            {dimension: value, "tier": tier, **shifted(plain.thresholds[tier], watch)}  # type: ignore[index]
        )
        for tier, watch in chosen.watch.items()
        if tier not in chosen.held and watch != current[tier]
    )
    return SegmentPlan(dimension, value, len(members), cap, source, chosen, rules, load)


def _below_floor(overall: Metrics, chosen: ValuePlan, econ: Economics, tries: int) -> str | None:
    """Why the replayed alerts of all tiers fall below the floor; ``None`` when they don't."""
    if overall.precision is None or overall.precision >= econ.precision_floor:
        return None
    if chosen.overall_short is not None:
        return chosen.overall_short
    return (
        f"replayed together, the thresholds reach {overall.precision:.1%} over all tiers, "
        f"below the {econ.precision_floor:.0%} floor, after {tries} combinations were passed over"
    )


def _simulated_id(customer: int, at: float, level: str) -> str:
    """A simulated alert's id: one customer has at most one alert open at a time."""
    return f"{customer}@{at}"
