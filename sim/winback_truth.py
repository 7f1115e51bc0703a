"""The true effects of win-back actions, for simulating holdout experiments that can be graded.

Real data never tells what an action truly did; a simulator that decides every
outcome from a known table does, so the uplift estimates
(:mod:`churnwatch.winback.uplift`) can be checked against the truth
(``python -m bench.winback``).

For each churn reason and value tier the table has a **natural return rate**: the
share of alerted customers who come back within the win-back window with no
contact at all (the held-out cases). Each action adds a **true uplift** on top
of it, for every reason and tier, whether or not the playbook gives it there:

- the default playbook's twelve actions (``alerts/playbook.toml``), each strong
  on the reason it was written for and weak or useless on others;
- the alternatives tested beside them (:data:`ALTERNATIVES`): a discount code
  (helps against a competitor, does nothing for poor service), a retention call
  with a price match (helps, but costs more than it brings back), a catalogue of
  new categories (the best answer to changed needs) and a reminder e-mail about
  open tickets (makes communication churners *less* likely to return).

An action's uplift is its base effect on the reason (:data:`_BASE`, for the
potential tier) times the tier's :data:`TIER_FACTOR`: high-value customers answer
more strongly to the same action. :data:`COST` is each action's cost per contact
in the worth of one customer won back (so an action pays when its uplift is
above its cost). :func:`returns` decides one outcome from a uniform draw, so a
caller with a seeded generator gets the same outcomes every run.
"""

from __future__ import annotations

from functools import cache

from churnwatch.alerts.config import Playbook, load_playbook
from churnwatch.models.reasons import REASONS
from churnwatch.winback.holdout import HOLDOUT

#: share of alerted cases per tier: alerts favour high value (its thresholds are lower)
TIER_MIX = {"high": 0.25, "potential": 0.35, "general": 0.40}

#: natural return rate (no contact) per reason and tier
NATURAL: dict[str, dict[str, float]] = {
    "service_quality": {"high": 0.22, "potential": 0.16, "general": 0.10},
    "competitor": {"high": 0.15, "potential": 0.10, "general": 0.07},
    "needs_changed": {"high": 0.12, "potential": 0.08, "general": 0.05},
    "communication": {"high": 0.25, "potential": 0.18, "general": 0.12},
}

#: how strongly each tier answers to an action, times the base effect
TIER_FACTOR = {"high": 1.2, "potential": 1.0, "general": 0.8}

DISCOUNT = "discount code by email"
PRICE_MATCH_CALL = "retention call with a price match"
CATALOGUE = "catalogue of new categories by email"
TICKET_REMINDER = "reminder email about open tickets"

#: the alternatives tested beside the playbook's action, per reason
ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "service_quality": (DISCOUNT,),
    "competitor": (DISCOUNT, PRICE_MATCH_CALL),
    "needs_changed": (CATALOGUE,),
    "communication": (TICKET_REMINDER,),
}

# base uplift (potential tier) on (service_quality, competitor, needs_changed,
# communication), and cost per contact; the playbook's actions by their place in it
_PLAYBOOK_EFFECT: dict[tuple[str, str], tuple[tuple[float, float, float, float], float]] = {
    ("service_quality", "high"): ((0.16, 0.04, 0.02, 0.08), 0.12),
    ("service_quality", "potential"): ((0.14, 0.04, 0.00, 0.06), 0.04),
    ("service_quality", "general"): ((0.05, 0.00, 0.00, 0.02), 0.005),
    ("competitor", "high"): ((0.03, 0.15, 0.04, 0.03), 0.12),
    ("competitor", "potential"): ((0.00, 0.08, 0.02, 0.00), 0.03),
    ("competitor", "general"): ((0.00, 0.05, 0.01, 0.00), 0.02),
    ("needs_changed", "high"): ((0.04, 0.03, 0.14, 0.05), 0.12),
    ("needs_changed", "potential"): ((0.00, 0.00, 0.07, 0.00), 0.005),
    ("needs_changed", "general"): ((0.00, 0.00, 0.03, -0.02), 0.002),
    ("communication", "high"): ((0.06, 0.02, 0.04, 0.18), 0.12),
    ("communication", "potential"): ((0.04, 0.00, 0.00, 0.13), 0.01),
    ("communication", "general"): ((0.03, 0.00, 0.00, 0.08), 0.005),
}
_ALTERNATIVE_EFFECT: dict[str, tuple[tuple[float, float, float, float], float]] = {
    DISCOUNT: ((0.00, 0.10, 0.01, 0.00), 0.03),
    PRICE_MATCH_CALL: ((0.05, 0.08, 0.02, 0.04), 0.15),
    CATALOGUE: ((0.00, 0.00, 0.12, 0.00), 0.005),
    TICKET_REMINDER: ((0.00, 0.00, 0.00, -0.04), 0.002),
}


@cache
def _playbook() -> Playbook:
    """The default playbook, read once."""
    return load_playbook()


@cache
def _tables() -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Base effect per action and reason, and cost per action, with the default
    playbook's action names."""
    playbook = _playbook()
    base: dict[str, dict[str, float]] = {}
    cost: dict[str, float] = {}
    slots = {
        playbook.action_for(reason, tier).action: effect
        for (reason, tier), effect in _PLAYBOOK_EFFECT.items()
    }
    for action, (effects, price) in {**slots, **_ALTERNATIVE_EFFECT}.items():
        base[action] = dict(zip(REASONS, effects, strict=True))
        cost[action] = price
    return base, cost


def actions() -> tuple[str, ...]:
    """Every action the table knows: the default playbook's, then the alternatives."""
    return tuple(_tables()[0])


def cost() -> dict[str, float]:
    """Each action's cost per contact, in the worth of one customer won back."""
    return dict(_tables()[1])


def arms(reason: str, tier: str) -> list[str]:
    """The actions tested for a case: the default playbook's for ``reason`` and ``tier``
    first, then the reason's :data:`ALTERNATIVES`."""
    return [_playbook().action_for(reason, tier).action, *ALTERNATIVES[reason]]


def uplift(reason: str, tier: str, action: str) -> float:
    """The true uplift of ``action`` on a case of ``reason`` and ``tier`` (0 for holdout)."""
    if action == HOLDOUT:
        return 0.0
    return _tables()[0][action][reason] * TIER_FACTOR[tier]


def return_rate(reason: str, tier: str, action: str) -> float:
    """The true chance that such a case comes back: natural rate plus uplift."""
    return min(1.0, max(0.0, NATURAL[reason][tier] + uplift(reason, tier, action)))


def returns(case_key: tuple[str, str, str], u: float) -> bool:
    """Whether a case of ``(reason, tier, action)`` comes back, given a uniform draw ``u``
    in [0, 1): the same draw always gives the same outcome."""
    reason, tier, action = case_key
    return u < return_rate(reason, tier, action)
