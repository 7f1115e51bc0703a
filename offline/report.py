"""The backtest report: Markdown with PNG plots, written to a folder.

Plots use matplotlib's headless Agg backend. The report compares the current
thresholds with the recommended ones and puts the realised win-back results
(from the store's ``winback_effectiveness`` view) beside them. Every threshold
row shows its counts and the Wilson 95 % intervals of its shares, and the text
says what each figure rests on: the evidence rule, the floor for all tiers
together, the edge of the sweep, the last horizon (not judged yet), stray
records left out, what a lead of exactly the horizon means, and the currency.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churnwatch.alerts.config import Policy, SegmentThresholds
from churnwatch.alerts.economics import (
    DEFAULT_MIN_EVIDENCE,
    DEFAULT_PRECISION_FLOOR,
    DEFAULT_WINBACK_PRIOR,
    ValuePlan,
)
from churnwatch.alerts.economics import economics as economics_of
from churnwatch.features.state import DAY_S
from churnwatch.features.tier import TIERS
from churnwatch.offline.backtest import (
    SEGMENT_VALUES,
    Backtest,
    Fired,
    Metrics,
    Recommendation,
    SegmentPlan,
    Span,
    Unjudged,
    plan_segment,
    tune,
)
from churnwatch.offline.replay import Replayed
from churnwatch.tables import markdown

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
    #: the uplift per reason, action and tier against the control groups (winback report)
    uplift: Sequence[Mapping[str, Any]] = ()
    #: every alert the replay raised (``churn-alerts`` records)
    alerts: Sequence[Mapping[str, Any]] = ()
    #: the expected net value of the thresholds, and why a tier kept its own
    plan: ValuePlan | None = None
    winback_rate: Mapping[str, float] | None = None
    rate_source: Mapping[str, str] | None = None
    contact_cost: float = 0.0
    precision_floor: float = DEFAULT_PRECISION_FLOOR
    min_evidence: int = DEFAULT_MIN_EVIDENCE
    #: what the money is in, and what to know about it (mixed or unnamed currencies)
    currency: str = ""
    currency_note: str | None = None
    #: the bulk of the history, and the stray records left outside it
    span: Span | None = None
    #: the last horizon of the window, not judged yet, under each policy
    unjudged_now: Unjudged | None = None
    unjudged_then: Unjudged | None = None
    #: tier → why its recommended threshold, at the edge of the sweep, may not be the best
    edges: Mapping[str, str] = field(default_factory=dict)
    #: why the recommendation's alerts of all tiers together fall below the floor
    overall_short: str | None = None
    #: combinations passed over because, replayed together, they fell below the floor
    tightened: int = 0
    #: dimension → value → its customers, current and recommended metrics (the biggest values)
    segments: Mapping[str, Mapping[str, tuple[int, Metrics, Metrics]]] = field(default_factory=dict)
    #: thresholds of their own for the segments with enough evidence, biggest gain first
    segment_plans: Sequence[SegmentPlan] = ()

    def to_dict(self) -> dict[str, Any]:
        """The numbers of the report, JSON-ready."""
        return {
            "from": _day(self.start),
            "to": _day(self.end),
            "events": self.events,
            "scorer": self.scorer,
            "capacity_per_day": self.capacity_per_day,
            "fits_capacity": self.recommendation.fits,
            "currency": self.currency,
            "currency_note": self.currency_note,
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
            "unjudged": _unjudged_dict(self.unjudged_now, self.unjudged_then),
            "segments": {
                dimension: {
                    value: {"customers": n, "current": now.to_dict(), "recommended": then.to_dict()}
                    for value, (n, now, then) in values.items()
                }
                for dimension, values in self.segments.items()
            },
            "segment_recommendations": [_segment_plan_dict(sp) for sp in self.segment_plans],
            "strays": _strays_dict(self.span),
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
            "min_evidence": self.min_evidence,
            "contact_cost": self.contact_cost,
            "winback_rate": dict(self.winback_rate or {}),
            "winback_rate_source": dict(self.rate_source or {}),
            "held": dict(self.plan.held),
            "edges": dict(self.edges),
            "overall_below_floor": self.overall_short,
            "tightened": self.tightened,
        }


def _unjudged_dict(now: Unjudged | None, then: Unjudged | None) -> dict[str, Any] | None:
    if now is None or then is None:
        return None
    return {
        "from": _day(now.start),
        "to": _day(now.end),
        "alerts_current": now.alerts,
        "alerts_recommended": then.alerts,
        "customers_undecided": now.customers,
    }


def _strays_dict(span: Span | None) -> dict[str, Any] | None:
    if span is None:
        return None
    return {
        "bulk_from": _day(span.first),
        "bulk_to": _day(span.last),
        "before": span.before,
        "after": span.after,
    }


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).date().isoformat()


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _share(value: float | None, interval: tuple[float, float] | None) -> str:
    """A share with its Wilson 95 % interval, e.g. ``31.3% (22.9-41.1%)``."""
    if value is None or interval is None:
        return "—"
    low, high = interval
    return f"{value:.1%} ({low * 100:.1f}-{high:.1%})"


def money(value: float, currency: str, digits: int = 0) -> str:
    """An amount with its currency, e.g. ``4,385 EUR`` (``0 EUR``, not ``0.00 EUR``)."""
    text = f"{value:,.{digits}f}"
    if digits and float(value).is_integer():
        text = f"{value:,.0f}"
    return f"{text} {currency}".rstrip()


def currency_of(counts: Mapping[str, int], given: str | None = None) -> tuple[str, str | None]:
    """What the backtest's money is in, and a sentence when that is not plain.

    ``given`` (``--currency``) names it; without it the one currency the
    purchases carry does. Amounts are never converted: where the purchases
    carry another currency, or several, they are summed as they are, and the
    sentence says so.
    """
    carried = ", ".join(f"{code} ({_plural(n, 'purchase')})" for code, n in sorted(counts.items()))
    if given is not None:
        if set(counts) <= {given}:
            return given, None
        return given, (
            f"Amounts are labelled {given} as asked (`--currency`), but the purchases carry "
            f"{carried}; they are summed unconverted."
        )
    if len(counts) == 1:
        return next(iter(counts)), None
    if not counts:
        return "", "No purchase names a currency: amounts are in the events' own units."
    return "mixed", (
        f"**Amounts mix currencies**: the purchases carry {carried}, and they are summed "
        "unconverted. Convert them to one currency before importing."
    )


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


#: the columns every threshold row shows, after the ones that name the row
METRIC_HEADERS = (
    "alerts/week",
    "alerts",
    "judged",
    "right",
    "precision (95% CI)",
    "churns",
    "caught",
    "recall (95% CI)",
    "median lead (days)",
)


def metric_cells(m: Metrics) -> list[str]:
    """A threshold row's counts, shares with their intervals, lead and value caught."""
    return [
        f"{m.alerts_per_week:.1f}",
        f"{m.alerts:,}",
        f"{m.judged:,}",
        f"{m.confirmed:,}",
        _share(m.precision, m.precision_interval),
        f"{m.churns:,}",
        f"{m.caught:,}",
        _share(m.recall, m.recall_interval),
        _num(m.median_lead_days),
        _num(m.value_caught, 0),
    ]


