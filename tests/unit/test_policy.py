"""The alert policy rules, the config files that set them, and win-back tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from churnwatch.alerts.config import (
    DEFAULT_PLAYBOOK,
    DEFAULT_POLICY,
    HOLDOUT,
    ConfigError,
    load_playbook,
    load_policy,
)
from churnwatch.alerts.policy import AlertState, decide, opened, settle
from churnwatch.features.state import DAY_S
from churnwatch.winback.tasks import build_task, task_id

POLICY = load_policy()  # thresholds high 0.35/0.55/0.75, potential 0.4/…, general 0.45/…
DAY = DAY_S


def raise_at(state: AlertState, tier: str, score: float, day: float) -> str | None:
    level = decide(state, POLICY, tier, score, day * DAY)
    if level is not None:
        opened(state, f"a{day}", level, day * DAY)
    return level


@pytest.mark.parametrize(
    ("tier", "score", "level"),
    [
        ("high", 0.34, None),
        ("high", 0.35, "watch"),
        ("high", 0.55, "high"),
        ("high", 0.75, "critical"),
        ("potential", 0.39, None),
        ("potential", 0.4, "watch"),
        ("general", 0.44, None),
        ("general", 0.45, "watch"),
        ("general", 0.84, "high"),
        ("general", 0.85, "critical"),
    ],
)
def test_thresholds_depend_on_the_value_tier(tier: str, score: float, level: str | None) -> None:
    assert raise_at(AlertState(), tier, score, 0) == level


def test_one_open_alert_per_level_and_escalation_ends_the_lower_one() -> None:
    state = AlertState()
    assert raise_at(state, "potential", 0.45, 0) == "watch"
    assert raise_at(state, "potential", 0.5, 1) is None  # still open at watch
    assert raise_at(state, "potential", 0.2, 2) is None  # the risk fell: still open
    level = decide(state, POLICY, "potential", 0.65, 3 * DAY)
    assert level == "high"
    ending = opened(state, "a3", level, 3 * DAY)
    assert (ending.alert_id, ending.status, ending.at) == ("a0", "escalated", 3 * DAY)
    assert (state.open_id, state.open_level) == ("a3", "high")


def test_a_purchase_within_the_window_wins_the_customer_back() -> None:
    state = AlertState()
    raise_at(state, "general", 0.5, 10)
    state.note_purchase(9 * DAY)  # bought before the alert: no return
    assert settle(state, POLICY, at=12 * DAY) is None
    state.note_purchase(27 * DAY)
    state.note_purchase(25 * DAY)  # arrives late: the first return counts
    ending = settle(state, POLICY, at=27 * DAY)
    assert (ending.alert_id, ending.status, ending.at) == ("a10", "won_back", 25 * DAY)
    assert state.open_id is None


def test_an_open_alert_expires_after_expire_days_even_if_seen_later() -> None:
    state = AlertState()
    raise_at(state, "general", 0.5, 10)
    assert settle(state, POLICY, at=39.9 * DAY) is None
    ending = settle(state, POLICY, at=70 * DAY)  # assessed long after
    assert (ending.status, ending.at) == ("expired", 40 * DAY)
    # a purchase after the expiry is no win-back of the expired alert
    state2 = AlertState()
    raise_at(state2, "general", 0.5, 10)
    state2.note_purchase(41 * DAY)
    assert settle(state2, POLICY, at=41 * DAY).status == "expired"


def test_cooldown_holds_same_or_lower_levels_but_not_escalation() -> None:
    state = AlertState()
    raise_at(state, "potential", 0.65, 0)  # high
    state.note_purchase(2 * DAY)
    assert settle(state, POLICY, at=2 * DAY).status == "won_back"
    assert raise_at(state, "potential", 0.45, 5) is None  # watch within 14 days: held
    assert raise_at(state, "potential", 0.65, 13.9) is None  # high again: held
    assert raise_at(state, "potential", 0.85, 6) == "critical"  # above the last: raised
    state = AlertState()
    raise_at(state, "potential", 0.45, 0)
    state.note_purchase(1 * DAY)
    settle(state, POLICY, at=1 * DAY)
    assert raise_at(state, "potential", 0.45, 14) == "watch"  # cooldown over


def test_a_case_opens_with_an_alert_keeps_its_escalations_and_ends_with_them() -> None:
    state = AlertState()
    raise_at(state, "potential", 0.45, 0)  # watch: opens case a0
    assert state.case_id == "a0"
    raise_at(state, "potential", 0.65, 3)  # escalated to high: the same case
    raise_at(state, "potential", 0.85, 4)  # and to critical
    assert (state.open_id, state.case_id) == ("a4", "a0")
    state.note_purchase(5 * DAY)
    assert settle(state, POLICY, at=5 * DAY).alert_id == "a4"  # the case ends won back
    # the next alert, once the cooldown is over, opens a new case
    assert raise_at(state, "potential", 0.9, 30) == "critical"
    assert (state.open_id, state.case_id) == ("a30", "a30")
    # stored and read back, with a state stored before cases: its open alert is its case
    assert AlertState.from_list(state.to_list()) == state
    old = ["a7", "watch", 7 * DAY, 7 * DAY, "watch", None]
    assert AlertState.from_list(old).case_id == "a7"
    assert AlertState.from_list(None) == AlertState()


def test_tasks_follow_the_playbook_with_a_deterministic_id() -> None:
    alert = {
        "alert_id": "a-1",
        "case_id": "a-0",
        "customer_id": "c1",
        "ts": "2026-03-01T10:00:00+00:00",
        "reason": "competitor",
        "value_tier": "high",
        "segments": {"region": "west"},
        "risk_level": "high",
    }
    task = build_task(alert, load_playbook())
    assert task == {
        "task_id": task_id("a-1"),
        "alert_id": "a-1",
        "case_id": "a-0",
        "customer_id": "c1",
        "ts": "2026-03-01T10:00:00+00:00",
        "action": "account manager offer: price match and a custom bundle",
        "channel": "phone",
        "priority": 1,
        "due_by": "2026-03-02T10:00:00+00:00",
        "owner_queue": "key-accounts",
        "reason": "competitor",
        "value_tier": "high",
        "segments": {"region": "west"},
        "risk_level": "high",
    }
    assert task_id("a-1") == build_task(alert, load_playbook())["task_id"] != task_id("a-2")


def test_the_strongest_action_goes_to_high_value_customers() -> None:
    playbook = load_playbook()
    for reason in ("service_quality", "competitor", "needs_changed", "communication"):
        ranks = [playbook.action_for(reason, t).priority for t in ("high", "potential", "general")]
        assert ranks == sorted(ranks) and ranks[0] == 1


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "file.toml"
    path.write_text(text)
    return path


GOOD_POLICY = """
cooldown_days = 14
expire_days = 30
winback_window_days = 30
[thresholds.high]
watch = 0.35
high = 0.55
critical = 0.75
[thresholds.potential]
watch = 0.4
high = 0.6
critical = 0.8
[thresholds.general]
watch = 0.45
high = 0.65
critical = 0.85
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("watch = 0.35", "watch = 0.6"), "thresholds.high: Value error, thresholds must rise"),
        (("expire_days = 30", "expire_days = -1"), "expire_days: Input should be greater than 0"),
        (("cooldown_days = 14", "cooldown_days = 'soon'"), "cooldown_days: Input should be"),
        (("[thresholds.general]", "[thresholds.gold]"), "thresholds.gold"),
        (("winback_window_days = 30", "winback_days = 30"), "winback_window_days: Field required"),
        (("critical = 0.75", "critical = 1.5"), "critical: Input should be less than or equal"),
        (("[thresholds.high]", "[thresholds.high"), "not valid TOML"),
    ],
)
def test_a_bad_policy_file_says_what_is_wrong(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = _write(tmp_path, GOOD_POLICY.replace(*change, 1))
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)


