"""Holdout assignment: deterministic, the control share kept, the arms uniform."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from churnwatch.winback.holdout import HOLDOUT, assign

ARMS = ("call", "discount", "email")
N = 20_000


def _counts(share: float, salt: str = "exp-2") -> Counter[str]:
    return Counter(assign(f"customer-{i}", f"case-{i}", salt, share, ARMS) for i in range(N))


def _within_3_sd(count: int, n: int, p: float) -> bool:
    return abs(count - n * p) <= 3 * math.sqrt(n * p * (1 - p))


def test_the_same_inputs_give_the_same_action_on_every_machine() -> None:
    # a SHA-256, not Python's salted hash(): these are fixed for good
    got = [assign(f"c{i}", f"k{i}", "exp-2", 0.1, ARMS) for i in range(8)]
    assert got == ["discount", "email", "discount", "email", "email", "call", "call", HOLDOUT]
    assert got == [assign(f"c{i}", f"k{i}", "exp-2", 0.1, ARMS) for i in range(8)]


def test_the_salt_the_customer_and_the_case_all_count() -> None:
    assert assign("customer-7", "case-7", "exp-2", 0.1, ARMS) == HOLDOUT
    assert assign("customer-7", "case-7", "exp-3", 0.1, ARMS) == "discount"
    assert assign("customer-8", "case-8", "exp-2", 0.1, ARMS) == "call"


def test_the_control_share_is_kept_within_binomial_bounds() -> None:
    counts = _counts(0.1)
    assert counts == {"holdout": 2034, "call": 5906, "discount": 5977, "email": 6083}
    # 2,000 expected, sd √(20,000 · 0.1 · 0.9) = 42.4
    assert _within_3_sd(counts[HOLDOUT], N, 0.1)


def test_the_arms_are_equally_likely() -> None:
    counts = _counts(0.1)
    treated = N - counts[HOLDOUT]
    for arm in ARMS:
        # 5,988.7 expected of 17,966, sd 63.2
        assert _within_3_sd(counts[arm], treated, 1 / 3), arm


def test_share_0_holds_nobody_out_and_1_everybody() -> None:
    assert _counts(0.0) == {"call": 6577, "discount": 6643, "email": 6780}
    assert _counts(1.0) == {HOLDOUT: N}


def test_a_larger_control_share_only_moves_cases_into_control() -> None:
    # the arm comes from other bytes of the hash than the holdout draw
    for i in range(2000):
        small = assign(f"customer-{i}", f"case-{i}", "exp-2", 0.05, ARMS)
        large = assign(f"customer-{i}", f"case-{i}", "exp-2", 0.2, ARMS)
        assert large in (small, HOLDOUT)
        if small == HOLDOUT:
            assert large == HOLDOUT


def test_one_arm_is_the_playbook_action_for_every_treated_case() -> None:
    got = {assign(f"customer-{i}", f"case-{i}", "exp-2", 0.1, ["call"]) for i in range(500)}
    assert got == {"call", HOLDOUT}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arms": []}, "at least one action"),
        ({"control_share": -0.1}, "from 0 to 1"),
        ({"control_share": 1.5}, "from 0 to 1"),
        ({"case_id": "a\x1fb"}, "may not contain"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "customer_id": "c1",
        "case_id": "k1",
        "salt": "s",
        "control_share": 0.1,
        "arms": ARMS,
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        assign(**args)  # type: ignore[arg-type]