def _metric_headers(f: Findings) -> list[str]:
    return [*METRIC_HEADERS, f"value caught ({f.currency or 'units'})"]


def brief_cells(m: Metrics) -> list[str]:
    """The same row in four cells, counts beside the shares: for a terminal's width."""
    return [
        f"{m.alerts_per_day:.1f}",
        f"{m.confirmed:,}/{m.judged:,} {_share(m.precision, m.precision_interval)}",
        f"{m.caught:,}/{m.churns:,} {_share(m.recall, m.recall_interval)}",
        _num(m.value_caught, 0),
    ]


def _brief_headers(f: Findings) -> list[str]:
    return [
        "alerts/day",
        "right/judged: precision (95% CI)",
        "caught/churns: recall (95% CI)",
        f"value caught ({f.currency or 'units'})",
    ]


def summary_table(f: Findings, *, brief: bool = False) -> tuple[list[str], list[list[str]]]:
    """Current against recommended thresholds, per tier and for all: headers and rows.

    ``brief`` gives the counts and shares in four columns instead of ten.
    """
    cells, metric_headers = (
        (brief_cells, _brief_headers) if brief else (metric_cells, _metric_headers)
    )
    headers = ["tier", "thresholds", "watch / high / critical", *metric_headers(f)]
    rows = []
    held = set(f.plan.held) if f.plan is not None else set()
    for tier in (*TIERS, "all"):
        kept = tier in held or (tier == "all" and held >= set(TIERS))
        for name, policy, metrics in (
            ("current", f.current, f.current_metrics),
            ("kept" if kept else "recommended", f.recommended, f.recommended_metrics),
        ):
            rows.append([tier, name, _triple(policy, tier), *cells(metrics[tier])])
    return headers, rows