def test_the_good_policy_and_missing_files() -> None:
    assert load_policy().expire_days == 30 and load_policy(DEFAULT_POLICY) == load_policy()
    with pytest.raises(ConfigError, match="no such file"):
        load_policy(Path("/nonexistent/policy.toml"))


def test_a_playbook_with_a_hole_or_a_typo_is_refused(tmp_path: Path) -> None:
    text = DEFAULT_PLAYBOOK.read_text()
    holed = text.replace("[competitor.general]", "[competitor.generic]")
    with pytest.raises(ConfigError) as caught:
        load_playbook(_write(tmp_path, holed))
    assert "no action for: competitor.general" in str(caught.value)
    typo = text.replace('channel = "sms"', 'channel = "pigeon"')
    with pytest.raises(ConfigError) as caught:
        load_playbook(_write(tmp_path, typo))
    assert "communication.potential.channel: Input should be" in str(caught.value)


SEGMENT_RULES = """
[[segment_thresholds]]
region = "north"
tier = "high"
watch = 0.2
high = 0.3
critical = 0.4

[[segment_thresholds]]
region = "north"
watch = 0.5
high = 0.6
critical = 0.7

[[segment_thresholds]]
channel = "offline"
watch = 0.8
high = 0.9
critical = 0.95
"""


