"""The backtest report: Markdown with PNG plots, written to a folder.

Plots use matplotlib's headless Agg backend. The report compares the current
thresholds with the recommended ones and puts the realised win-back results
(from the store's ``winback_effectiveness`` view) beside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churnwatch.alerts.config import Policy
from churnwatch.alerts.economics import DEFAULT_PRECISION_FLOOR, DEFAULT_WINBACK_PRIOR, ValuePlan
from churnwatch.alerts.economics import economics as economics_of
from churnwatch.alerts.economics import plan as value_plan
from churnwatch.features.state import DAY_S
from churnwatch.features.tier import TIERS
from churnwatch.offline.backtest import (
    Backtest,
    Fired,
    Metrics,
    Recommendation,
    apply_recommendation,
)
from churnwatch.offline.replay import Replayed

WEEK_S = 7 * DAY_S


@dataclass
class Findings:
    """Everything one backtest found, as the report shows it."""

    start: float
    end: float
    horizon_days: float
    capacity_per_day: float
    scorer: str
    events: int
    current: Policy
    recommended: Policy
    recommendation: Recommendation
    sweep: Mapping[str, Sequence[tuple[float, Metrics]]]
    #: tier (or ``"all"``) → metrics of each policy
    current_metrics: Mapping[str, Metrics]
    recommended_metrics: Mapping[str, Metrics]
    current_alerts: Sequence[Fired]
    recommended_alerts: Sequence[Fired]
    #: rows of the ``winback_effectiveness`` view
    winback: Sequence[Mapping[str, Any]]
    #: every alert the replay raised (``churn-alerts`` records)
    alerts: Sequence[Mapping[str, Any]] = ()
    #: the expected net value of the thresholds, and why a tier kept its own
    plan: ValuePlan | None = None
    winback_rate: Mapping[str, float] | None = None
    rate_source: Mapping[str, str] | None = None
    contact_cost: float = 0.0
    precision_floor: float = DEFAULT_PRECISION_FLOOR

    def to_dict(self) -> dict[str, Any]:
        """The numbers of the report, JSON-ready."""
        return {
            "from": _day(self.start),
            "to": _day(self.end),
            "events": self.events,
            "scorer": self.scorer,
            "capacity_per_day": self.capacity_per_day,
            "fits_capacity": self.recommendation.fits,
            "current": {k: m.to_dict() for k, m in self.current_metrics.items()},
            "recommended": {k: m.to_dict() for k, m in self.recommended_metrics.items()},
            "thresholds": {
                "current": {t: self.current.thresholds[t].model_dump() for t in TIERS},  # type: ignore[index]
                "recommended": {t: self.recommended.thresholds[t].model_dump() for t in TIERS},  # type: ignore[index]
            },
            "sweep": {
                tier: [{"watch": w, **m.to_dict()} for w, m in rows]
                for tier, rows in self.sweep.items()
            },
            **self._value_dict(),
        }

    def _value_dict(self) -> dict[str, Any]:
        if self.plan is None:
            return {}
        return {
            "expected_net_value": {
                "current": round(self.plan.current_net_value, 2),
                "recommended": round(self.plan.net_value, 2),
            },
            "precision_floor": self.precision_floor,
            "contact_cost": self.contact_cost,
            "winback_rate": dict(self.winback_rate or {}),
            "winback_rate_source": dict(self.rate_source or {}),
            "held": dict(self.plan.held),
        }


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).date().isoformat()


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def write_report(findings: Findings, folder: Path) -> Path:
    """Write ``report.md`` and its plots into ``folder``; return the report's path."""
    import matplotlib

    matplotlib.use("Agg")
    folder.mkdir(parents=True, exist_ok=True)
    _plot_sweep(findings, folder / "precision_recall.png")
    _plot_volume(findings, folder / "alert_volume.png")
    _plot_leads(findings, folder / "lead_time.png")
    if findings.plan is not None:
        _plot_tradeoff(findings, folder / "tradeoff.png")
    path = folder / "report.md"
    path.write_text(_markdown(findings))
    return path