def segment_table(f: Findings) -> tuple[list[str], list[list[str]]]:
    """Current against recommended thresholds per segment value: headers and rows."""
    headers = ["segment", "customers", "thresholds", *_brief_headers(f)]
    rows = [
        [f"{dimension} {value}", f"{n:,}", name, *brief_cells(metrics)]
        for dimension, values in f.segments.items()
        for value, (n, now, then) in values.items()
        for name, metrics in (("current", now), ("recommended", then))
    ]
    return headers, rows


def _segment_plan_dict(sp: SegmentPlan) -> dict[str, Any]:
    return {
        "segment": {sp.dimension: sp.value},
        "customers": sp.customers,
        "capacity_per_day": sp.capacity_per_day,
        "capacity_source": sp.capacity_source,
        "alerts_per_day_now": sp.current_per_day,
        "worth_adopting": sp.worth_adopting,
        "watch": dict(sp.plan.watch),
        "held": dict(sp.plan.held),
        "fits_capacity": sp.plan.fits,
        "net_value": sp.plan.net_value,
        "net_value_with_tier_thresholds": sp.plan.current_net_value,
        "rules": [r.model_dump(exclude_none=True) for r in sp.rules],
    }


def segment_plan_table(f: Findings) -> tuple[list[str], list[list[str]]]:
    """Each judged segment's own thresholds against the tiers': headers and rows."""
    headers = ["segment", "alerts / day now", "capacity / day", "watch per tier", "net value"]
    headers.append("gain")
    rows = [
        [
            f"{sp.dimension} {sp.value}",
            f"{sp.current_per_day:.2f}",
            f"{sp.capacity_per_day:.2f} ({sp.capacity_source})"
            + ("" if sp.plan.fits else ": nothing trusted fits"),
            " / ".join(
                f"{t} {sp.plan.watch[t]:.2f}" + (" (kept)" if t in sp.plan.held else "")
                for t in TIERS
            ),
            money(sp.plan.net_value, f.currency),
            money(sp.gain, f.currency),
        ]
        for sp in f.segment_plans
    ]
    return headers, rows


def _segment_lines(f: Findings) -> list[str]:
    if not f.segments:
        return []
    lines = [
        "## Per segment",
        "",
        "The same alerts, judged for the customers of each segment (their segments at "
        f"their last step; the {SEGMENT_VALUES} values with the most customers of each).",
        "",
        *markdown(*segment_table(f)),
        "",
    ]
    if not f.segment_plans:
        return [
            *lines,
            f"No segment had {f.min_evidence} judged alerts under the recommendation, the "
            "evidence its own thresholds would need.",
            "",
        ]
    lines += [
        "### Thresholds of their own",
        "",
        f"For each segment with at least {f.min_evidence} judged alerts, every tier's `watch` "
        "swept for its customers alone, within the segment's capacity: the alert policy's "
        "`[[capacity]]` for it, or else its alerts a day under the recommendation, so that "
        "the same load goes where it pays most. *gain* is the expected net value over the "
        "tier thresholds, for the segment's customers; a rule is worth adopting when it "
        "gains, or when the tier thresholds give the segment more alerts than its capacity.",
        "",
        *markdown(*segment_plan_table(f)),
        "",
    ]
    rules = [r for sp in f.segment_plans if sp.worth_adopting for r in sp.rules]
    if rules:
        lines += [
            "To give these segments their own thresholds, put these rules in the alert policy. "
            "The first rule that applies wins, so a customer in two of these segments takes "
            "the rule of the segment listed first (the biggest gain):",
            "",
            "```toml",
            *(line for rule in rules for line in _rule_lines(rule)),
            "```",
            "",
        ]
    return lines