def test_segment_thresholds_win_over_the_tier_and_the_first_rule_that_applies_wins(
    tmp_path: Path,
) -> None:
    policy = load_policy(_write(tmp_path, GOOD_POLICY + SEGMENT_RULES))
    north = {"region": "north", "channel": "offline"}
    # the rule for the north's high tier, listed first, wins over the north's and offline's
    assert policy.thresholds_for("high", north).watch == 0.2
    assert policy.thresholds_for("general", north).watch == 0.5
    assert policy.thresholds_for("general", {"region": "south", "channel": "offline"}).watch == 0.8
    # no rule applies, or no segments known: the tier's
    assert policy.thresholds_for("general", {"region": "south"}) == policy.thresholds["general"]
    assert policy.thresholds_for("general", None) == policy.thresholds["general"]
    state = AlertState()
    assert decide(state, policy, "general", 0.5, 0.0, north) == "watch"
    assert decide(state, policy, "general", 0.5, 0.0, {"region": "south"}) == "watch"
    assert decide(state, policy, "general", 0.46, 0.0, north) is None


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("watch = 0.5\nhigh = 0.6\ncritical = 0.7", "name exactly one of region, industry"),
        ('region = "n"\nchannel = "x"\nwatch = 0.5\nhigh = 0.6\ncritical = 0.7', "got region, "),
        ('region = "n"\nwatch = 0.7\nhigh = 0.6\ncritical = 0.8', "thresholds must rise"),
        ('region = "n"\ntier = "gold"\nwatch = 0.5\nhigh = 0.6\ncritical = 0.7', "tier: Input"),
        ('planet = "mars"\nwatch = 0.5\nhigh = 0.6\ncritical = 0.7', "planet: Extra inputs"),
    ],
)
def test_a_bad_segment_rule_says_what_is_wrong(tmp_path: Path, rule: str, message: str) -> None:
    path = _write(tmp_path, GOOD_POLICY + "\n[[segment_thresholds]]\n" + rule + "\n")
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert "segment_thresholds.0" in str(caught.value) and message in str(caught.value)


CAPACITY_RULES = """
[[capacity]]
tier = "high"
per_day = 5

[[capacity]]
region = "north"
per_day = 12.5

[[capacity]]
region = "north"
tier = "general"
per_day = 4
"""


