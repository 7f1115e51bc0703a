"""Lifecycle stage of a customer (docs/features.md), a pure function of state and time.

    prospect  no purchase yet
    new       first purchase less than NEW_DAYS ago
    active    buying at their usual pace
    won_back  the last purchase ended a gap of at least LAPSED_DAYS, less than
              WON_BACK_DAYS ago
    cooling   no purchase for COOLING days (2x their typical gap, 14-60 days)
    at_risk   no purchase for AT_RISK days (3x their typical gap, 30-75 days)
    lapsed    no purchase for LAPSED_DAYS (the churn horizon)

Because the stage follows from the state and the time alone, time moving on is
enough to change it: :func:`next_change` says when, and :func:`changes_between`
lists the changes a silent customer goes through.
"""

from __future__ import annotations

from typing import Final

from churnwatch.features.state import DAY_S, CustomerState

STAGES = ("prospect", "new", "active", "won_back", "cooling", "at_risk", "lapsed")
NEW_DAYS: Final = 30.0
WON_BACK_DAYS: Final = 30.0
LAPSED_DAYS: Final = 90.0
#: typical gap assumed for a customer with a single purchase
DEFAULT_INTERVAL_DAYS: Final = 30.0
#: (multiple of the typical gap, floor days, cap days); not Final: compiled, mypyc 2.4
#: leaves a Final tuple of floats unset ("value for final name was not set")
COOLING = (2.0, 14.0, 60.0)
AT_RISK = (3.0, 30.0, 75.0)


def typical_interval_days(state: CustomerState) -> float:
    """Mean days between purchases; the default below two purchases."""
    if state.purchase_count < 2 or state.first_purchase_s is None:
        return DEFAULT_INTERVAL_DAYS
    span = state.last_purchase_s - state.first_purchase_s  # type: ignore[operator]
    return span / DAY_S / (state.purchase_count - 1)


def _limit_s(rule: tuple[float, float, float], interval_days: float) -> float:
    factor, floor, cap = rule
    return min(max(factor * interval_days, floor), cap) * DAY_S


def _won_back(state: CustomerState) -> bool:
    prev, last = state.prev_purchase_s, state.last_purchase_s
    return prev is not None and last - prev >= LAPSED_DAYS * DAY_S  # type: ignore[operator]


def stage_at(state: CustomerState, t: float) -> str:
    """The customer's stage at time ``t`` (no earlier than their newest event)."""
    last = state.last_purchase_s
    if last is None:
        return "prospect"
    idle = t - last
    interval = typical_interval_days(state)
    if idle >= LAPSED_DAYS * DAY_S:
        return "lapsed"
    if idle >= _limit_s(AT_RISK, interval):
        return "at_risk"
    if idle >= _limit_s(COOLING, interval):
        return "cooling"
    if _won_back(state) and idle < WON_BACK_DAYS * DAY_S:
        return "won_back"
    if t - state.first_purchase_s < NEW_DAYS * DAY_S:  # type: ignore[operator]
        return "new"
    return "active"


def next_change(state: CustomerState, after: float) -> float | None:
    """The first time after ``after`` at which the stage may change with no new event."""
    last = state.last_purchase_s
    if last is None:
        return None
    interval = typical_interval_days(state)
    edges = [
        last + _limit_s(COOLING, interval),
        last + _limit_s(AT_RISK, interval),
        last + LAPSED_DAYS * DAY_S,
        last + WON_BACK_DAYS * DAY_S,
        state.first_purchase_s + NEW_DAYS * DAY_S,  # type: ignore[operator]
    ]
    upcoming = [edge for edge in edges if edge > after]
    return min(upcoming) if upcoming else None


def changes_between(
    state: CustomerState, stage: str, since: float, until: float
) -> list[tuple[float, str, str]]:
    """``(at, from, to)`` for each stage change in ``(since, until]`` with no new event."""
    out: list[tuple[float, str, str]] = []
    t = since
    while (due := next_change(state, t)) is not None and due <= until:
        new = stage_at(state, due)
        if new != stage:
            out.append((due, stage, new))
            stage = new
        t = due
    return out