def _rule_lines(rule: SegmentThresholds) -> list[str]:
    return [
        "[[segment_thresholds]]",
        *(
            f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}"
            for k, v in rule.model_dump(exclude_none=True).items()
        ),
        "",
    ]


def sweep_table(f: Findings) -> tuple[list[str], list[list[str]]]:
    """Every candidate of every tier: headers and rows, with what each row is."""
    headers = ["tier", "watch", *_metric_headers(f), "note"]
    rows = []
    for tier, candidates in f.sweep.items():
        for watch, m in candidates:
            rows.append([tier, f"{watch:.2f}", *metric_cells(m), _note(f, tier, watch, m)])
    return headers, rows


def _note(f: Findings, tier: str, watch: float, m: Metrics) -> str:
    """What a sweep row is: current, recommended, short of evidence, below the floor."""
    says = []
    if watch == f.current.thresholds[tier].watch:  # type: ignore[index]
        says.append("current")
    if watch == f.recommendation.watch[tier] and not (f.plan and tier in f.plan.held):
        says.append("recommended")
    if m.judged < f.min_evidence:
        says.append(f"few: {m.judged} judged")
    elif m.precision is not None and m.precision < f.precision_floor:
        says.append("below floor")
    return "; ".join(says)


def notes(f: Findings) -> list[str]:
    """The findings a reader must not miss, one plain line each (for the command line)."""
    lines = [f"money: {f.currency_note or f.currency}".replace("**", "")]
    span, unjudged = f.span, f.unjudged_now
    if span is not None and (span.before or span.after):
        lines.append(
            f"stray records left out: {span.before:,} before {_day(span.first)}, "
            f"{span.after:,} after {_day(span.last)} (outside the history's dense part)"
        )
    if unjudged is not None and f.unjudged_then is not None:
        lines.append(
            f"not judged: {_day(unjudged.start)} to {_day(unjudged.end)}, the last "
            f"{f.horizon_days:g} days ({unjudged.alerts:,} alerts now, "
            f"{f.unjudged_then.alerts:,} recommended; "
            f"{_plural(unjudged.customers, 'customer')} whose last purchase falls in it)"
        )
    if f.contact_cost == 0:
        lines.append(
            "contact cost 0: every alert is free, so the recommendation favours volume "
            "(give --contact-cost to weigh the team's time)"
        )
    if f.plan is not None:
        lines.append(
            f"expected net value saved: {money(f.plan.current_net_value, f.currency)} now, "
            f"{money(f.plan.net_value, f.currency)} recommended"
        )
        lines += [f"{tier} keeps its thresholds: {why}" for tier, why in f.plan.held.items()]
    lines += [f"{tier}: {note}" for tier, note in f.edges.items()]
    overall = _overall_line(f).removeprefix("- ").replace("**", "")
    lines.append(overall[:1].lower() + overall[1:])
    return lines


