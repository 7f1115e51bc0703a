"""The alert policy and win-back playbook files: loaded once, validated, frozen.

Both are TOML (``alerts/policy.toml``, ``alerts/playbook.toml`` are the
defaults). A bad file stops the start with :class:`ConfigError`, whose message
names the file and every field that is wrong.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from churnwatch.features.segments import SEGMENTS
from churnwatch.features.tier import TIERS
from churnwatch.models.reasons import REASONS

HERE = Path(__file__).parent
DEFAULT_POLICY = HERE / "policy.toml"
DEFAULT_PLAYBOOK = HERE / "playbook.toml"
LEVELS = ("watch", "high", "critical")
#: the action of a held-out case's task: no contact, the control group
HOLDOUT = "holdout"


class ConfigError(ValueError):
    """A policy or playbook file that cannot be used; the message says why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Strict):
    """Minimum score per risk level; each level above the one before."""

    watch: float = Field(gt=0, le=1)
    high: float = Field(gt=0, le=1)
    critical: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _rising(self) -> Thresholds:
        if not self.watch < self.high < self.critical:
            raise ValueError(
                f"thresholds must rise: watch {self.watch} < high {self.high} "
                f"< critical {self.critical}"
            )
        return self

    def level(self, score: float) -> str | None:
        """The strongest level ``score`` reaches, or ``None``."""
        for name in reversed(LEVELS):
            if score >= getattr(self, name):
                return name
        return None


class _Scope(_Strict):
    """Which customers a rule is for: one segment (region, industry, channel or segment),
    one tier, or both."""

    region: str | None = None
    industry: str | None = None
    channel: str | None = None
    segment: str | None = None
    tier: Literal["high", "potential", "general"] | None = None

    def named(self) -> list[str]:
        """The segment dimensions the rule names."""
        return [d for d in SEGMENTS if getattr(self, d) is not None]

    def scope(self) -> tuple[str | None, str | None, str | None]:
        """(dimension, value, tier) of the rule; ``None`` where it names none."""
        named = self.named()
        dimension = named[0] if named else None
        return dimension, getattr(self, dimension) if dimension else None, self.tier

    def applies(self, tier: str, segments: Mapping[str, str | None]) -> bool:
        """Whether a customer of ``tier`` with ``segments`` falls under this rule."""
        if self.tier is not None and self.tier != tier:
            return False
        return any(segments.get(d) == getattr(self, d) for d in self.named())


class SegmentThresholds(Thresholds, _Scope):
    """Thresholds for the customers of one segment, in every tier or in one."""

    @model_validator(mode="after")
    def _one_segment(self) -> SegmentThresholds:
        named = self.named()
        if len(named) != 1:
            raise ValueError(
                f"name exactly one of {', '.join(SEGMENTS)} (got {', '.join(named) or 'none'})"
            )
        return self


class Capacity(_Scope):
    """Alerts a day the retention team can work for one tier, one segment, or one segment
    in one tier. ``replay --capacity`` recommends thresholds within it."""

    per_day: float = Field(gt=0)

    @model_validator(mode="after")
    def _scoped(self) -> Capacity:
        named = self.named()
        if len(named) > 1 or (not named and self.tier is None):
            raise ValueError(
                f"name a tier, one of {', '.join(SEGMENTS)}, or both "
                f"(got {', '.join(named) or 'neither'})"
            )
        return self


class Policy(_Strict):
    """When scores become alerts (see ``alerts/policy.toml``)."""

    cooldown_days: float = Field(ge=0)
    expire_days: float = Field(gt=0)
    winback_window_days: float = Field(gt=0)
    thresholds: dict[Literal["high", "potential", "general"], Thresholds]
    #: per segment, over the tier's thresholds: the first rule that applies wins
    segment_thresholds: tuple[SegmentThresholds, ...] = ()
    #: alerts a day per tier, segment, or segment in a tier (``replay --capacity``)
    capacity: tuple[Capacity, ...] = ()

    @model_validator(mode="after")
    def _every_tier(self) -> Policy:
        missing = [t for t in TIERS if t not in self.thresholds]
        if missing:
            raise ValueError(f"thresholds missing for tier(s): {', '.join(missing)}")
        scopes = [rule.scope() for rule in self.capacity]
        twice = sorted({_scope_words(s) for s in scopes if scopes.count(s) > 1})
        if twice:
            raise ValueError(f"capacity given twice for: {'; '.join(twice)}")
        return self

    def capacity_for(
        self, tier: str | None = None, dimension: str | None = None, value: str | None = None
    ) -> float | None:
        """The capacity of exactly this scope (a tier, a segment, or both), if one is set."""
        for rule in self.capacity:
            if rule.scope() == (dimension, value, tier):
                return rule.per_day
        return None

    def thresholds_for(self, tier: str, segments: Mapping[str, str | None] | None) -> Thresholds:
        """The thresholds of a customer of ``tier`` with ``segments``.

        The first segment rule that applies wins over the tier's thresholds, so a
        rule for a segment in one tier is listed before a rule for the segment in
        every tier.
        """
        if segments is not None:
            for rule in self.segment_thresholds:
                if rule.applies(tier, segments):
                    return rule
        return self.thresholds[tier]  # type: ignore[index]


