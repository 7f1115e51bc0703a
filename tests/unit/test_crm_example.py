"""The example CRM playing the simulated customers: who a contact truly wins back."""

from __future__ import annotations

import math

from churnwatch.events import parse_object
from churnwatch.sim import winback_truth
from examples.crm_client import won_back_by_contact


def _task(n: int, reason: str, tier: str, action: str) -> dict:
    return {
        "task_id": f"task-{n}",
        "customer_id": f"c{n}",
        "ts": "2026-03-01T10:00:00+00:00",
        "reason": reason,
        "value_tier": tier,
        "action": action,
    }


def test_a_contact_wins_back_the_share_its_true_uplift_adds() -> None:
    reason, tier, action = "competitor", "general", winback_truth.DISCOUNT
    share = winback_truth.uplift(reason, tier, action) / (1 - winback_truth.NATURAL[reason][tier])
    n = 20_000
    played = [won_back_by_contact(_task(i, reason, tier, action)) for i in range(n)]
    won = sum(p is not None for p in played)
    assert abs(won - n * share) < 4 * math.sqrt(n * share * (1 - share))
    # each is a valid purchase two days after the task, once per task
    first = next(p for p in played if p is not None)
    assert parse_object("purchases", first).ts.isoformat() == "2026-03-03T10:00:00+00:00"
    assert len({p["event_id"] for p in played if p is not None}) == won


def test_a_useless_or_harmful_or_unknown_action_wins_nobody_back() -> None:
    for action in (winback_truth.TICKET_REMINDER, "an action nobody simulated"):
        tasks = [_task(i, "communication", "general", action) for i in range(2_000)]
        assert all(won_back_by_contact(t) is None for t in tasks)
    # a discount does nothing for a customer who left over poor service
    tasks = [_task(i, "service_quality", "general", winback_truth.DISCOUNT) for i in range(2_000)]
    assert all(won_back_by_contact(t) is None for t in tasks)