def _markdown(f: Findings) -> str:
    lines = [
        "# churnwatch threshold backtest",
        "",
        *_intro_lines(f),
        *_window_lines(f),
        "## Current and recommended thresholds",
        "",
        *_settings_lines(f),
        *_decision_lines(f),
        *markdown(*summary_table(f)),
        "",
        "*right*: judged alerts followed by churn; *caught*: churns an alert of the tier came "
        "before. Intervals are Wilson 95 % score intervals: with few alerts they are wide, "
        "and two thresholds whose intervals overlap much are not shown to differ.",
        "",
        *_lead_summary(f),
        *_segment_lines(f),
        "To adopt the recommendation, put these lines in the alert policy file "
        "(`CHURNWATCH_POLICY_FILE`):",
        "",
        "```toml",
        *_toml_lines(f.recommended),
        "```",
        "",
        "## The sweep, per tier",
        "",
        "Each tier's `watch` threshold moves (high and critical keep their spacing) "
        "while the other tiers keep theirs. A pick at the edge of the sweep widens it by "
        "one step, as far as the thresholds allow. Shaded: the 95 % interval of precision.",
        "",
        "![precision and recall against threshold](precision_recall.png)",
        "",
        *markdown(*sweep_table(f)),
        *_tradeoff_lines(f),
        *_volume_lines(f),
        *_lead_lines(f),
        "## Realised win-back results",
        "",
        *_winback_lines(f),
    ]
    return "\n".join(lines) + "\n"


def _intro_lines(f: Findings) -> list[str]:
    """What was replayed, and what the words mean."""
    h = f"{f.horizon_days:g}"
    lines = [
        f"Alerts from {_day(f.start)} to {_day(f.end)}, replayed over {f.events:,} stored "
        f"events with `{f.scorer}`. An alert is right when the customer buys nothing in "
        f"the {h} days after it; a churn is {h} days without a purchase, caught when an "
        "alert came between the last purchase and then.",
        "",
        f.currency_note or f"Money is in **{f.currency}**.",
        "",
    ]
    return lines


def _window_lines(f: Findings) -> list[str]:
    """Stray records left out, and the last horizon, which cannot be judged yet."""
    lines = []
    span = f.span
    if span is not None and (span.before or span.after):
        lines += [
            f"**Stray records left out**: {span.before:,} before {_day(span.first)} and "
            f"{span.after:,} after {_day(span.last)}, outside the dense part of the history "
            "(where the month around a day holds a tenth of the usual events). They would "
            "stretch the window with empty weeks and make every customer before the gap look "
            "churned, so the backtest "
            f"judges {_day(span.first)} to {_day(span.last)} only.",
            "",
        ]
    now, then = f.unjudged_now, f.unjudged_then
    if now is not None and then is not None:
        data_end = span.last if span is not None else now.end
        lines += [
            f"**Not judged: the last {f.horizon_days:g} days, {_day(now.start)} to "
            f"{_day(now.end)}.** The history ends on {_day(data_end)}, so whether a customer "
            f"bought in the {f.horizon_days:g} days after an alert of these days is not known "
            f"yet. Alerts raised in them: {now.alerts:,} now, {then.alerts:,} recommended; they "
            "count in the alerts per week but not in precision. Customers whose last purchase "
            f"falls in them: {now.customers:,}; whether they churn is not known yet, so they "
            "count in no recall.",
            "",
        ]
    return lines


def _settings_lines(f: Findings) -> list[str]:
    """Capacity, the floor, the evidence rule and the contact cost the recommendation obeyed."""
    cost = money(f.contact_cost, f.currency, 2)
    if f.contact_cost == 0:
        why = (
            "every alert is free, so the recommendation favours volume: it loosens a "
            "threshold as far as the capacity, the precision floor and the evidence rule "
            "allow, as long as that catches more. Give `--contact-cost` (what working one "
            "alert costs) to weigh the team's time"
        )
    else:
        why = (
            f"a looser threshold pays only where the value its extra alerts save exceeds "
            f"{cost} each"
        )
    return [
        f"- Team capacity: **{f.capacity_per_day:g} alerts per day**.",
        f"- Precision floor: **{f.precision_floor:.0%}**, for each tier and for the "
        "recommendation's alerts of all tiers together.",
        f"- Evidence: a threshold judged on fewer than **{f.min_evidence}** alerts is not "
        "recommended (`--min-evidence`); a tier without one keeps its thresholds.",
        f"- Contact cost: **{cost} per alert**: {why}.",
        "",
    ]


