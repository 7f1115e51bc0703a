"""Every panel of the Grafana dashboards: what it shows and the query behind it.

SQL panels read the store's tables on PostgreSQL (``alerts``,
``winback_tasks``, ``winback_outcomes``, ``case_owners``, ``events``,
``customer_state``, ``customer_changes`` and the ``winback_effectiveness``
view) through Grafana's macros (``$__timeFilter``, ``$__timeGroupAlias``,
``$__timeTo``) and the ``$tier``, ``$reason`` and segment variables. ``macros.expand`` turns a query
into plain SQL the way Grafana does, so each one is tested against a real
PostgreSQL with exact results. Prometheus panels read the worker's
``/metrics`` (``churnwatch.streams.metrics``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from churnwatch.features.segments import SEGMENTS
from churnwatch.models.reasons import REASONS

TIERS = ("high", "potential", "general")
#: ``reason`` variable values, in the order of ``REASONS`` (docs/alerts.md)
REASON_VALUES = tuple(REASONS)
#: what a segment variable's "All" stands for: every customer, a segment known or not
ALL_SEGMENTS = "__all"
#: each segment variable's values: the ones the alerts have
SEGMENT_VALUES_SQL = {
    d: f"SELECT DISTINCT segments ->> '{d}' FROM alerts "
    f"WHERE segments ->> '{d}' IS NOT NULL ORDER BY 1"
    for d in SEGMENTS
}


@dataclass(frozen=True)
class SqlPanel:
    """A panel over the SQL store."""

    key: str
    title: str
    #: Grafana panel type: table, timeseries, barchart, piechart or bargauge
    kind: str
    sql: str
    description: str
    #: ``table`` or ``time_series`` (Grafana's SQL result formats)
    result_format: str = "table"
    unit: str | None = None
    width: int = 12
    height: int = 8
    #: per column: Grafana field-config properties (``id``, value) that override the panel's
    overrides: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()


@dataclass(frozen=True)
class PromPanel:
    """A panel over the worker's Prometheus metrics."""

    key: str
    title: str
    kind: str
    #: (PromQL expression, legend format)
    queries: tuple[tuple[str, str], ...]
    description: str
    unit: str | None = None
    width: int = 12
    height: int = 8


# Each panel's variables filter with ``IN ($var)``: Grafana writes a multi-value
# (or "All") selection of a SQL data source as a quoted, comma-separated list. A
# segment variable's "All" is ``'__all'``, which lets customers of no known segment in.
_SEGMENT_FILTER = "\n".join(
    f"  AND ('{ALL_SEGMENTS}' IN (${d}) OR a.segments ->> '{d}' IN (${d}))" for d in SEGMENTS
)
#: a blank CLV or p_alive says why, as the worklist does
_NO_MODEL = (
    "mappings",
    [
        {
            "type": "special",
            "options": {
                "match": "null",
                "result": {"text": "no purchase model (value: last year's spend rate)"},
            },
        }
    ],
)
#: value at risk from green to red, as the worklist ranks it; risk levels by colour; a
#: blank CLV or p_alive explained
_COLOURED = (
    ("clv", (_NO_MODEL,)),
    ("p_alive", (_NO_MODEL,)),
    (
        "value_at_risk",
        (
            ("custom.cellOptions", {"type": "color-background"}),
            (
                "thresholds",
                {
                    "mode": "absolute",
                    "steps": [
                        {"color": "green", "value": None},
                        {"color": "orange", "value": 100},
                        {"color": "red", "value": 500},
                    ],
                },
            ),
        ),
    ),
    (
        "level",
        (
            ("custom.cellOptions", {"type": "color-text"}),
            (
                "mappings",
                [
                    {
                        "type": "value",
                        "options": {
                            "critical": {"color": "red", "index": 0},
                            "high": {"color": "orange", "index": 1},
                            "watch": {"color": "yellow", "index": 2},
                        },
                    }
                ],
            ),
        ),
    ),
)
OPEN_CASES = SqlPanel(
    key="open_cases",
    title="Open cases by value at risk",
    kind="table",
    description="One row per open case (its latest alert), most value at risk first, as the "
    "worklist ranks them: who is leaving, their tier, segments and owner, why, and the "
    "win-back action. 'opened' is the event time of the case's first alert; CLV and p alive "
    "are blank, and say so, where no purchase model could be fitted.",
    sql=f"""SELECT a.customer_id AS customer, a.value_tier AS tier, a.risk_level AS level,
       a.reason, round(a.value_at_risk::numeric, 2) AS value_at_risk,
       round(a.clv::numeric, 2) AS clv, round(a.p_alive::numeric, 3) AS p_alive,
       round(a.score::numeric, 3) AS score, t.action,
       o.owner, a.segments ->> 'region' AS region, a.segments ->> 'industry' AS industry,
       a.segments ->> 'channel' AS channel, a.segments ->> 'segment' AS segment,
       c.opened,
       CASE WHEN a.acknowledged_at IS NOT NULL THEN 'acknowledged' ELSE a.status END AS status
FROM alerts a
JOIN (SELECT coalesce(case_id, alert_id) AS case_id, min(ts) AS opened
      FROM alerts GROUP BY 1) c ON c.case_id = coalesce(a.case_id, a.alert_id)
LEFT JOIN winback_tasks t ON t.alert_id = a.alert_id
LEFT JOIN case_owners o ON o.case_id = c.case_id
WHERE a.ended_at IS NULL AND $__timeFilter(a.ts)
  AND a.value_tier IN ($tier) AND a.reason IN ($reason)
{_SEGMENT_FILTER}
ORDER BY a.value_at_risk DESC NULLS LAST, a.ts DESC, a.alert_id
LIMIT 500""",
    width=24,
    height=12,
    overrides=_COLOURED,
)