def _markdown(f: Findings) -> str:
    lines = [
        "# churnwatch threshold backtest",
        "",
        f"Alerts from {_day(f.start)} to {_day(f.end)}, replayed over {f.events:,} stored "
        f"events with `{f.scorer}`. An alert is right when the customer buys nothing in "
        f"the {f.horizon_days:g} days after it; a churn is {f.horizon_days:g} days without "
        "a purchase, caught when an alert came between the last purchase and then.",
        "",
        "## Current and recommended thresholds",
        "",
        f"Team capacity: **{f.capacity_per_day:g} alerts per day**. "
        + (
            "The recommendation saves the most expected net value within it."
            if f.recommendation.fits
            else "**No thresholds fit it**: shown are those with the fewest alerts."
        ),
        "",
        *_value_lines(f),
        "| tier | current watch/high/critical | recommended | alerts/week now → then "
        "| precision now → then | recall now → then | value caught now → then |",
        "|---|---|---|---|---|---|---|",
    ]
    for tier in (*TIERS, "all"):
        now, then = f.current_metrics[tier], f.recommended_metrics[tier]
        lines.append(
            f"| {tier} | {_triple(f.current, tier)} | {_triple(f.recommended, tier)} "
            f"| {now.alerts_per_week:.1f} → {then.alerts_per_week:.1f} "
            f"| {_pct(now.precision)} → {_pct(then.precision)} "
            f"| {_pct(now.recall)} → {_pct(then.recall)} "
            f"| {_num(now.value_caught, 0)} → {_num(then.value_caught, 0)} |"
        )
    every = f.recommended_metrics["all"]
    lines += [
        "",
        f"Median lead time before churn: {_num(f.current_metrics['all'].median_lead_days)} days "
        f"now, {_num(every.median_lead_days)} days recommended. Value at risk in the window: "
        f"{_num(every.value_at_risk, 0)} over {every.churns:,} churns.",
        "",
        "To adopt the recommendation, put these lines in the alert policy file "
        "(`CHURNWATCH_POLICY_FILE`):",
        "",
        "```toml",
    ]
    for tier in TIERS:
        t = f.recommended.thresholds[tier]  # type: ignore[index]
        lines += [
            f"[thresholds.{tier}]",
            f"watch = {t.watch}",
            f"high = {t.high}",
            f"critical = {t.critical}",
            "",
        ]
    lines += ["```", "", "## The sweep, per tier", ""]
    lines += [
        "Each tier's `watch` threshold moves (high and critical keep their spacing) "
        "while the other tiers keep theirs.",
        "",
        "![precision and recall against threshold](precision_recall.png)",
        "",
        "| tier | watch | alerts/week | precision | recall | median lead (days) | value caught |",
        "|---|---|---|---|---|---|---|",
    ]
    for tier, rows in f.sweep.items():
        for watch, m in rows:
            lines.append(
                f"| {tier} | {watch:.2f} | {m.alerts_per_week:.1f} | {_pct(m.precision)} "
                f"| {_pct(m.recall)} | {_num(m.median_lead_days)} | {_num(m.value_caught, 0)} |"
            )
    if f.plan is not None:
        lines += [
            "",
            "## The trade-off curve",
            "",
            "Expected net value saved against alerts per day, per tier; hollow points "
            f"fall below the {f.precision_floor:.0%} precision floor.",
            "",
            "![net value against alert volume](tradeoff.png)",
        ]
    lines += [
        "",
        "## Alert volume over time",
        "",
        "![alerts per week](alert_volume.png)",
        "",
        "## Lead time before churn",
        "",
        "![lead-time distribution](lead_time.png)",
        "",
        "## Realised win-back results",
        "",
    ]
    if f.winback:
        lines += [
            "From the CRM's reports on the tasks the live system issued "
            "(`churnwatch winback report`):",
            "",
            "| reason | action | tier | tasks | won back | return rate | satisfaction after |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in f.winback:
            lines.append(
                f"| {row['reason']} | {row['action']} | {row['value_tier']} | {row['tasks']} "
                f"| {row['won_back']} | {_pct(row['return_rate'])} "
                f"| {_num(row['satisfaction_after'], 2)} |"
            )
        lines += [
            "",
            "A tier whose return rate is low while its backtest precision is high is "
            "alerted too late: lower its thresholds; a low precision with a high return "
            "rate spends effort on customers who would have stayed.",
        ]
    else:
        lines.append("No win-back task has been settled yet: nothing to compare.")
    return "\n".join(lines) + "\n"


def _value_lines(f: Findings) -> list[str]:
    """What the thresholds are worth, and why a tier keeps its own."""
    if f.plan is None:
        return []
    rates = ", ".join(
        f"{t} {f.winback_rate[t]:.0%} ({f.rate_source[t]})"  # type: ignore[index]
        for t in TIERS
    )
    lines = [
        f"Expected net value saved: **{f.plan.current_net_value:,.0f} now → "
        f"{f.plan.net_value:,.0f} recommended** (win-back rate x value of the churns caught "
        f"- {f.contact_cost:g} per alert). Win-back rates: {rates}. Every tier's precision "
        f"must reach {f.precision_floor:.0%}.",
        "",
    ]
    for tier, why in f.plan.held.items():
        lines += [f"- **{tier}** keeps its thresholds: {why}.", ""]
    return lines


def _plot_tradeoff(f: Findings, path: Path) -> None:
    import matplotlib.pyplot as plt

    assert f.plan is not None
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for tier, points in f.plan.curve.items():
        xs = [p.alerts_per_day for p in points]
        (line,) = ax.plot(xs, [p.net_value for p in points], label=tier)
        for p in points:
            face = line.get_color() if p.above_floor else "none"
            ax.scatter(p.alerts_per_day, p.net_value, color=line.get_color(), facecolor=face)
        chosen = next(p for p in points if p.watch == f.plan.watch[tier])
        ax.scatter(chosen.alerts_per_day, chosen.net_value, marker="*", s=160, color="red")
    ax.set_xlabel("alerts per day")
    ax.set_ylabel("expected net value saved")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _triple(policy: Policy, tier: str) -> str:
    if tier not in policy.thresholds:
        return "(every tier)"
    t = policy.thresholds[tier]
    return f"{t.watch:.2f} / {t.high:.2f} / {t.critical:.2f}"


def _plot_sweep(f: Findings, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(f.sweep), figsize=(4.2 * len(f.sweep), 3.6), sharey=True)
    for ax, (tier, rows) in zip(axes, f.sweep.items(), strict=True):
        xs = [w for w, _ in rows]
        ax.plot(xs, [m.precision or 0 for _, m in rows], marker="o", label="precision")
        ax.plot(xs, [m.recall or 0 for _, m in rows], marker="o", label="recall")
        ax.plot(xs, [m.value_share or 0 for _, m in rows], ls="--", label="value caught")
        ax.axvline(f.current.thresholds[tier].watch, color="grey", ls=":", label="current")  # type: ignore[index]
        ax.axvline(f.recommendation.watch[tier], color="red", ls=":", label="recommended")
        ax.set_title(f"{tier} value")
        ax.set_xlabel("watch threshold")
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _weekly(alerts: Sequence[Fired], start: float, end: float) -> list[int]:
    weeks = max(int((end - start) // WEEK_S) + 1, 1)
    counts = [0] * weeks
    for a in alerts:
        if start <= a.at <= end:
            counts[int((a.at - start) // WEEK_S)] += 1
    return counts


def _plot_volume(f: Findings, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.4))
    now = _weekly(f.current_alerts, f.start, f.end)
    then = _weekly(f.recommended_alerts, f.start, f.end)
    ax.plot(range(len(now)), now, label="current thresholds")
    ax.plot(range(len(then)), then, label="recommended")
    ax.axhline(f.capacity_per_day * 7, color="red", ls=":", label="capacity")
    ax.set_xlabel(f"week from {_day(f.start)}")
    ax.set_ylabel("alerts")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_leads(f: Findings, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    bins = list(range(0, int(f.horizon_days) + 10, 5))
    ax.hist(f.current_metrics["all"].leads, bins=bins, alpha=0.6, label="current")
    ax.hist(f.recommended_metrics["all"].leads, bins=bins, alpha=0.6, label="recommended")
    ax.set_xlabel("days between first alert and churn")
    ax.set_ylabel("churns caught")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def analyse(
    replayed: Replayed,
    policy: Policy,
    *,
    start: float,
    end: float,
    horizon_days: float,
    capacity_per_day: float,
    scorer: str,
    winback: Sequence[Mapping[str, Any]] = (),
    contact_cost: float = 0.0,
    precision_floor: float = DEFAULT_PRECISION_FLOOR,
    winback_prior: float = DEFAULT_WINBACK_PRIOR,
) -> Findings:
    """Sweep, recommend within capacity and the floor, and judge current and recommended."""
    test = Backtest(replayed, start=start, end=end, horizon_days=horizon_days)
    sweep = test.sweep(policy)
    econ = economics_of(
        TIERS,
        winback,
        prior=winback_prior,
        contact_cost=contact_cost,
        precision_floor=precision_floor,
    )
    chosen = value_plan(
        sweep,
        {t: policy.thresholds[t].watch for t in TIERS},  # type: ignore[index]
        capacity_per_day,
        econ,
    )
    caught = sum(
        next(m.value_caught for w, m in sweep[t] if w == watch) for t, watch in chosen.watch.items()
    )
    rec = Recommendation(dict(chosen.watch), chosen.alerts_per_day, caught, chosen.fits)
    better = apply_recommendation(policy, rec)
    now, then = test.simulate(policy), test.simulate(better)

    def by_tier(fired: Sequence[Fired]) -> dict[str, Metrics]:
        return {**{t: test.measure(fired, t) for t in TIERS}, "all": test.measure(fired)}

    return Findings(
        start=start,
        end=end,
        horizon_days=horizon_days,
        capacity_per_day=capacity_per_day,
        scorer=scorer,
        events=replayed.replayed,
        current=policy,
        recommended=better,
        recommendation=rec,
        sweep=sweep,
        current_metrics=by_tier(now),
        recommended_metrics=by_tier(then),
        current_alerts=now,
        recommended_alerts=then,
        winback=list(winback),
        alerts=replayed.alerts,
        plan=chosen,
        winback_rate=econ.winback_rate,
        rate_source=econ.rate_source,
        contact_cost=contact_cost,
        precision_floor=precision_floor,
    )