def _decision_lines(f: Findings) -> list[str]:
    """What was chosen, and every reason a tier or the whole fell short."""
    lines = [
        "The recommendation saves the most expected net value within the capacity."
        if f.recommendation.fits
        else "**No thresholds fit the capacity**: shown are those with the fewest alerts.",
        "",
    ]
    if f.plan is not None:
        rates = ", ".join(
            f"{t} {f.winback_rate[t]:.0%} ({f.rate_source[t]})"  # type: ignore[index]
            for t in TIERS
        )
        lines += [
            f"Expected net value saved: **{money(f.plan.current_net_value, f.currency)} now → "
            f"{money(f.plan.net_value, f.currency)} recommended** (win-back rate x value of the "
            f"churns caught - {money(f.contact_cost, f.currency, 2)} per alert). "
            f"Win-back rates: {rates}.",
            "",
        ]
        lines += [f"- **{t}** keeps its thresholds: {why}." for t, why in f.plan.held.items()]
    lines += [f"- **{t}**: {note}." for t, note in f.edges.items()]
    lines += [_overall_line(f), ""]
    return lines


def _overall_line(f: Findings) -> str:
    """Whether the floor holds for all tiers' alerts together, in plain words."""
    every = f.recommended_metrics["all"]
    if f.overall_short is not None:
        return (
            f"- **The precision floor does not hold for all tiers together**: {f.overall_short}. "
            f"The recommendation's alerts reach {_pct(every.precision)}."
        )
    tightened = (
        f" ({f.tightened} better-paying combinations were passed over: together they fell below it)"
        if f.tightened
        else ""
    )
    return (
        f"- All tiers together: precision {_share(every.precision, every.precision_interval)}, "
        f"at or above the {f.precision_floor:.0%} floor{tightened}."
        if every.precision is not None
        else "- All tiers together: no alert could be judged."
    )


def _lead_summary(f: Findings) -> list[str]:
    every = f.recommended_metrics["all"]
    return [
        f"Median lead time before churn: {_num(f.current_metrics['all'].median_lead_days)} days "
        f"now, {_num(every.median_lead_days)} days recommended. Value at risk in the window: "
        f"{money(every.value_at_risk, f.currency)} over {every.churns:,} churns.",
        "",
    ]


def _toml_lines(policy: Policy) -> list[str]:
    lines = []
    for tier in TIERS:
        t = policy.thresholds[tier]  # type: ignore[index]
        lines += [
            f"[thresholds.{tier}]",
            f"watch = {t.watch}",
            f"high = {t.high}",
            f"critical = {t.critical}",
            "",
        ]
    return lines


def _tradeoff_lines(f: Findings) -> list[str]:
    if f.plan is None:
        return []
    return [
        "",
        "## The trade-off curve",
        "",
        f"Expected net value saved ({f.currency or 'units'}) against alerts per day, per tier; "
        f"hollow points fall below the {f.precision_floor:.0%} precision floor or rest on fewer "
        f"than {f.min_evidence} judged alerts.",
        "",
        "![net value against alert volume](tradeoff.png)",
    ]


def _volume_lines(f: Findings) -> list[str]:
    shaded = (
        " The shaded weeks at the end are the last horizon, not judged yet."
        if f.unjudged_now is not None
        else ""
    )
    return [
        "",
        "## Alert volume over time",
        "",
        f"Alerts per week from {_day(f.start)} to {_day(f.end)}, the window judged, against "
        f"the capacity ({f.capacity_per_day * 7:g} a week).{shaded}",
        "",
        "![alerts per week](alert_volume.png)",
        "",
    ]


def _lead_lines(f: Findings) -> list[str]:
    """The lead-time plot and what its bar at the horizon means."""
    h = f"{f.horizon_days:g}"
    now, then = f.current_metrics["all"], f.recommended_metrics["all"]
    return [
        "## Lead time before churn",
        "",
        f"The lead time of a churn caught runs from the first alert after the customer's last "
        f"purchase to the churn date, which is that purchase plus {h} days; so no lead exceeds "
        f"{h} days. A lead of exactly {h} days means the alert came at the moment of the last "
        "purchase, raised by the score of that purchase (or of another event at that instant): "
        f"the customer was above the threshold as they bought. That was "
        f"{_at_horizon(now.leads, f.horizon_days)} of {now.caught:,} churns caught now and "
        f"{_at_horizon(then.leads, f.horizon_days)} of {then.caught:,} recommended. Alerts "
        "before the last purchase catch nothing: the customer bought after them.",
        "",
        "![lead-time distribution](lead_time.png)",
        "",
    ]