ALERTS_OVER_TIME = SqlPanel(
    key="alerts_over_time",
    title="Alerts over time by reason",
    kind="timeseries",
    description="Alerts raised per interval, one series per churn reason.",
    result_format="time_series",
    sql="""SELECT $__timeGroupAlias(ts, $__interval), reason AS metric, count(*) AS alerts
FROM alerts
WHERE $__timeFilter(ts) AND value_tier IN ($tier) AND reason IN ($reason)
GROUP BY 1, 2
ORDER BY 1, 2""",
)

RISK_BY_TIER = SqlPanel(
    key="risk_by_tier",
    title="Risk distribution by tier",
    kind="barchart",
    description="Customers by their latest churn score, in bands, per value tier.",
    sql="""SELECT value_tier AS tier,
       count(*) FILTER (WHERE score < 0.2) AS "0.0-0.2",
       count(*) FILTER (WHERE score >= 0.2 AND score < 0.4) AS "0.2-0.4",
       count(*) FILTER (WHERE score >= 0.4 AND score < 0.6) AS "0.4-0.6",
       count(*) FILTER (WHERE score >= 0.6 AND score < 0.8) AS "0.6-0.8",
       count(*) FILTER (WHERE score >= 0.8) AS "0.8-1.0"
FROM customer_state
WHERE score IS NOT NULL AND value_tier IN ($tier)
GROUP BY value_tier
ORDER BY CASE value_tier WHEN 'high' THEN 1 WHEN 'potential' THEN 2 ELSE 3 END""",
)

STAGES = SqlPanel(
    key="lifecycle_stages",
    title="Customers by lifecycle stage",
    kind="piechart",
    description="Where the population stands now (lifecycle stages: docs/features.md).",
    sql="""SELECT lifecycle_stage AS stage, count(*) AS customers
FROM customer_state
WHERE value_tier IN ($tier)
GROUP BY lifecycle_stage
ORDER BY customers DESC, stage""",
    width=8,
)

TRANSITIONS = SqlPanel(
    key="lifecycle_transitions",
    title="Lifecycle transitions",
    kind="table",
    description="Stage moves in the time range, most frequent first.",
    sql="""SELECT from_value AS "from", to_value AS "to", count(*) AS customers
FROM customer_changes
WHERE field = 'lifecycle_stage' AND $__timeFilter(ts)
GROUP BY from_value, to_value
ORDER BY customers DESC, "from", "to\"""",
    width=8,
)

FUNNEL = SqlPanel(
    key="winback_funnel",
    title="Win-back funnel",
    kind="bargauge",
    description="Tasks issued in the range (escalated ones left out) and held out of "
    "contact; of those sent, the ones the CRM reported reaching the customer (contacted, "
    "accepted, declined or done); and those whose customer bought again within the window.",
    sql="""SELECT count(*) FILTER (WHERE t.action <> 'holdout') AS tasks,
       count(*) FILTER (WHERE t.action = 'holdout') AS held_out,
       count(*) FILTER (WHERE EXISTS (
         SELECT 1 FROM winback_outcomes o WHERE o.task_id = t.task_id
           AND o.status IN ('contacted', 'accepted', 'declined', 'done'))) AS contacted,
       count(*) FILTER (WHERE t.status = 'won_back' AND t.action <> 'holdout') AS won_back
FROM winback_tasks t
WHERE t.status <> 'escalated' AND $__timeFilter(t.ts)
  AND t.value_tier IN ($tier) AND t.reason IN ($reason)""",
    width=8,
)

