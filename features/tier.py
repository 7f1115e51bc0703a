"""Value tier of a customer (DOMAIN.md §1).

Interim rule: fixed cut-offs on net spend to date. Population-relative tiers
that move with the customer base replace it (issue "Customer state").
"""

from __future__ import annotations

from churnwatch.features.state import CustomerState

HIGH_VALUE_MIN_SPEND = 2000.0
POTENTIAL_MIN_SPEND = 500.0


def value_tier(state: CustomerState) -> str:
    """``high``, ``potential`` or ``general`` from net spend to date."""
    if state.monetary_total >= HIGH_VALUE_MIN_SPEND:
        return "high"
    if state.monetary_total >= POTENTIAL_MIN_SPEND:
        return "potential"
    return "general"
