"""winback_effectiveness and winback_failures: the win-back evaluation as views

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

The views' SQL is frozen here, as it was at this revision: a migration must
build the same schema whenever it runs, so it reads nothing that may change
later. A change to a view needs a new migration that drops and re-creates it.

``winback_effectiveness``, one row per reason, action and value tier:
    tasks        tasks issued (escalated ones, superseded by a stronger task, left out)
    settled      tasks that ended: won_back, lost or expired
    contacted    tasks the CRM reported any outcome for
    won_back     tasks whose customer bought again within the window
    return_rate  won_back / settled (empty while none has settled)
    hours_to_contact          mean hours from the task to the CRM's first report
    satisfaction_after        mean satisfaction rating (survey or complaint
                              resolution) the won-back customers gave after returning

``winback_failures``, tasks that ended lost or expired, one row per reason,
action, value tier, contact delay (``not contacted``, ``< 24 h``,
``1-3 days``, ``> 3 days``) and the CRM's last word (``declined``, ``failed``,
… or ``no report``): ``tasks``.

The SQL differs between SQLite and PostgreSQL only in date arithmetic and JSON
access; both are written out here, once.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_HOURS = {
    "sqlite": "(julianday({a}) - julianday({b})) * 24.0",
    "postgresql": "EXTRACT(EPOCH FROM ({a} - {b})) / 3600.0",
}
_SATISFACTION = {
    "sqlite": "CAST(json_extract(e.payload, '$.satisfaction') AS REAL)",
    "postgresql": "CAST(e.payload ->> 'satisfaction' AS DOUBLE PRECISION)",
}

_FIRST_REPORT = """
    SELECT task_id, MIN(ts) AS first_ts FROM winback_outcomes GROUP BY task_id
"""
_LAST_REPORT = """
    SELECT o.task_id, o.status FROM winback_outcomes o
    WHERE o.ts = (SELECT MAX(o2.ts) FROM winback_outcomes o2 WHERE o2.task_id = o.task_id)
"""


def view_sql(dialect: str) -> dict[str, str]:
    """``CREATE VIEW`` bodies for ``dialect`` (``sqlite`` or ``postgresql``)."""
    hours = _HOURS[dialect].format(a="c.first_ts", b="t.ts")
    satisfaction = _SATISFACTION[dialect]
    effectiveness = f"""
SELECT t.reason, t.action, t.value_tier,
       COUNT(*) AS tasks,
       SUM(CASE WHEN t.status IN ('won_back', 'lost', 'expired') THEN 1 ELSE 0 END) AS settled,
       SUM(CASE WHEN c.first_ts IS NOT NULL THEN 1 ELSE 0 END) AS contacted,
       SUM(CASE WHEN t.status = 'won_back' THEN 1 ELSE 0 END) AS won_back,
       CASE WHEN SUM(CASE WHEN t.status IN ('won_back', 'lost', 'expired') THEN 1 ELSE 0 END) = 0
            THEN NULL
            ELSE 1.0 * SUM(CASE WHEN t.status = 'won_back' THEN 1 ELSE 0 END)
                 / SUM(CASE WHEN t.status IN ('won_back', 'lost', 'expired') THEN 1 ELSE 0 END)
       END AS return_rate,
       AVG({hours}) AS hours_to_contact,
       AVG(s.satisfaction) AS satisfaction_after
FROM winback_tasks t
LEFT JOIN ({_FIRST_REPORT}) c ON c.task_id = t.task_id
LEFT JOIN (
    SELECT t2.task_id, AVG({satisfaction}) AS satisfaction
    FROM winback_tasks t2
    JOIN events e ON e.customer_id = t2.customer_id AND e.ts > t2.ended_at
    WHERE t2.status = 'won_back' AND e.type IN ('survey_response', 'complaint_resolved')
      AND {satisfaction} IS NOT NULL
    GROUP BY t2.task_id
) s ON s.task_id = t.task_id
WHERE t.status <> 'escalated'
GROUP BY t.reason, t.action, t.value_tier
"""
    delay = _HOURS[dialect].format(a="c.first_ts", b="t.ts")
    failures = f"""
SELECT t.reason, t.action, t.value_tier,
       CASE WHEN c.first_ts IS NULL THEN 'not contacted'
            WHEN {delay} < 24 THEN '< 24 h'
            WHEN {delay} <= 72 THEN '1-3 days'
            ELSE '> 3 days' END AS contact_delay,
       COALESCE(l.status, 'no report') AS crm_last_status,
       COUNT(*) AS tasks
FROM winback_tasks t
LEFT JOIN ({_FIRST_REPORT}) c ON c.task_id = t.task_id
LEFT JOIN ({_LAST_REPORT}) l ON l.task_id = t.task_id
WHERE t.status IN ('lost', 'expired')
GROUP BY t.reason, t.action, t.value_tier, contact_delay, crm_last_status
"""
    return {"winback_effectiveness": effectiveness, "winback_failures": failures}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, select in view_sql(dialect).items():
        op.execute(f"CREATE VIEW {name} AS {select}")


def downgrade() -> None:
    for name in ("winback_failures", "winback_effectiveness"):
        op.execute(f"DROP VIEW IF EXISTS {name}")