#: Newcombe's interval of a difference of two rates from their Wilson intervals (z = 1.96:
#: z² = 3.8416, z²/2 = 1.9208, z²/4 = 0.9604), as ``churnwatch winback report`` gives it
UPLIFT = SqlPanel(
    key="uplift",
    title="Uplift against the control group, by reason, tier and action",
    kind="table",
    description="Return rate of the settled cases given an action, less that of the "
    "held-out cases (never contacted) of the same reason and tier, with its 95 % interval "
    "(Newcombe's). Below 30 cases in either group the evidence is not enough to act on.",
    sql="""WITH settled AS (
  SELECT reason, value_tier AS tier, action,
         count(*)::float AS n, sum(CASE WHEN status = 'won_back' THEN 1 ELSE 0 END)::float AS r
  FROM winback_tasks
  WHERE status IN ('won_back', 'lost', 'expired') AND $__timeFilter(ts)
    AND value_tier IN ($tier) AND reason IN ($reason)
  GROUP BY 1, 2, 3
), paired AS (
  SELECT t.reason, t.tier, t.action, t.n AS n_t, t.r / t.n AS p_t, c.n AS n_c, c.r / c.n AS p_c
  FROM settled t
  JOIN settled c ON c.reason = t.reason AND c.tier = t.tier AND c.action = 'holdout'
  WHERE t.action <> 'holdout'
), wilson AS (
  SELECT *,
         (p_t + 1.9208 / n_t) / (1 + 3.8416 / n_t) AS m_t,
         1.96 * sqrt(p_t * (1 - p_t) / n_t + 0.9604 / (n_t * n_t)) / (1 + 3.8416 / n_t) AS h_t,
         (p_c + 1.9208 / n_c) / (1 + 3.8416 / n_c) AS m_c,
         1.96 * sqrt(p_c * (1 - p_c) / n_c + 0.9604 / (n_c * n_c)) / (1 + 3.8416 / n_c) AS h_c
  FROM paired
)
SELECT reason, tier, action, n_t::int AS treated, n_c::int AS control,
       round((p_t - p_c)::numeric, 4) AS uplift,
       round((p_t - p_c - sqrt((p_t - m_t + h_t) ^ 2 + (m_c + h_c - p_c) ^ 2))::numeric, 4)
         AS uplift_low,
       round((p_t - p_c + sqrt((m_t + h_t - p_t) ^ 2 + (p_c - m_c + h_c) ^ 2))::numeric, 4)
         AS uplift_high,
       CASE WHEN n_t >= 30 AND n_c >= 30 THEN 'enough' ELSE 'not enough' END
         AS evidence
FROM wilson
ORDER BY reason, tier, action""",
    width=24,
    overrides=(
        (
            "uplift_low",
            (
                ("custom.cellOptions", {"type": "color-text"}),
                (
                    "thresholds",
                    {
                        "mode": "absolute",
                        "steps": [
                            {"color": "red", "value": None},
                            {"color": "text", "value": 0},
                            {"color": "green", "value": 0.0001},
                        ],
                    },
                ),
            ),
        ),
    ),
)

RETURN_RATE = SqlPanel(
    key="return_rate",
    title="Return rate by reason and action",
    kind="table",
    description="Won back over settled tasks (won back, lost or expired), from the "
    "winback_effectiveness view; all time.",
    sql="""SELECT reason, action, sum(tasks) AS tasks, sum(settled) AS settled,
       sum(won_back) AS won_back,
       round(sum(won_back)::numeric / nullif(sum(settled), 0), 3) AS return_rate
FROM winback_effectiveness
WHERE value_tier IN ($tier) AND reason IN ($reason)
GROUP BY reason, action
ORDER BY reason, action""",
    width=24,
)

SATISFACTION = SqlPanel(
    key="satisfaction",
    title="Satisfaction",
    kind="timeseries",
    description="Mean satisfaction (1-5) of survey responses and complaint resolutions.",
    result_format="time_series",
    sql="""SELECT $__timeGroupAlias(e.ts, $__interval),
       avg((e.payload ->> 'satisfaction')::numeric) AS satisfaction
FROM events e
JOIN customer_state c ON c.customer_id = e.customer_id
WHERE $__timeFilter(e.ts) AND e.type IN ('survey_response', 'complaint_resolved')
  AND e.payload ->> 'satisfaction' IS NOT NULL AND c.value_tier IN ($tier)
GROUP BY 1
ORDER BY 1""",
)

