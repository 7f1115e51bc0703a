"""The simulator's true win-back effects: complete, and with the properties the bench needs."""

from __future__ import annotations

import pytest

from churnwatch.alerts.config import load_playbook
from churnwatch.features.tier import TIERS
from churnwatch.models.reasons import REASONS
from churnwatch.sim import winback_truth as truth
from churnwatch.winback.holdout import HOLDOUT

PLAYBOOK = load_playbook()


def test_the_table_is_complete_for_every_reason_tier_and_action() -> None:
    actions = truth.actions()
    assert len(actions) == 16  # the playbook's 12, and 4 alternatives
    assert set(truth.NATURAL) == set(REASONS)
    costs = truth.cost()
    assert set(costs) == set(actions)
    for reason in REASONS:
        assert set(truth.NATURAL[reason]) == set(TIERS)
        assert truth.ALTERNATIVES[reason], reason
        for tier in TIERS:
            assert 0 < truth.NATURAL[reason][tier] < 1
            for action in actions:
                assert 0 <= truth.return_rate(reason, tier, action) <= 1
            assert truth.uplift(reason, tier, HOLDOUT) == 0.0


def test_the_arms_are_the_playbooks_action_then_the_alternatives() -> None:
    for reason in REASONS:
        for tier in TIERS:
            arms = truth.arms(reason, tier)
            assert arms[0] == PLAYBOOK.action_for(reason, tier).action
            assert tuple(arms[1:]) == truth.ALTERNATIVES[reason]
            assert set(arms) <= set(truth.actions())


def test_each_playbook_action_helps_its_own_reason_more_in_the_high_tier() -> None:
    for reason in REASONS:
        for slot in TIERS:
            action = PLAYBOOK.action_for(reason, slot).action
            high, general = (truth.uplift(reason, t, action) for t in ("high", "general"))
            assert high > general > 0, action


def test_the_discount_helps_against_a_competitor_and_does_nothing_for_poor_service() -> None:
    for tier in TIERS:
        assert truth.uplift("competitor", tier, truth.DISCOUNT) > truth.cost()[truth.DISCOUNT]
        assert truth.uplift("service_quality", tier, truth.DISCOUNT) == 0.0


def test_the_price_match_call_helps_but_costs_more_than_it_brings() -> None:
    price = truth.cost()[truth.PRICE_MATCH_CALL]
    for tier in TIERS:
        assert 0 < truth.uplift("competitor", tier, truth.PRICE_MATCH_CALL) < price


def test_the_ticket_reminder_drives_communication_churners_away() -> None:
    for tier in TIERS:
        assert truth.uplift("communication", tier, truth.TICKET_REMINDER) < 0


def test_exact_rates() -> None:
    senior = PLAYBOOK.action_for("service_quality", "high").action
    # natural 0.22, plus 0.16 · 1.2
    assert round(truth.return_rate("service_quality", "high", senior), 6) == 0.412
    # natural 0.12, plus -0.04 · 0.8
    rate = truth.return_rate("communication", "general", truth.TICKET_REMINDER)
    assert round(rate, 6) == 0.088
    assert truth.return_rate("competitor", "high", HOLDOUT) == 0.15


@pytest.mark.parametrize(
    ("key", "u", "back"),
    [
        (("competitor", "high", HOLDOUT), 0.14, True),
        (("competitor", "high", HOLDOUT), 0.16, False),
        # 0.15 + 0.10 · 1.2 = 0.27
        (("competitor", "high", truth.DISCOUNT), 0.26, True),
        (("competitor", "high", truth.DISCOUNT), 0.28, False),
    ],
)
def test_an_outcome_is_decided_by_the_uniform_draw(
    key: tuple[str, str, str], u: float, back: bool
) -> None:
    assert truth.returns(key, u) is back
