"""Which thresholds pay: expected net value saved, within capacity, above a precision floor.

Plain Python over the backtest's sweep. For a tier's candidate ``watch``
threshold the expected net value saved is

    win-back rate x value of the churns its alerts caught - contact cost x alerts

The value of a churn is what the backtest puts at risk: the customer's net
spend in the year before their last purchase. The win-back rate is the one
measured from the CRM's reports (``winback_effectiveness``, tasks of the tier)
once at least :data:`MIN_MEASURED_TASKS` of them are settled, and otherwise the
documented prior :data:`DEFAULT_WINBACK_PRIOR`.

The recommendation picks one candidate per tier: the most expected net value
whose alerts per day, summed over the tiers, stay within capacity and whose
precision (the share of its alerts followed by churn) reaches the floor. A tier
where no candidate reaches the floor keeps its thresholds, and says why.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

#: the share of a tier's alerts that must be followed by churn, by default
DEFAULT_PRECISION_FLOOR = 0.25
#: the win-back rate assumed before outcomes are measured: one contacted churner in five
#: returns, a middle value of what retention programmes report for a first contact
DEFAULT_WINBACK_PRIOR = 0.20
#: settled tasks of a tier before its measured return rate replaces the prior
MIN_MEASURED_TASKS = 20


class Judged(Protocol):
    """What the recommendation reads of a candidate's backtest metrics."""

    alerts: int
    alerts_per_day: float
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

    def net_value(self, tier: str, m: Judged) -> float:
        """Expected net value saved by the alerts ``m`` measured in ``tier``."""
        return self.winback_rate[tier] * m.value_caught - self.contact_cost * m.alerts


def economics(
    tiers: Sequence[str],
    winback_rows: Sequence[Mapping[str, Any]] = (),
    *,
    prior: float = DEFAULT_WINBACK_PRIOR,
    contact_cost: float = 0.0,
    precision_floor: float = DEFAULT_PRECISION_FLOOR,
) -> Economics:
    """Win-back rates per tier from ``winback_effectiveness`` rows, else ``prior``."""
    rates, sources = {}, {}
    for tier in tiers:
        rows = [r for r in winback_rows if r.get("value_tier") == tier]
        tasks = sum(int(r.get("tasks") or 0) for r in rows)
        won = sum(int(r.get("won_back") or 0) for r in rows)
        if tasks >= MIN_MEASURED_TASKS:
            rates[tier], sources[tier] = won / tasks, f"measured ({tasks} tasks)"
        else:
            rates[tier], sources[tier] = prior, "prior"
    return Economics(rates, sources, contact_cost, precision_floor)


def choose(
    options: Sequence[Sequence[T]],
    capacity_per_day: float,
    per_day: Callable[[T], float],
    value: Callable[[T], float],
) -> tuple[tuple[T, ...], float, float, bool]:
    """One option per tier: the most value with alerts per day within capacity.

    Ties go to fewer alerts. Returns the combination, its alerts per day, its
    value and whether it fits; when nothing fits, the combination with the
    fewest alerts and ``False``.
    """
    best: tuple[float, float, tuple[T, ...]] | None = None
    fewest: tuple[float, float, tuple[T, ...]] | None = None
    for combo in itertools.product(*options):
        load = sum(per_day(o) for o in combo)
        worth = sum(value(o) for o in combo)
        if fewest is None or load < fewest[0]:
            fewest = (load, worth, combo)
        if load <= capacity_per_day and (best is None or (worth, -load) > (best[1], -best[0])):
            best = (load, worth, combo)
    chosen, fits = (best, True) if best is not None else (fewest, False)
    assert chosen is not None, "no options to choose from"
    return chosen[2], chosen[0], chosen[1], fits


@dataclass(frozen=True)
class Point:
    """One candidate threshold of a tier on the trade-off curve."""

    watch: float
    alerts_per_day: float
    precision: float | None
    net_value: float
    above_floor: bool


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


def plan(
    sweep: Mapping[str, Sequence[tuple[float, Judged]]],
    current_watch: Mapping[str, float],
    capacity_per_day: float,
    econ: Economics,
) -> ValuePlan:
    """Choose one ``watch`` per tier: most expected net value within capacity and the floor.

    Ties go to fewer alerts; see :func:`choose`.
    """
    tiers = list(sweep)
    curve: dict[str, list[Point]] = {}
    options: dict[str, list[Point]] = {}
    held: dict[str, str] = {}
    current_value = 0.0
    for tier in tiers:
        points = [
            Point(
                watch,
                m.alerts_per_day,
                m.precision,
                econ.net_value(tier, m),
                m.precision is not None and m.precision >= econ.precision_floor,
            )
            for watch, m in sweep[tier]
        ]
        curve[tier] = points
        now = next(p for p in points if p.watch == current_watch[tier])
        current_value += now.net_value
        eligible = [p for p in points if p.above_floor]
        if eligible:
            options[tier] = eligible
            continue
        judged = [p for p in points if p.precision is not None]
        if judged:
            best = max(judged, key=lambda p: p.precision)  # type: ignore[arg-type, return-value]
            why = (
                f"no threshold reaches the {econ.precision_floor:.0%} precision floor "
                f"(best {best.precision:.1%} at watch {best.watch:.2f})"
            )
        else:
            why = "no alert of this tier could be judged yet (its horizon has not passed)"
        held[tier] = why
        options[tier] = [now]
    combo, per_day, value, fits = choose(
        [options[t] for t in tiers],
        capacity_per_day,
        lambda p: p.alerts_per_day,
        lambda p: p.net_value,
    )
    return ValuePlan(
        watch={t: p.watch for t, p in zip(tiers, combo, strict=True)},
        alerts_per_day=per_day,
        net_value=value,
        current_net_value=current_value,
        fits=fits,
        held=held,
        curve=curve,
    )
