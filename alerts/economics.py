"""Which thresholds pay: expected net value saved, within capacity, above a precision floor.

Plain Python over the backtest's sweep. For a tier's candidate ``watch``
threshold the expected net value saved is

    win-back rate x value of the churns its alerts caught - contact cost x alerts

The value of a churn is what the backtest puts at risk: the customer's net
spend in the year before their last purchase. The win-back rate is what a
contact adds to an alerted customer's chance of coming back: the uplift measured
against the tier's control group once both groups hold enough cases (shrunk
toward the prior by how much evidence there is), and otherwise the documented
prior :data:`DEFAULT_WINBACK_PRIOR`.

The recommendation picks one candidate per tier: the most expected net value
whose alerts per day, summed over the tiers, stay within capacity and whose
precision (the share of its alerts followed by churn) reaches the floor. A
candidate judged on fewer than ``min_evidence`` alerts is not trusted: its
precision could be luck. A tier with no trusted candidate above the floor keeps
its thresholds, and says why. The floor also holds for all tiers together (the
alerts of the chosen candidates pooled): combinations below it are passed over,
and when none reaches it the plan says so.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

T = TypeVar("T")

#: the share of a tier's alerts that must be followed by churn, by default
DEFAULT_PRECISION_FLOOR = 0.25
#: the win-back rate assumed before outcomes are measured: one contacted churner in five
#: returns, a middle value of what retention programmes report for a first contact
DEFAULT_WINBACK_PRIOR = 0.20
#: judged alerts a candidate threshold needs before its precision is trusted: at 30 the
#: 95 % interval of a precision near the 25 % floor is still about ±15 points wide
DEFAULT_MIN_EVIDENCE = 30


class Judged(Protocol):
    """What the recommendation reads of a candidate's backtest metrics."""

    alerts: int
    alerts_per_day: float
    #: alerts whose horizon has passed, and of them those followed by churn
    judged: int
    confirmed: int
    precision: float | None
    value_caught: float


@dataclass(frozen=True)
class Economics:
    """The money side of the recommendation."""

    #: tier -> win-back rate; and where each came from ("measured (n tasks)" or "prior")
    winback_rate: Mapping[str, float]
    rate_source: Mapping[str, str]
    contact_cost: float = 0.0
    precision_floor: float = DEFAULT_PRECISION_FLOOR
    min_evidence: int = DEFAULT_MIN_EVIDENCE

    def net_value(self, tier: str, m: Judged) -> float:
        """Expected net value saved by the alerts ``m`` measured in ``tier``."""
        return self.winback_rate[tier] * m.value_caught - self.contact_cost * m.alerts


def economics(
    tiers: Sequence[str],
    measured: Mapping[str, tuple[float, str]] | None = None,
    *,
    prior: float = DEFAULT_WINBACK_PRIOR,
    contact_cost: float = 0.0,
    precision_floor: float = DEFAULT_PRECISION_FLOOR,
    min_evidence: int = DEFAULT_MIN_EVIDENCE,
) -> Economics:
    """Win-back rates per tier: the ``measured`` (rate, where it comes from), else ``prior``.

    The measured rate is what a contact adds to an alerted customer's return, against
    the control group (``churnwatch.winback.report.measured_rates``). Raises
    :class:`SettingError` (one line) for a setting outside its range.
    """
    check(
        winback_rate=prior,
        contact_cost=contact_cost,
        precision_floor=precision_floor,
        min_evidence=min_evidence,
    )
    measured = measured or {}
    rates = {tier: measured[tier][0] if tier in measured else prior for tier in tiers}
    sources = {tier: measured[tier][1] if tier in measured else "prior" for tier in tiers}
    return Economics(rates, sources, contact_cost, precision_floor, min_evidence)