def _scope_words(scope: tuple[str | None, str | None, str | None]) -> str:
    dimension, value, tier = scope
    words = [f"{dimension} {value}"] if dimension else []
    return " ".join([*words, *([f"tier {tier}"] if tier else [])])


class Step(_Strict):
    """One win-back action: what the CRM is asked to do, how and by when."""

    action: str = Field(min_length=1)
    channel: Literal["phone", "email", "sms", "visit", "chat", "letter"]
    priority: int = Field(ge=1, le=5)
    due_hours: float = Field(gt=0)
    owner_queue: str = Field(min_length=1)


class Action(Step):
    """The playbook's rule for one reason and tier: its action, any alternatives tried
    beside it on an equal share of the cases, and its control share."""

    #: the share of cases held out (no contact); unset: the tier's, else the default
    control_share: float | None = Field(default=None, ge=0, le=1)
    alternatives: tuple[Step, ...] = ()

    @model_validator(mode="after")
    def _distinct(self) -> Action:
        names = [a.action for a in self.arms]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"an action is listed twice: {', '.join(twice)}")
        if HOLDOUT in names:
            raise ValueError(f"{HOLDOUT!r} names the control group, not an action")
        return self

    @property
    def arms(self) -> tuple[Step, ...]:
        """The actions a treated case is assigned among: the rule's own first."""
        return (self, *self.alternatives)


class Holdout(_Strict):
    """The control groups: the share of cases held out of contact, and the salt that
    makes the random assignment reproducible."""

    #: for every rule, unless its tier or the rule itself says otherwise
    control_share: float = Field(default=0.10, ge=0, le=1)
    tiers: dict[Literal["high", "potential", "general"], Annotated[float, Field(ge=0, le=1)]] = {}
    salt: str = Field(default="churnwatch", min_length=1)


class Playbook(_Strict):
    """The action for every churn reason and value tier, and the control groups."""

    actions: dict[str, dict[str, Action]]
    holdout: Holdout = Holdout()

    @model_validator(mode="after")
    def _complete(self) -> Playbook:
        unknown = sorted(set(self.actions) - set(REASONS))
        if unknown:
            raise ValueError(f"unknown reason(s): {', '.join(unknown)}; known: {REASONS}")
        holes = [
            f"{reason}.{tier}"
            for reason in REASONS
            for tier in TIERS
            if tier not in self.actions.get(reason, {})
        ]
        if holes:
            raise ValueError(f"no action for: {', '.join(holes)}")
        extra = [
            f"{reason}.{tier}"
            for reason, tiers in self.actions.items()
            for tier in tiers
            if tier not in TIERS
        ]
        if extra:
            raise ValueError(f"unknown tier(s): {', '.join(extra)}; known: {TIERS}")
        return self

    def action_for(self, reason: str, tier: str) -> Action:
        """The rule for ``reason`` and ``tier``."""
        return self.actions[reason][tier]

    def control_share(self, reason: str, tier: str) -> float:
        """The share of ``reason`` and ``tier``'s cases held out: the rule's, else the
        tier's, else the default."""
        rule = self.action_for(reason, tier).control_share
        if rule is not None:
            return rule
        return self.holdout.tiers.get(tier, self.holdout.control_share)  # type: ignore[call-overload,no-any-return]


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _explain(path: Path, exc: ValidationError) -> ConfigError:
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"] if part != "actions")
        lines.append(f"  {where or '(file)'}: {error['msg']}")
    return ConfigError(f"{path}: invalid\n" + "\n".join(lines))


def load_policy(path: Path = DEFAULT_POLICY) -> Policy:
    """The validated alert policy in ``path``."""
    try:
        return Policy.model_validate(_read(path))
    except ValidationError as exc:
        raise _explain(path, exc) from None


def load_playbook(path: Path = DEFAULT_PLAYBOOK) -> Playbook:
    """The validated playbook in ``path`` (its ``[holdout]`` table apart from the rules)."""
    data = _read(path)
    holdout = data.pop("holdout", {})
    try:
        return Playbook.model_validate({"actions": data, "holdout": holdout})
    except ValidationError as exc:
        raise _explain(path, exc) from None