RESOLUTION = SqlPanel(
    key="resolution_time",
    title="Complaint resolution time",
    kind="timeseries",
    description="Mean hours from a complaint's opening to its resolution, by resolution time.",
    result_format="time_series",
    unit="h",
    sql="""SELECT $__timeGroupAlias(r.ts, $__interval),
       avg(extract(epoch FROM r.ts - o.opened) / 3600.0) AS resolution_hours
FROM events r
JOIN (SELECT customer_id, payload ->> 'complaint_id' AS complaint_id, min(ts) AS opened
      FROM events WHERE type = 'complaint_opened'
      GROUP BY customer_id, payload ->> 'complaint_id') o
  ON o.customer_id = r.customer_id AND o.complaint_id = r.payload ->> 'complaint_id'
JOIN customer_state c ON c.customer_id = r.customer_id
WHERE r.type = 'complaint_resolved' AND $__timeFilter(r.ts) AND c.value_tier IN ($tier)
GROUP BY 1
ORDER BY 1""",
)

_RATE = "$__rate_interval"
EVENTS_PER_S = PromPanel(
    key="events_per_s",
    title="Events in per second",
    kind="timeseries",
    description="Records consumed from the input topics.",
    queries=(
        (f"sum by (topic) (rate(churnwatch_events_in_total[{_RATE}]))", "{{topic}}"),
        (f"sum(rate(churnwatch_events_stored_total[{_RATE}]))", "stored"),
    ),
    unit="ops",
)
LAG = PromPanel(
    key="consumer_lag",
    title="Consumer lag",
    kind="timeseries",
    description="Records between each worker's position and the end of its partitions.",
    queries=(("sum by (topic) (churnwatch_consumer_lag)", "{{topic}}"),),
    unit="short",
)
DEAD_LETTERS = PromPanel(
    key="dead_letters",
    title="Dead letters per second",
    kind="timeseries",
    description="Records the worker rejected, each with its reason on the dead-letters topic.",
    queries=((f"sum(rate(churnwatch_dead_letters_total[{_RATE}]))", "dead letters"),),
    unit="ops",
)
SCORING = PromPanel(
    key="scoring_latency",
    title="Scoring latency",
    kind="timeseries",
    description="Wall time of one batch's model call, p50 and p99.",
    queries=tuple(
        (
            f"histogram_quantile({q}, sum by (le) "
            f"(rate(churnwatch_scoring_seconds_bucket[{_RATE}])))",
            f"p{round(q * 100)}",
        )
        for q in (0.5, 0.99)
    ),
    unit="s",
)
ALERT_RATE = PromPanel(
    key="alert_rate",
    title="Alerts per minute by tier",
    kind="timeseries",
    description="Churn alerts raised, per value tier.",
    queries=(
        (f"sum by (value_tier) (rate(churnwatch_alerts_total[{_RATE}])) * 60", "{{value_tier}}"),
    ),
    unit="short",
)


@dataclass(frozen=True)
class DashboardSpec:
    """One dashboard: its uid, title, panels and whether it has the tier/reason variables."""

    uid: str
    title: str
    description: str
    panels: tuple[SqlPanel | PromPanel, ...]
    variables: bool = True


DASHBOARDS = (
    DashboardSpec(
        uid="churnwatch-alerts",
        title="churnwatch · open cases",
        description="For retention teams: the cases to act on, their value, reasons and risk.",
        panels=(OPEN_CASES, ALERTS_OVER_TIME, RISK_BY_TIER),
    ),
    DashboardSpec(
        uid="churnwatch-trends",
        title="churnwatch · trends and win-back",
        description="For managers: lifecycle, win-back results, satisfaction and complaints.",
        panels=(STAGES, TRANSITIONS, FUNNEL, UPLIFT, RETURN_RATE, SATISFACTION, RESOLUTION),
    ),
    DashboardSpec(
        uid="churnwatch-worker",
        title="churnwatch · worker",
        description="For operators: throughput, lag, dead letters and scoring latency.",
        panels=(EVENTS_PER_S, LAG, DEAD_LETTERS, SCORING, ALERT_RATE),
        variables=False,
    ),
)


def sql_panels() -> list[SqlPanel]:
    """Every SQL panel of every dashboard."""
    return [p for d in DASHBOARDS for p in d.panels if isinstance(p, SqlPanel)]