class SettingError(ValueError):
    """A recommendation setting out of its range; ``setting`` names the parameter."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


def check(
    *,
    winback_rate: float = DEFAULT_WINBACK_PRIOR,
    contact_cost: float = 0.0,
    precision_floor: float = DEFAULT_PRECISION_FLOOR,
    min_evidence: int = DEFAULT_MIN_EVIDENCE,
) -> None:
    """Raise :class:`SettingError` (a one-line message) for the first setting out of range."""
    if not 0.0 <= precision_floor <= 1.0:
        raise SettingError(
            "precision_floor",
            f"the precision floor is a share from 0 to 1 (got {precision_floor:g})",
        )
    if not 0.0 <= winback_rate <= 1.0:
        raise SettingError(
            "winback_rate", f"the win-back rate is a share from 0 to 1 (got {winback_rate:g})"
        )
    if not (math.isfinite(contact_cost) and contact_cost >= 0.0):
        raise SettingError(
            "contact_cost", f"the contact cost is an amount of 0 or more (got {contact_cost:g})"
        )
    if min_evidence < 1:
        raise SettingError(
            "min_evidence", f"the evidence needed is at least 1 judged alert (got {min_evidence})"
        )


def choose(
    options: Sequence[Sequence[T]],
    capacity_per_day: float,
    per_day: Callable[[T], float],
    value: Callable[[T], float],
    allowed: Callable[[tuple[T, ...]], bool] | None = None,
) -> tuple[tuple[T, ...], float, float, bool] | None:
    """One option per tier: the most value with alerts per day within capacity.

    Ties go to fewer alerts. Only combinations ``allowed`` passes count, if it
    is given. Returns the combination, its alerts per day, its value and whether
    it fits; when nothing fits, the combination with the fewest alerts and
    ``False``; ``None`` when no combination is allowed.
    """
    best: tuple[float, float, tuple[T, ...]] | None = None
    fewest: tuple[float, float, tuple[T, ...]] | None = None
    for combo in itertools.product(*options):
        if allowed is not None and not allowed(combo):
            continue
        load = sum(per_day(o) for o in combo)
        worth = sum(value(o) for o in combo)
        if fewest is None or load < fewest[0]:
            fewest = (load, worth, combo)
        if load <= capacity_per_day and (best is None or (worth, -load) > (best[1], -best[0])):
            best = (load, worth, combo)
    chosen, fits = (best, True) if best is not None else (fewest, False)
    if chosen is None:
        return None
    return chosen[2], chosen[0], chosen[1], fits


@dataclass(frozen=True)
class Point:
    """One candidate threshold of a tier on the trade-off curve."""

    watch: float
    alerts_per_day: float
    precision: float | None
    net_value: float
    above_floor: bool
    judged: int = 0
    confirmed: int = 0
    #: judged on at least the minimum evidence
    trusted: bool = True


def pooled_precision(points: Sequence[Point]) -> float | None:
    """The precision of the points' alerts together: confirmed over judged, summed."""
    judged = sum(p.judged for p in points)
    return sum(p.confirmed for p in points) / judged if judged else None


@dataclass(frozen=True)
class ValuePlan:
    """The thresholds that save the most, and the evidence for them."""

    watch: Mapping[str, float]
    alerts_per_day: float
    net_value: float
    current_net_value: float
    #: whether the chosen thresholds stay within capacity
    fits: bool
    #: tier -> why it keeps its current thresholds
    held: Mapping[str, str]
    #: tier -> every candidate, in threshold order
    curve: Mapping[str, list[Point]] = field(default_factory=dict)
    #: the precision of the chosen candidates' alerts pooled over the tiers
    overall_precision: float | None = None
    #: why the overall precision is below the floor; ``None`` when it reaches it
    overall_short: str | None = None