def _at_horizon(leads: Sequence[float], horizon_days: float) -> int:
    """Leads of exactly the horizon (to the second): alerts raised with the last purchase."""
    return sum(lead >= horizon_days - 1 / DAY_S for lead in leads)


def _winback_lines(f: Findings) -> list[str]:
    if not f.winback:
        return ["No win-back task has been settled yet: nothing to compare."]
    headers = ["reason", "action", "tier", "tasks", "won back", "return rate", "satisfaction after"]
    rows = [
        [
            row["reason"],
            row["action"],
            row["value_tier"],
            row["tasks"],
            row["won_back"],
            _pct(row["return_rate"]),
            _num(row["satisfaction_after"], 2),
        ]
        for row in f.winback
    ]
    return [
        "From the CRM's reports on the tasks the live system issued (`churnwatch winback report`):",
        "",
        *markdown(headers, rows),
        "",
        "A tier whose return rate is low while its backtest precision is high is "
        "alerted too late: lower its thresholds; a low precision with a high return "
        "rate spends effort on customers who would have stayed.",
        *_uplift_lines(f),
    ]


def _uplift_lines(f: Findings) -> list[str]:
    if not f.uplift:
        return ["", "No held-out case has settled yet: the uplift of the actions is not known."]
    headers = ["reason", "action", "tier", "treated", "control", "uplift (95 % CI)", "evidence"]
    rows = [
        [
            row["reason"],
            row["action"],
            row["tier"],
            f"{row['treated_returned']}/{row['treated']}",
            f"{row['control_returned']}/{row['control']}",
            "—"
            if row["uplift"] is None
            else f"{row['uplift']:+.1%} ({row['uplift_low']:+.1%} to {row['uplift_high']:+.1%})",
            row["evidence"],
        ]
        for row in f.uplift
    ]
    return [
        "",
        "What each action adds against its control group (held-out cases of the same "
        "reason and tier, never contacted): returned / cases, treated and control.",
        "",
        *markdown(headers, rows),
    ]


