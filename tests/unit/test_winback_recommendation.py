"""winback report's recommendation: the action to adopt per reason and tier, as TOML."""

from __future__ import annotations

import tomllib
from pathlib import Path

from churnwatch.alerts.config import DEFAULT_PLAYBOOK, HOLDOUT, load_playbook
from churnwatch.winback.report import uplift_tables
from churnwatch.winback.uplift import Case

CALL = "personal call with a price match"
ALTERNATIVE = f"""
[[competitor.general.alternatives]]
action = "{CALL}"
channel = "phone"
priority = 2
due_hours = 48
owner_queue = "offers"
"""


def _cases(action: str, n: int, returned: int) -> list[Case]:
    return [
        Case("competitor", "general", action, i < returned, action != HOLDOUT) for i in range(n)
    ]


def test_the_action_with_the_best_proven_uplift_is_recommended_with_its_toml(
    tmp_path: Path,
) -> None:
    path = tmp_path / "playbook.toml"
    path.write_text(DEFAULT_PLAYBOOK.read_text() + ALTERNATIVE)
    playbook = load_playbook(path)
    cases = (
        _cases("promotional coupon", 100, 25)  # +5 points over the control: not proven
        + _cases(CALL, 100, 50)  # +30 points
        + _cases(HOLDOUT, 100, 20)
    )
    tables = uplift_tables(cases, min_customers=30, playbook=playbook)
    assert tables["contacts"] == {"settled": 300, "held_out": 100, "contacted": 200}
    uplift = {r["action"]: (r["uplift"], r["evidence"]) for r in tables["uplift_by_tier"]}
    assert uplift == {"promotional coupon": (0.05, "enough"), CALL: (0.3, "enough")}
    (pick,) = tables["recommended_actions"]
    assert (pick["reason"], pick["tier"], pick["action"]) == ("competitor", "general", CALL)
    assert "next best 'promotional coupon'" in pick["why"]
    # the lines to paste make the call the rule's action
    adopted = tomllib.loads(pick["toml"])["competitor"]["general"]
    assert adopted == {
        "action": CALL,
        "channel": "phone",
        "priority": 2,
        "due_hours": 48.0,
        "owner_queue": "offers",
    }
    # a contact that costs more than the call's proven uplift is worth: said so
    costly = uplift_tables(cases, min_customers=30, playbook=playbook, contact_cost=0.5)
    assert "no action is proven to pay for its contact" in costly["recommended_actions"][0]["why"]