def plan(
    sweep: Mapping[str, Sequence[tuple[float, Judged]]],
    current_watch: Mapping[str, float],
    capacity_per_day: float,
    econ: Economics,
    rejected: Sequence[Mapping[str, float]] = (),
    tier_capacity: Mapping[str, float] | None = None,
) -> ValuePlan:
    """Choose one ``watch`` per tier: most expected net value within capacity and the floor.

    The floor holds per tier and for the chosen alerts of all tiers together;
    combinations in ``rejected`` (tier -> watch) are passed over. Ties go to
    fewer alerts (see :func:`choose`), then to the stricter thresholds. A tier
    with its own capacity in ``tier_capacity`` keeps within it too; when no
    candidate of the tier does, its quietest is taken and the plan does not fit.
    """
    tiers = list(sweep)
    curve = {tier: _points(tier, sweep[tier], econ) for tier in tiers}
    options: dict[str, list[Point]] = {}
    held: dict[str, str] = {}
    over: list[str] = []
    for tier in tiers:
        now = next(p for p in curve[tier] if p.watch == current_watch[tier])
        eligible = [p for p in curve[tier] if p.above_floor and p.trusted]
        options[tier] = eligible or [now]
        if not eligible:
            held[tier] = _why_held(curve[tier], econ)
        cap = (tier_capacity or {}).get(tier)
        if cap is not None and eligible:
            within = [p for p in eligible if p.alerts_per_day <= cap]
            options[tier] = within or [min(eligible, key=_per_day)]
            over.extend(() if within else [tier])
    current_value = sum(
        next(p.net_value for p in curve[t] if p.watch == current_watch[t]) for t in tiers
    )
    passed_over = {tuple(r[t] for t in tiers) for r in rejected}

    def allowed(combo: tuple[Point, ...]) -> bool:
        overall = pooled_precision(combo)
        floor_ok = overall is None or overall >= econ.precision_floor
        return floor_ok and tuple(p.watch for p in combo) not in passed_over

    # strictest first: a full tie (same alerts, same value) goes to the stricter threshold,
    # which raises those alerts now and no more on a later, noisier history
    ordered = [sorted(options[t], key=lambda p: -p.watch) for t in tiers]
    chosen = choose(ordered, capacity_per_day, _per_day, _net, allowed)
    short = None
    if chosen is None:
        # no combination reaches the floor overall: say so, and choose as per tier
        chosen = choose(ordered, capacity_per_day, _per_day, _net)
        short = _why_short(ordered, econ.precision_floor)
    assert chosen is not None, "no options to choose from"
    combo, per_day, value, fits = chosen
    return ValuePlan(
        watch={t: p.watch for t, p in zip(tiers, combo, strict=True)},
        alerts_per_day=per_day,
        net_value=value,
        current_net_value=current_value,
        fits=fits and not over,
        held=held,
        curve=curve,
        overall_precision=pooled_precision(combo),
        overall_short=short,
    )


def _per_day(p: Point) -> float:
    return p.alerts_per_day


def _net(p: Point) -> float:
    return p.net_value


def _points(tier: str, rows: Sequence[tuple[float, Judged]], econ: Economics) -> list[Point]:
    """The tier's candidates as points of the trade-off curve."""
    return [
        Point(
            watch,
            m.alerts_per_day,
            m.precision,
            econ.net_value(tier, m),
            m.precision is not None and m.precision >= econ.precision_floor,
            m.judged,
            m.confirmed,
            m.judged >= econ.min_evidence,
        )
        for watch, m in rows
    ]


def _why_held(points: Sequence[Point], econ: Economics) -> str:
    """Why no candidate of a tier can be recommended."""
    most = max((p.judged for p in points), default=0)
    if most == 0:
        return "no alert of this tier could be judged (none raised, or none whose horizon passed)"
    trusted = [p for p in points if p.trusted and p.precision is not None]
    if not trusted:
        return (
            f"not enough evidence ({most} alert{'' if most == 1 else 's'}): a threshold needs "
            f"{econ.min_evidence} judged alerts"
        )
    best = max(trusted, key=lambda p: p.precision or 0.0)
    why = (
        f"no threshold reaches the {econ.precision_floor:.0%} precision floor "
        f"(best {best.precision:.1%} at watch {best.watch:.2f})"
    )
    if any(p.above_floor and not p.trusted for p in points):
        why += f"; thresholds judged on fewer than {econ.min_evidence} alerts do not count"
    return why


def _why_short(options: Sequence[Sequence[Point]], floor: float) -> str:
    """Why the floor cannot hold for all tiers together, with the best that can be had."""
    best = max(pooled_precision(combo) or 0.0 for combo in itertools.product(*options))
    why = f"no combination of thresholds keeps all tiers' alerts together at the {floor:.0%} floor"
    if best < floor:
        return f"{why} (best {best:.1%})"
    # the sweep's per-tier figures reached it, but not the thresholds replayed together
    return f"{why}: those whose per-tier figures reach it fall below it when replayed together"
