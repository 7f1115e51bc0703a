"""Measured uplift of win-back actions against randomised holdouts.

A return rate per action cannot tell a win-back that worked from a customer who
would have come back anyway. With holdouts (:mod:`churnwatch.winback.holdout`),
the *uplift* of an action is its return rate minus the return rate of
comparable held-out cases, which got no contact:

    uplift = returned_treated / n_treated - returned_control / n_control

**Intention to treat.** A case counts under the action it was *assigned*,
whether or not the CRM reached the customer (``Case.contacted`` is kept, and
never used to drop or move a case). Dropping the cases nobody reached would
compare the reachable treated customers with every control customer, and the
reachable ones come back more often anyway: the uplift would be inflated.

**The interval** of the difference is Newcombe's hybrid score interval (method
10 of Newcombe, *Statistics in Medicine* 17, 873-890, 1998), built on the
Wilson score interval ``(l, u)`` of each rate ``p``:

    low  = d - √((p_t - l_t)² + (u_c - p_c)²)
    high = d + √((u_t - p_t)² + (p_c - l_c)²)

with ``d = p_t - p_c``. It stays within [-1, 1] and keeps its coverage near
95 % for small groups and rates near 0 or 1, where the normal approximation
fails. A rate over no cases is never computed: an empty group has rate ``None``
and its difference no interval.

**The control of a cell** (:func:`estimate`) is the held-out cases that share
the cell's key except the action and the contact delay (holdouts have neither):
for ``("reason", "action")`` the holdouts of that reason, for ``("reason",
"action", "tier")`` those of that reason and tier. The playbook's action is set
per reason *and* tier, so one action is often given in one tier only; its
control is then further limited to the tiers its treated cases come from, or the
control would mix in tiers with other natural return rates and the uplift would
measure the tiers' difference instead of the action's.

A cell's figures are trusted only with at least ``min_customers`` cases in each
group (``Cell.enough``); :func:`recommend` chooses by the lower bound of the
interval, so an action must *prove* its uplift before it replaces another.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from churnwatch.stats import wilson
from churnwatch.winback.holdout import HOLDOUT

#: the fields of a :class:`Case` a cell may be keyed by
KEY_FIELDS = ("reason", "tier", "action", "delay")
#: fields a holdout case does not have: never matched when finding a cell's control
_NOT_IN_CONTROL = ("action", "delay")
#: the key value of a treated case whose contact delay is unknown
UNKNOWN_DELAY = "unknown"


@dataclass(frozen=True)
class Group:
    """Cases and how many of them came back."""

    n: int
    returned: int

    def __post_init__(self) -> None:
        if not 0 <= self.returned <= self.n:
            raise ValueError(f"returned must be from 0 to n (got {self.returned} of {self.n})")

    @property
    def rate(self) -> float | None:
        """The return rate, or ``None`` for an empty group (never a rate over zero)."""
        return self.returned / self.n if self.n else None


def difference_interval(
    treated: Group, control: Group, z: float = 1.96
) -> tuple[float, float, float] | None:
    """``(difference, low, high)``: treated - control return rate and its Newcombe hybrid
    score interval (95 % at ``z=1.96``); ``None`` when either group is empty."""
    p_t, p_c = treated.rate, control.rate
    if p_t is None or p_c is None:
        return None
    l_t, u_t = wilson(treated.returned, treated.n, z)
    l_c, u_c = wilson(control.returned, control.n, z)
    d = p_t - p_c
    low = d - math.sqrt((p_t - l_t) ** 2 + (u_c - p_c) ** 2)
    high = d + math.sqrt((u_t - p_t) ** 2 + (p_c - l_c) ** 2)
    return d, low, high


@dataclass(frozen=True)
class Cell:
    """The measured uplift of one action in one group of cases."""

    #: the values of the ``by`` fields, e.g. (reason, action) or (reason, action, tier)
    key: tuple[str, ...]
    treated: Group
    control: Group
    uplift: float | None
    low: float | None
    high: float | None
    #: both groups hold at least ``min_customers`` cases
    enough: bool
    #: why the figures are not to be trusted yet; empty when they are
    note: str


@dataclass(frozen=True)
class Case:
    """One alerted case, settled: what it was assigned and whether the customer came back."""

    reason: str
    tier: str
    #: the assigned action (intention to treat); :data:`HOLDOUT` for control
    action: str
    returned: bool
    #: the CRM reported it contacted the customer (kept, not used to drop cases)
    contacted: bool
    #: contact-delay bucket, e.g. "<24h"; ``None`` when unknown or held out
    delay: str | None = None


def _value(case: Case, field: str) -> str:
    value = getattr(case, field)
    return UNKNOWN_DELAY if value is None else str(value)


def _count(cases: Iterable[Case]) -> Group:
    n = returned = 0
    for case in cases:
        n += 1
        returned += case.returned
    return Group(n, returned)


def estimate(
    cases: Iterable[Case], by: Sequence[str] = ("reason", "action"), min_customers: int = 30
) -> list[Cell]:
    """One :class:`Cell` per distinct key of the treated cases (action ≠ holdout), by key.

    ``by`` names :class:`Case` fields and must include ``"action"``. Each cell's
    control is the holdout cases sharing its key's fields other than action and delay,
    from the tiers its treated cases come from (see the module's docstring).
    """
    unknown = [f for f in by if f not in KEY_FIELDS]
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; a cell is keyed by {KEY_FIELDS}")
    if "action" not in by:
        raise ValueError("by must include 'action': a cell measures one action")
    matched = [i for i, f in enumerate(by) if f not in _NOT_IN_CONTROL]

    treated: dict[tuple[str, ...], list[Case]] = defaultdict(list)
    # holdouts by (control key, tier), so a cell can take the tiers it needs
    held: dict[tuple[tuple[str, ...], str], list[Case]] = defaultdict(list)
    for case in cases:
        if case.action == HOLDOUT:
            held[tuple(_value(case, by[i]) for i in matched), case.tier].append(case)
        else:
            treated[tuple(_value(case, f) for f in by)].append(case)

    cells = []
    for key in sorted(treated):
        members = treated[key]
        control_key = tuple(key[i] for i in matched)
        tiers = sorted({case.tier for case in members})
        t = _count(members)
        c = _count(case for tier in tiers for case in held.get((control_key, tier), ()))
        interval = difference_interval(t, c)
        uplift, low, high = interval if interval is not None else (None, None, None)
        enough = t.n >= min_customers and c.n >= min_customers
        note = (
            ""
            if enough
            else f"not enough evidence ({t.n} treated, {c.n} control; needs {min_customers} each)"
        )
        cells.append(Cell(key, t, c, uplift, low, high, enough, note))
    return cells


def effective_size(cell: Cell) -> float:
    """``n_t · n_c / (n_t + n_c)``: the size of one group with the evidence of the two.

    The variance of a difference of two rates is about ``p(1 - p)(1/n_t + 1/n_c)``,
    that of one rate over this many cases; it is half the harmonic mean of the two
    sizes, dominated by the smaller group (0 when either is empty).
    """
    n_t, n_c = cell.treated.n, cell.control.n
    return n_t * n_c / (n_t + n_c) if n_t and n_c else 0.0


def shrunk(cell: Cell, prior: float, strength: float = 50.0) -> float:
    """The cell's uplift pulled toward ``prior`` (a prior uplift), by how much it proves.

    ``(n_eff · uplift + strength · prior) / (n_eff + strength)``, with ``n_eff`` the
    :func:`effective_size` of the two groups: ``strength`` is how many cases the prior
    is worth. A small cell stays near the prior, a large one near its own figure; a
    cell with no uplift (an empty group) is the prior.
    """
    if cell.uplift is None:
        return prior
    n_eff = effective_size(cell)
    return (n_eff * cell.uplift + strength * prior) / (n_eff + strength)


def _cost_of(cost: Mapping[str, float] | float, action: str) -> float:
    if isinstance(cost, Mapping):
        if action not in cost:
            raise ValueError(f"no cost given for action {action!r}")
        return float(cost[action])
    return float(cost)


def recommend(
    cells: Sequence[Cell], cost: Mapping[str, float] | float = 0.0, value: float = 1.0
) -> dict[tuple[str, ...], tuple[str, str]]:
    """Per group, the action whose *proven* uplift pays most per contact, and why.

    Cells are keyed (reason, action) or (reason, action, tier); a group is the key
    without its action, (reason,) or (reason, tier). Among the group's cells with
    enough evidence, the action maximising ``value · low - cost[action]`` wins, where
    ``low`` is the **lower bound** of the uplift's 95 % interval (not the estimate),
    so a large, well-measured uplift beats a small group's lucky one. ``cost`` is one
    figure for every action or one per action, in the same unit as ``value`` (the
    worth of a customer who comes back). Groups with no cell of enough evidence are
    left out; ties go to the earlier cell (in key order, as :func:`estimate` gives them).
    """
    scored: dict[tuple[str, ...], list[tuple[float, Cell]]] = defaultdict(list)
    for cell in cells:
        if not cell.enough or cell.low is None:
            continue
        action = cell.key[1]
        scored[(cell.key[0], *cell.key[2:])].append(
            (value * cell.low - _cost_of(cost, action), cell)
        )
    out: dict[tuple[str, ...], tuple[str, str]] = {}
    for group in sorted(scored):
        ranked = sorted(scored[group], key=lambda pair: -pair[0])  # stable: ties by key
        score, best = ranked[0]
        action = best.key[1]
        why = (
            f"uplift {best.uplift:+.1%} (95 % CI {best.low:+.1%} to {best.high:+.1%}; "
            f"{best.treated.n} treated, {best.control.n} control): "
            f"{score:+.3f} per contact at its lower bound "
            f"({value:g} x {best.low:+.3f} - cost {_cost_of(cost, action):.3f})"
        )
        if len(ranked) > 1:
            why += f"; next best {ranked[1][1].key[1]!r} at {ranked[1][0]:+.3f}"
        else:
            why += "; the only action with enough evidence"
        if score <= 0:
            why += "; no action is proven to pay for its contact"
        out[group] = (action, why)
    return out
