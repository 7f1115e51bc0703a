"""Backtest: judge alert thresholds on replayed history, and pick them for a team's capacity.

The replay's :class:`~churnwatch.offline.replay.Trace` holds every purchase and scored
assessment; :func:`simulate` re-runs the live alert policy (``settle``,
``decide``, ``opened``) over it under other thresholds, without folding or
scoring again. Alerts are judged with the training label: an alert is right
when the customer makes no purchase in the ``horizon`` days after it. A
*churn* is a purchase followed by ``horizon`` days without one; it happens
``horizon`` days after that last purchase, is caught when an alert fired in
between, and its value is the customer's net spend in the year up to it.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from churnwatch.alerts.config import Policy, Thresholds
from churnwatch.alerts.economics import choose
from churnwatch.alerts.policy import AlertState, assess
from churnwatch.features.state import DAY_S
from churnwatch.features.tier import TIERS
from churnwatch.offline.replay import ASSESS_PROSPECT, PURCHASE, Replayed, Trace

#: candidate ``watch`` thresholds of the sweep; ``high`` and ``critical`` keep their spacing
CANDIDATES = tuple(round(0.05 * i, 2) for i in range(2, 19))


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
    precision: float | None = None
    churns: int = 0
    caught: int = 0
    recall: float | None = None
    median_lead_days: float | None = None
    value_at_risk: float = 0.0
    value_caught: float = 0.0
    value_share: float | None = None
    leads: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without the list of lead times."""
        out = {k: v for k, v in self.__dict__.items() if k != "leads"}
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


class Backtest:
    """A replay, the window to judge it in, and the churn horizon."""

    def __init__(
        self, replayed: Replayed, *, start: float, end: float, horizon_days: float = 90.0
    ) -> None:
        self.trace = replayed.trace
        self.start, self.end = start, end
        self.horizon = horizon_days * DAY_S
        #: the newest event time in the store: labels need purchases up to it
        self.data_end = replayed.last_s or end
        self._purchases = {
            self.trace.index[cid]: sorted(items)
            for cid, items in replayed.purchases.items()
            if cid in self.trace.index
        }
        self._times = {c: [t for t, _ in items] for c, items in self._purchases.items()}
        self._groups = _group(self.trace)
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
                )
                if level is not None:
                    fired.append(Fired(customer, at, level, tier))
        return fired

    def measure(self, fired: Sequence[Fired], tier: str | None = None) -> Metrics:
        """Judge the alerts in the window against what followed.

        With ``tier``, only the alerts raised in that tier count, and a churn is
        caught when one of them came in time: a customer who lapses usually
        drops a tier on the way, so churns are not split by tier.
        """
        fired = [f for f in fired if tier is None or f.tier == tier]
        alerts = [f for f in fired if self.start <= f.at <= self.end]
        churns = self.churns
        days = max((self.end - self.start) / DAY_S, 1.0)
        out = Metrics(
            alerts=len(alerts),
            alerts_per_week=len(alerts) / days * 7,
            alerts_per_day=len(alerts) / days,
        )
        judged = [f for f in alerts if f.at + self.horizon <= self.data_end]
        out.judged = len(judged)
        if judged:
            out.precision = sum(not self._bought_within(f.customer, f.at) for f in judged) / len(
                judged
            )
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

    def sweep(self, policy: Policy) -> dict[str, list[tuple[float, Metrics]]]:
        """Per tier, the metrics of each candidate ``watch`` threshold, the other tiers held."""
        out: dict[str, list[tuple[float, Metrics]]] = {}
        for tier in TIERS:
            customers = [c for c, steps in self._groups.items() if self._has_tier(steps, tier)]
            rows = []
            for watch in candidates(policy.thresholds[tier]):  # type: ignore[index]
                trial = with_watch(policy, tier, watch)
                rows.append((watch, self.measure(self.simulate(trial, customers), tier)))
            out[tier] = rows
        return out

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


def _group(trace: Trace) -> dict[int, list[int]]:
    """Step positions by customer, in order."""
    groups: dict[int, list[int]] = {}
    for i, customer in enumerate(trace.customer):
        groups.setdefault(customer, []).append(i)
    return groups


def candidates(current: Thresholds) -> list[float]:
    """Sweep values for ``watch`` that keep ``critical`` at most 1."""
    room = 1.0 - (current.critical - current.watch)
    return sorted({*(c for c in CANDIDATES if c <= room + 1e-9), current.watch})


def with_watch(policy: Policy, tier: str, watch: float) -> Policy:
    """``policy`` with ``tier``'s thresholds moved so that ``watch`` is the first."""
    old = policy.thresholds[tier]  # type: ignore[index]
    shift = watch - old.watch
    moved = Thresholds(
        watch=round(watch, 4),
        high=round(min(old.high + shift, 1.0), 4),
        critical=round(min(old.critical + shift, 1.0), 4),
    )
    return policy.model_copy(update={"thresholds": {**policy.thresholds, tier: moved}})


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
    combo, per_day, value, fits = choose(
        [sweep[t] for t in tiers],
        capacity_per_day,
        lambda row: row[1].alerts_per_day,
        lambda row: row[1].value_caught,
    )
    watches = {t: w for t, (w, _) in zip(tiers, combo, strict=True)}
    return Recommendation(watches, per_day, value, fits)


def apply_recommendation(policy: Policy, rec: Recommendation) -> Policy:
    """``policy`` with each tier's thresholds moved to the recommended ``watch``."""
    for tier, watch in rec.watch.items():
        policy = with_watch(policy, tier, watch)
    return policy


def _simulated_id(customer: int, at: float, level: str) -> str:
    """A simulated alert's id: one customer has at most one alert open at a time."""
    return f"{customer}@{at}"