def test_capacity_is_set_per_tier_per_segment_or_per_segment_in_a_tier(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, GOOD_POLICY + CAPACITY_RULES))
    assert policy.capacity_for("high") == 5
    assert policy.capacity_for(None, "region", "north") == 12.5
    assert policy.capacity_for("general", "region", "north") == 4
    # only the exact scope: the north's high tier has none of its own
    assert policy.capacity_for("high", "region", "north") is None
    assert policy.capacity_for("general") is None


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("per_day = 5", "name a tier, one of region, industry, channel, segment, or both"),
        ('region = "n"\nchannel = "x"\nper_day = 5', "(got region, channel)"),
        ('tier = "high"\nper_day = 0', "per_day: Input should be greater than 0"),
        ('tier = "gold"\nper_day = 3', "tier: Input should be"),
        ('tier = "high"\nper_day = 3\n\n[[capacity]]\ntier = "high"\nper_day = 4', "twice"),
    ],
)
def test_a_bad_capacity_rule_says_what_is_wrong(tmp_path: Path, rule: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_policy(_write(tmp_path, GOOD_POLICY + "\n[[capacity]]\n" + rule + "\n"))
    assert message in str(caught.value)


HOLDOUT_PLAYBOOK = """
[holdout]
control_share = 0.2
salt = "s1"
tiers = { high = 0.0 }

[competitor.general]
action = "promotional coupon"
channel = "email"
priority = 3
due_hours = 72
owner_queue = "offers"
control_share = 0.5

[[competitor.general.alternatives]]
action = "personal call with a price match"
channel = "phone"
priority = 2
due_hours = 48
owner_queue = "offers"
"""


def _with_holdout(tmp_path: Path, extra: str = "") -> Path:
    rules = DEFAULT_PLAYBOOK.read_text()
    # the default [holdout] table and competitor.general rule give way to those above
    rules = rules[: rules.index("[holdout]")] + rules[rules.index("[service_quality.high]") :]
    start = rules.index("[competitor.general]")
    end = rules.index("[needs_changed.high]")
    return _write(tmp_path, rules[:start] + rules[end:] + HOLDOUT_PLAYBOOK + extra)


def test_the_control_share_of_a_rule_then_its_tier_then_the_default(tmp_path: Path) -> None:
    playbook = load_playbook(_with_holdout(tmp_path))
    assert playbook.holdout.salt == "s1"
    assert playbook.control_share("competitor", "general") == 0.5  # the rule's
    assert playbook.control_share("competitor", "high") == 0.0  # the tier's
    assert playbook.control_share("service_quality", "potential") == 0.2  # the default
    assert [a.action for a in playbook.action_for("competitor", "general").arms] == [
        "promotional coupon",
        "personal call with a price match",
    ]
    # the packaged playbook holds out one case in ten everywhere
    assert load_playbook().control_share("communication", "high") == 0.1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("", None),
        ("\n[holdout.extra]\nx = 1\n", "holdout.extra: Extra inputs are not permitted"),
    ],
)
def test_a_holdout_table_is_validated(tmp_path: Path, extra: str, message: str | None) -> None:
    if message is None:
        load_playbook(_with_holdout(tmp_path, extra))
        return
    with pytest.raises(ConfigError) as caught:
        load_playbook(_with_holdout(tmp_path, extra))
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("control_share = 0.2", "control_share = 1.5", "control_share: Input should be less"),
        ("control_share = 0.5", "control_share = -0.1", "control_share: Input should be greater"),
        ("tiers = { high = 0.0 }", "tiers = { gold = 0.1 }", "tiers.gold"),
        ('"personal call with a price match"', '"promotional coupon"', "listed twice"),
        ('"personal call with a price match"', '"holdout"', "names the control group"),
    ],
)
def test_a_bad_holdout_setting_says_what_is_wrong(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = _with_holdout(tmp_path)
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_playbook(path)
    assert message in str(caught.value)


def test_a_case_is_held_out_or_given_one_of_its_rule_s_actions_and_keeps_it(
    tmp_path: Path,
) -> None:
    playbook = load_playbook(_with_holdout(tmp_path))
    tasks = [
        build_task(
            {
                "alert_id": f"a{n}-{k}",
                "case_id": f"a{n}",
                "customer_id": f"c{n}",
                "ts": "2026-03-01T10:00:00+00:00",
                "reason": "competitor",
                "value_tier": "general",
                "segments": {},
                "risk_level": "watch",
            },
            playbook,
        )
        for n in range(2000)
        for k in range(2)
    ]
    # every alert of a case gets the case's assignment
    assert all(a["action"] == b["action"] for a, b in zip(tasks[::2], tasks[1::2], strict=True))
    cases = tasks[::2]
    held = [t for t in cases if t["action"] == HOLDOUT]
    # half held out (the rule's share), within four standard deviations of 1,000
    assert abs(len(held) - 1000) < 4 * 22.4
    assert {(t["channel"], t["owner_queue"]) for t in held} == {("none", "holdout")}
    calls = [t for t in cases if t["action"] == "personal call with a price match"]
    coupons = [t for t in cases if t["action"] == "promotional coupon"]
    assert len(calls) + len(coupons) + len(held) == 2000
    assert abs(len(calls) - len(coupons)) < 4 * 22.4  # the treated split evenly
    # the alternative's own channel and due time
    assert {(t["channel"], t["due_by"]) for t in calls} == {("phone", "2026-03-03T10:00:00+00:00")}