def _plot_tradeoff(f: Findings, path: Path) -> None:
    import matplotlib.pyplot as plt

    assert f.plan is not None
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for tier, points in f.plan.curve.items():
        xs = [p.alerts_per_day for p in points]
        (line,) = ax.plot(xs, [p.net_value for p in points], label=tier)
        for p in points:
            face = line.get_color() if p.above_floor and p.trusted else "none"
            ax.scatter(p.alerts_per_day, p.net_value, color=line.get_color(), facecolor=face)
        chosen = next(p for p in points if p.watch == f.plan.watch[tier])
        ax.scatter(chosen.alerts_per_day, chosen.net_value, marker="*", s=160, color="red")
    ax.set_xlabel("alerts per day")
    ax.set_ylabel(f"expected net value saved ({f.currency or 'units'})")
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
        # no judged alert: a gap in the line, not a precision of 0
        nan = float("nan")
        precision = [nan if m.precision is None else m.precision for _, m in rows]
        ax.plot(xs, precision, marker="o", label="precision")
        bands = [m.precision_interval or (nan, nan) for _, m in rows]
        ax.fill_between(xs, [b[0] for b in bands], [b[1] for b in bands], alpha=0.2)
        ax.plot(xs, [m.recall or 0 for _, m in rows], marker="o", label="recall")
        ax.plot(xs, [m.value_share or 0 for _, m in rows], ls="--", label="value caught")
        ax.axhline(f.precision_floor, color="black", lw=0.6, label="precision floor")
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
    if f.unjudged_now is not None:
        since = (f.unjudged_now.start - f.start) / WEEK_S
        ax.axvspan(since, len(now) - 1, color="grey", alpha=0.15, label="not judged yet")
    ax.set_xlabel(f"week from {_day(f.start)} to {_day(f.end)}")
    ax.set_ylabel("alerts")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_leads(f: Findings, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    # the last bin closes at the horizon: a lead of exactly the horizon falls in it
    bins = [*range(0, int(f.horizon_days), 5), f.horizon_days]
    ax.hist(f.current_metrics["all"].leads, bins=bins, alpha=0.6, label="current")
    ax.hist(f.recommended_metrics["all"].leads, bins=bins, alpha=0.6, label="recommended")
    ax.axvline(f.horizon_days, color="black", ls=":", lw=0.8)
    ax.annotate(
        "= horizon: alert at\nthe last purchase",
        (f.horizon_days, 0),
        xytext=(-4, 40),
        textcoords="offset points",
        ha="right",
        fontsize=7,
    )
    ax.set_xlabel(f"days from first alert to churn date (last purchase + {f.horizon_days:g})")
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
    measured: Mapping[str, tuple[float, str]] | None = None,
    uplift: Sequence[Mapping[str, Any]] = (),
    contact_cost: float = 0.0,
    precision_floor: float = DEFAULT_PRECISION_FLOOR,
    winback_prior: float = DEFAULT_WINBACK_PRIOR,
    min_evidence: int = DEFAULT_MIN_EVIDENCE,
    currency: str | None = None,
) -> Findings:
    """Sweep, recommend within capacity, the floor and the evidence rule, and judge both.

    The window is cut to the bulk of the history. ``currency`` names the money
    (default: the one the purchases carry). Raises :class:`ValueError` for a
    setting out of its range.
    """
    econ = economics_of(
        TIERS,
        measured,
        prior=winback_prior,
        contact_cost=contact_cost,
        precision_floor=precision_floor,
        min_evidence=min_evidence,
    )
    test = Backtest(replayed, start=start, end=end, horizon_days=horizon_days)
    sweep = test.sweep(policy)
    tuned = tune(test, policy, sweep, capacity_per_day, econ)
    chosen = tuned.plan
    caught = sum(
        next(m.value_caught for w, m in sweep[t] if w == watch) for t, watch in chosen.watch.items()
    )
    rec = Recommendation(dict(chosen.watch), chosen.alerts_per_day, caught, chosen.fits)
    now, then = test.simulate(policy), tuned.fired

    def by_tier(fired: Sequence[Fired]) -> dict[str, Metrics]:
        return {**{t: test.measure(fired, t) for t in TIERS}, "all": test.measure(fired)}

    segments = {
        dimension: {
            value: (
                len(members),
                test.measure(now, customers=members),
                test.measure(then, customers=members),
            )
            for value, members in values.items()
        }
        for dimension, values in test.segment_members().items()
    }

    plans = [
        plan_segment(test, tuned.policy, (dimension, value), members, econ)
        for dimension, values in test.segment_members().items()
        for value, members in values.items()
        if segments[dimension][value][2].judged >= econ.min_evidence
    ]
    label, note = currency_of(replayed.currencies, currency)
    return Findings(
        start=test.start,
        end=test.end,
        horizon_days=horizon_days,
        capacity_per_day=capacity_per_day,
        scorer=scorer,
        events=replayed.replayed,
        current=policy,
        recommended=tuned.policy,
        recommendation=rec,
        sweep=sweep,
        current_metrics=by_tier(now),
        recommended_metrics=by_tier(then),
        current_alerts=now,
        recommended_alerts=then,
        winback=list(winback),
        uplift=list(uplift),
        alerts=replayed.alerts,
        plan=chosen,
        winback_rate=econ.winback_rate,
        rate_source=econ.rate_source,
        contact_cost=contact_cost,
        precision_floor=precision_floor,
        min_evidence=min_evidence,
        currency=label,
        currency_note=note,
        span=test.span,
        unjudged_now=test.unjudged(now),
        unjudged_then=test.unjudged(then),
        edges=tuned.edges,
        overall_short=tuned.overall_short,
        tightened=tuned.tightened,
        segments=segments,
        segment_plans=sorted(plans, key=lambda sp: -sp.gain),
    )
