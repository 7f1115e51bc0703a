"""Every panel of the Grafana dashboards: what it shows and the query behind it.

SQL panels read the store's tables on PostgreSQL (DESIGN.md: ``alerts``,
``winback_tasks``, ``winback_outcomes``, ``events``, ``customer_state``,
``customer_changes`` and the ``winback_effectiveness`` view) through
Grafana's macros (``$__timeFilter``, ``$__timeGroupAlias``, ``$__timeTo``)
and the ``$tier`` and ``$reason`` variables. ``macros.expand`` turns a query
into plain SQL the way Grafana does, so each one is tested against a real
PostgreSQL with exact results. Prometheus panels read the worker's
``/metrics`` (``churnwatch.streams.metrics``).
"""

from __future__ import annotations

from dataclasses import dataclass

from churnwatch.models.reasons import REASONS

TIERS = ("high", "potential", "general")
#: ``reason`` variable values, in the order DOMAIN.md lists them
REASON_VALUES = tuple(REASONS)


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
# (or "All") selection of a SQL data source as a quoted, comma-separated list.
LIVE_ALERTS = SqlPanel(
    key="live_alerts",
    title="Live alerts",
    kind="table",
    description="Newest alerts first: who is leaving, their value tier, why, and the win-back "
    "action assigned. Age is measured to the end of the time range.",
    sql="""SELECT a.ts AS "time", a.customer_id AS customer, a.value_tier AS tier,
       round(a.score::numeric, 3) AS score, a.risk_level AS level, a.reason, t.action,
       round((extract(epoch FROM $__timeTo()::timestamptz - a.ts) / 3600.0)::numeric, 1)
         AS age_hours,
       CASE WHEN a.acknowledged_at IS NOT NULL THEN 'acknowledged' ELSE a.status END AS status
FROM alerts a
LEFT JOIN winback_tasks t ON t.alert_id = a.alert_id
WHERE $__timeFilter(a.ts) AND a.value_tier IN ($tier) AND a.reason IN ($reason)
ORDER BY a.ts DESC, a.alert_id
LIMIT 500""",
    width=24,
    height=12,
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
    description="Where the population stands now (DOMAIN.md lifecycle).",
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
    description="Tasks issued in the range (escalated ones left out), those the CRM reported "
    "any contact for, and those whose customer bought again within the window.",
    sql="""SELECT count(*) AS tasks,
       count(*) FILTER (WHERE EXISTS (
         SELECT 1 FROM winback_outcomes o WHERE o.task_id = t.task_id)) AS contacted,
       count(*) FILTER (WHERE t.status = 'won_back') AS won_back
FROM winback_tasks t
WHERE t.status <> 'escalated' AND $__timeFilter(t.ts)
  AND t.value_tier IN ($tier) AND t.reason IN ($reason)""",
    width=8,
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
        title="churnwatch · live alerts",
        description="For retention teams: the alerts to act on, their reasons and risk.",
        panels=(LIVE_ALERTS, ALERTS_OVER_TIME, RISK_BY_TIER),
    ),
    DashboardSpec(
        uid="churnwatch-trends",
        title="churnwatch · trends and win-back",
        description="For managers: lifecycle, win-back results, satisfaction and complaints.",
        panels=(STAGES, TRANSITIONS, FUNNEL, RETURN_RATE, SATISFACTION, RESOLUTION),
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
